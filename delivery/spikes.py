"""Spike alerts: "⚡ DPRK–Russia: 14 items in 6 h, 5× usual" when a rule or an entity group suddenly has
far more news than it usually has at this time of day.

Why the same hours of the previous days: news has a daily rhythm (Moscow and Seoul mornings are busy,
nights are quiet), so the last six hours are compared with the same six hours of each of the previous 14
days, not with a 24-hour mean that would make every morning look like a spike. Why stories, not items:
one event reported by twenty outlets is one event; counting its items would call every big story a
spike of itself. Why a floor (``min_items``): over a quiet baseline, two items are "∞× usual" and mean
nothing. A baseline of zero therefore needs only the floor, and is shown as "new" rather than a ratio.

Everything here is pure: the store hands over the matched rows of the period (who, when, which story),
this module decides and renders; service/spikes.py sends and records.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from core import i18n
from core.config import SpikeSettings
from delivery.render import escape, link, shorten
from store.spikes import SpikeRow as Row

# The alert's words are the catalogue's spike.* keys (core/locales/*.yaml).
STORY_TITLE_CHARS = 160
TOP_STORIES = 3


@dataclass(frozen=True, slots=True)
class Decision:
    """The verdict for one window: how many stories, the baseline mean, and whether it is a spike."""

    count: int
    mean: float
    spike: bool

    @property
    def ratio(self) -> float | None:
        return self.count / self.mean if self.mean else None


@dataclass(frozen=True, slots=True)
class Story:
    title: str
    link: str | None
    items: int


@dataclass(frozen=True, slots=True)
class Spike:
    key: str
    at: datetime  # the window's end
    decision: Decision
    stories: tuple[Story, ...]  # the top stories of the window, most items first


def decide(count: int, baseline: Sequence[int], factor: float, min_items: int) -> Decision:
    """A spike when ``count`` is at least ``min_items`` and at least ``factor`` × the mean of ``baseline``
    (the same window on each earlier day). An empty or all-zero baseline needs only the floor."""
    mean = sum(baseline) / len(baseline) if baseline else 0.0
    return Decision(count=count, mean=mean, spike=count >= min_items and count >= factor * mean)


def window_counts(rows: Iterable[Row], now: datetime, settings: SpikeSettings) -> dict[str, tuple[int, list[int]]]:
    """Per key: distinct stories in the last window, and in the same window on each of the previous days
    (``baseline_days`` values, zeros included, oldest last)."""
    width = timedelta(seconds=settings.window)
    day = timedelta(days=1)
    stories: dict[str, list[set[str]]] = {}
    for row in rows:
        age = now - row.at
        if age < timedelta(0):
            continue
        days_back, into = divmod(age, day)  # which earlier day, and how far into that day's window
        if into >= width or days_back > settings.baseline_days:
            continue
        stories.setdefault(row.key, [set() for _ in range(settings.baseline_days + 1)])[days_back].add(row.story)
    return {key: (len(sets[0]), [len(s) for s in sets[1:]]) for key, sets in stories.items()}


def find_spikes(rows: Sequence[Row], now: datetime, settings: SpikeSettings) -> list[Spike]:
    """Every key whose last window is a spike, with its top stories; keys in name order."""
    out: list[Spike] = []
    width = timedelta(seconds=settings.window)
    for key, (count, baseline) in sorted(window_counts(rows, now, settings).items()):
        decision = decide(count, baseline, settings.factor, settings.min_items)
        if decision.spike:
            recent = [r for r in rows if r.key == key and timedelta(0) <= now - r.at < width]
            out.append(Spike(key=key, at=now, decision=decision, stories=top_stories(recent)))
    return out


def top_stories(rows: Sequence[Row], top: int = TOP_STORIES) -> tuple[Story, ...]:
    """The ``top`` stories with the most items (ties: the latest first), each by its latest titled item."""
    sizes = Counter(r.story for r in rows)
    latest: dict[str, Row] = {}
    for r in sorted(rows, key=lambda r: r.at):
        if r.title or r.story not in latest:
            latest[r.story] = r
    order = sorted(sizes, key=lambda s: (-sizes[s], -latest[s].at.timestamp(), s))
    return tuple(Story(latest[s].title, latest[s].link, sizes[s]) for s in order[:top])


def window_text(seconds: int, lang: str = i18n.DEFAULT) -> str:
    """``6 h``, ``90 min``, ``1 d`` (in Russian ``6 ч``, ``90 мин``, ``1 сут.``)."""
    if seconds % 86400 == 0:
        return i18n.t("spike.window_days", lang, n=seconds // 86400)
    if seconds % 3600 == 0:
        return i18n.t("spike.window_hours", lang, n=seconds // 3600)
    return i18n.t("spike.window_minutes", lang, n=seconds // 60)


def ratio_text(decision: Decision, lang: str = i18n.DEFAULT) -> str:
    ratio = decision.ratio
    if ratio is None:
        return i18n.t("spike.new", lang)
    return i18n.t("spike.ratio", lang, ratio=f"{ratio:.0f}" if ratio >= 10 else f"{ratio:.1f}".removesuffix(".0"))


def key_title(key: str, rule_titles: Mapping[str, str]) -> str:
    """A key's title: the rule's title (or name), or the entity group's name."""
    kind, _, name = key.partition(":")
    return rule_titles.get(name, name) if kind == "rule" else name


def render_spike(spike: Spike, title: str, window: int, lang: str = i18n.DEFAULT) -> str:
    """The alert (Telegram HTML) in the interface language ``lang``: the head line, then up to three
    linked story titles."""
    head = i18n.t(
        "spike.head",
        lang,
        title=escape(title),
        n=spike.decision.count,
        window=window_text(window, lang),
        ratio=ratio_text(spike.decision, lang),
    )
    lines = [head]
    for story in spike.stories:
        more = f" ({story.items})" if story.items > 1 else ""
        shown = shorten(story.title or i18n.t("alert.no_title", lang), STORY_TITLE_CHARS)
        lines.append(f"• {link(shown, story.link)}{more}")
    return "\n".join(lines)
