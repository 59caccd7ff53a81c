"""Quality of the default rule file (rules/dprk_russia.yaml) on the labelled development set.

An item counts as positive when ANY rule of the default file matches it. The test prints a confusion
table per language and overall, then every false positive and false negative with the rules' *why*
(or, for a miss, the groups that were found), so an analyst editing the rules sees what changed.

The blind sets (tests/data/holdout_*.jsonl, blind_*.jsonl) are deliberately not read here.

Item format (one JSON object per line): ``{"id": ..., "lang": "ru|en|ko", "title": ..., "summary": ...,
"label": true|false}`` — ``label`` may also be spelled ``relevant``/``positive``, or given as 0/1 or
"pos"/"neg"; ``lang`` defaults to the file's suffix (devset_ru.jsonl, devset_lead_ru.jsonl → ru).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from cli.eval import Confusion
from rules import RuleSet, load_rules

REPO = Path(__file__).resolve().parents[1]
RULE_FILE = REPO / "rules" / "dprk_russia.yaml"
DATA = REPO / "tests" / "data"
SEED = REPO.parent / "shared" / "seed-article.txt"

MIN_OVERALL = 0.95
MIN_PER_LANGUAGE = 0.90
INSTANT_RULE = "dprk_russia_military"
# The "read also" teaser that the seed page embeds between paragraphs: a DPRK-only launch.
TEASER = "КНДР запустила баллистическую ракету в сторону Японского моря"

_LABEL_KEYS = ("label", "relevant", "positive", "match", "is_relevant")
_TRUE = {"1", "true", "yes", "pos", "positive", "relevant", "match"}
_FALSE = {"0", "false", "no", "neg", "negative", "irrelevant", "no_match"}


@dataclass(frozen=True)
class Labelled:
    source: str  # file:line
    lang: str
    title: str
    summary: str
    positive: bool


def _label(raw: dict[str, Any], where: str) -> bool:
    for key in _LABEL_KEYS:
        if key in raw:
            value = raw[key]
            if isinstance(value, bool):
                return value
            if isinstance(value, int | float):
                return bool(value)
            text = str(value).strip().lower()
            if text in _TRUE:
                return True
            if text in _FALSE:
                return False
            raise ValueError(f"{where}: cannot read the label {value!r}")
    raise ValueError(f"{where}: no label (expected one of {', '.join(_LABEL_KEYS)})")


def load_devset() -> list[Labelled]:
    items: list[Labelled] = []
    for path in sorted(DATA.glob("devset_*.jsonl")):
        default_lang = path.stem.rsplit("_", 1)[-1]  # devset_ru, devset_lead_ru → ru
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            where = f"{path.name}:{n}"
            raw = json.loads(line)
            items.append(
                Labelled(
                    source=where,
                    lang=str(raw.get("lang") or default_lang),
                    title=str(raw.get("title") or ""),
                    summary=str(raw.get("summary") or raw.get("text") or ""),
                    positive=_label(raw, where),
                )
            )
    return items


def _short(text: str, limit: int = 160) -> str:
    one = " ".join(text.split())
    return one if len(one) <= limit else one[: limit - 1] + "…"


@pytest.fixture(scope="module")
def ruleset() -> RuleSet:
    return load_rules([RULE_FILE])


def test_devset_precision_and_recall(ruleset: RuleSet) -> None:
    items = load_devset()
    if not items:
        pytest.skip(f"no labelled items in {DATA}/devset_*.jsonl")
    per_lang: dict[str, Confusion] = {}
    overall = Confusion()
    errors: list[str] = []
    for it in items:
        matches = ruleset.match_text(it.title, it.summary)
        predicted = bool(matches)
        per_lang.setdefault(it.lang, Confusion()).add(it.positive, predicted)
        overall.add(it.positive, predicted)
        if predicted and not it.positive:
            why = "; ".join(f"{m.rule}: {m.why_text()}" for m in matches)
            errors.append(f"FP {it.source} [{_short(it.title, 90)}] {_short(it.summary)}\n    why: {why}")
        elif it.positive and not predicted:
            found = ", ".join(sorted({h.group for h in ruleset.scan(it.title, it.summary)})) or "nothing"
            errors.append(f"FN {it.source} [{_short(it.title, 90)}] {_short(it.summary)}\n    found: {found}")
    print(f"\n{'lang':<8} {'TP':>5} {'FP':>5} {'FN':>5} {'TN':>5}")
    for lang in sorted(per_lang):
        print(per_lang[lang].row(lang))
    print(overall.row("overall"))
    for line in errors:
        print(line)
    assert overall.precision >= MIN_OVERALL, f"overall precision {overall.precision:.3f}"
    assert overall.recall >= MIN_OVERALL, f"overall recall {overall.recall:.3f}"
    for lang, c in per_lang.items():
        assert c.precision >= MIN_PER_LANGUAGE, f"{lang} precision {c.precision:.3f}"
        assert c.recall >= MIN_PER_LANGUAGE, f"{lang} recall {c.recall:.3f}"


def _seed_article() -> tuple[str, str, str]:
    """(title, lead, body) of the seed article; skips when ../shared is not beside the checkout."""
    if not SEED.is_file():
        pytest.skip(f"{SEED} is absent (../shared is not beside the checkout)")
    lines = [ln.strip() for ln in SEED.read_text(encoding="utf-8").splitlines() if ln.strip()]
    title = next(ln for ln in lines if "КНДР" in ln and len(ln) > 30)
    i = lines.index(title)
    lead = lines[i + 1]
    body = "\n".join(lines[i + 1 :])
    return title, lead, body


def test_seed_article_matches_the_instant_rule(ruleset: RuleSet) -> None:
    title, lead, body = _seed_article()
    for summary in (lead, body):
        matches = {m.rule: m for m in ruleset.match_text(title, summary)}
        assert INSTANT_RULE in matches, sorted(matches)
        assert matches[INSTANT_RULE].priority == "instant"
        why = matches[INSTANT_RULE].why()
        assert {"DPRK", "RUSSIA"} <= set(why), why


def test_seed_teaser_alone_matches_no_rule(ruleset: RuleSet) -> None:
    _, _, body = _seed_article()
    assert TEASER in body  # the teaser really is embedded in the page
    for title, summary in ((TEASER, ""), ("", TEASER)):
        assert ruleset.match_text(title, summary) == []
