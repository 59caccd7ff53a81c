"""An item's article page: fetched once through the feed fetch layer, its main text extracted.

Feeds such as Google News and Bing News give a headline and the outlet's name, so the rules see a few
words; the tie is often in the article's second paragraph. This module fetches the page behind an
item's link with :func:`watchers.fetch.fetch` — the one client, its timeout, size cap (counted after
gzip, so a gzip bomb stops at the cap), bounded redirects (Google News links are redirects through
news.google.com) and the private-address guard — and extracts the main text with trafilatura.

Why trafilatura: it keeps the article and drops navigation, adverts, scripts, share bars and reader
comments offline, in ru/en/ko alike, and also returns the page's title and date; on the fixtures in
``tests/fixtures/articles`` it costs a few milliseconds a page (``python bench/fulltext.py``). It is
imported on first use: a bot whose feeds never ask for full text never loads it.

Nothing here raises: every failure is an :class:`ArticleResult` with ``error`` set ("HTTP 404",
"body over 3000000 bytes", "no article text found", "too little text (12 characters)"), and the caller
falls back to the feed's own text. Which items are worth a fetch, and how many a day, is the
pipeline's business (:mod:`service.enrich`); this module knows nothing of rules or the store.
"""

from __future__ import annotations

import asyncio
import configparser
import functools
import logging
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from watchers.fetch import FeedClient, PollSettings, fetch

log = logging.getLogger(__name__)

MIN_TEXT_CHARS = 150  # less is a consent wall, a paywall stub or a JavaScript redirect page, not an article
MAX_TREE_SIZE = 200_000  # elements: a page past this is not an article (trafilatura refuses it)
HTML_TYPES = ("text/html", "application/xhtml+xml", "text/plain")


@dataclass(frozen=True, slots=True)
class Article:
    """The main text of one article page, as extracted."""

    url: str  # where the page was finally read (after redirects)
    title: str
    text: str
    published: datetime | None = None  # the page's own date, if it gave one (UTC midnight of that day)


@dataclass(frozen=True, slots=True)
class ArticleResult:
    article: Article | None = None
    error: str | None = None
    http_status: int | None = None
    seconds: float = 0.0


def extract_article(body: bytes, url: str, *, min_chars: int = MIN_TEXT_CHARS) -> Article | str:
    """The main text of an HTML page, or why there is none (a short error string). Pure and CPU-bound:
    call it off the event loop (:func:`fetch_article` does)."""
    import trafilatura  # on first use: ~0.1 s and 20 MiB that most bots never need

    try:
        doc = trafilatura.bare_extraction(
            body, url=url, with_metadata=True, include_comments=False, include_tables=False, config=_settings()
        )
    except Exception as exc:  # a parser bug on hostile HTML must not escape: it is one failed page
        return f"extraction failed: {type(exc).__name__}"
    if doc is None or isinstance(doc, dict):
        return "no article text found"
    text = (doc.text or "").strip()
    if not text:
        return "no article text found"
    if len(text) < min_chars:
        return f"too little text ({len(text)} characters)"
    return Article(url=url, title=(doc.title or "").strip(), text=text, published=_date(doc.date))


@functools.cache
def _settings() -> configparser.ConfigParser:
    """trafilatura's settings with the page-size bound set (its default is none)."""
    from trafilatura.settings import use_config

    config = use_config()
    config.set("DEFAULT", "MAX_TREE_SIZE", str(MAX_TREE_SIZE))
    return config


def _date(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.strptime(value[:10], "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        return None


async def fetch_article(
    client: FeedClient, url: str, settings: PollSettings, *, min_chars: int = MIN_TEXT_CHARS
) -> ArticleResult:
    """GET the page at ``url`` (``settings`` give its timeout, size cap and redirect limit) and extract
    its main text in a worker thread; never raises."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    result = await fetch(client, url, settings)
    if result.outcome != "ok":
        return ArticleResult(error=result.error or "not fetched", http_status=result.http_status)
    kind = (result.content_type or "text/html").split(";")[0].strip().lower()
    if kind not in HTML_TYPES:
        return ArticleResult(error=f"not an HTML page ({kind})", http_status=result.http_status)
    final = result.final_url or url
    try:
        extracted = await asyncio.to_thread(extract_article, result.body, final, min_chars=min_chars)
    except Exception as exc:  # belt and braces: extract_article catches its own
        extracted = f"extraction failed: {type(exc).__name__}"
    seconds = loop.time() - started
    if isinstance(extracted, str):
        return ArticleResult(error=extracted, http_status=result.http_status, seconds=seconds)
    return ArticleResult(article=replace(extracted, url=final), http_status=result.http_status, seconds=seconds)
