"""Article pages for the full-text tests and bench: hand-written bodies inside a page of boilerplate.

``tests/data/fulltext_titles.jsonl`` is a small labelled set written for this purpose (not real news):
title-only items as a news-search feed gives them (``Headline - Outlet``), each with the paragraphs of
its article; ``label`` 1 when the article reports a DPRK–Russia military tie. The page template
(``tests/fixtures/articles/template.html``) wraps the body in navigation, adverts, scripts, a
most-read list, reader comments and a footer.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ARTICLES = HERE / "fixtures" / "articles"
LABELLED = HERE / "data" / "fulltext_titles.jsonl"


@dataclass(frozen=True, slots=True)
class LabelledArticle:
    id: str
    lang: str
    label: int
    title: str
    body: tuple[str, ...]

    def page(self) -> bytes:
        return article_page(self.title, self.body)


def article_page(title: str, paragraphs: tuple[str, ...] | list[str]) -> bytes:
    """A whole HTML page with ``paragraphs`` as the article inside the boilerplate template."""
    template = (ARTICLES / "template.html").read_text(encoding="utf-8")
    body = "\n".join(f"<p>{html.escape(p)}</p>" for p in paragraphs)
    return template.replace("<!--TITLE-->", html.escape(title)).replace("<!--BODY-->", body).encode()


def labelled() -> list[LabelledArticle]:
    rows = [json.loads(line) for line in LABELLED.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [LabelledArticle(r["id"], r["lang"], r["label"], r["title"], tuple(r["body"])) for r in rows]
