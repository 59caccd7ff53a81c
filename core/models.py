"""Plain, frozen records passed between the pipeline's stages.

Feedparser's dicts, SQLite rows and Telegram objects are converted into these at the edges and go no
further: the pure core (matching, rendering, clustering) sees only these types.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

Priority = Literal["instant", "digest"]
Field = Literal["title", "summary"]
Language = Literal["ru", "en", "ko"]
# What a source is: an RSS/Atom/RDF feed, a public Telegram channel's web preview (t.me/s/NAME), or a web
# page read with selectors. watchers/sources.py turns each into the same Items.
SourceKind = Literal["rss", "telegram", "page"]
SOURCE_KINDS: tuple[SourceKind, ...] = ("rss", "telegram", "page")

# How much of a title and of a summary is kept and matched: the first 20,000 characters of each (a long
# article is about 15,000; the old 4,000 cut missed mentions further down). Past it the text is neither
# stored nor read by the rules; alerts show a short excerpt whatever the length.
MAX_TEXT = 20_000
_PARTIAL_WORD = re.compile(r"\w+$")

# A source label: a short lower-case word or hyphenated words (state-media, think-tank, wire, telegram).
LABEL = re.compile(r"[a-z][a-z0-9]*(?:-[a-z0-9]+)*")
MAX_LABEL = 24
MAX_LABELS = 8  # a feed's labels at most


def label_problem(label: object) -> str | None:
    """Why ``label`` cannot be a source label, or None."""
    if not isinstance(label, str):
        return f"must be a short string such as state-media, got {label!r}"
    if len(label) > MAX_LABEL or not LABEL.fullmatch(label):
        return f"must be lower-case letters, digits and hyphens (≤ {MAX_LABEL}), e.g. state-media; got {label!r}"
    return None


def label_text(label: str) -> str:
    """A label as shown beside a source: ``state-media`` → ``state media``."""
    return label.replace("-", " ")


def cap_text(text: str) -> str:
    """The first :data:`MAX_TEXT` characters of ``text``, less a word the cap would cut in two (a cut
    word could match as a shorter one: "Россиянин" → "Росси")."""
    if len(text) <= MAX_TEXT:
        return text
    cut = text[:MAX_TEXT]
    return _PARTIAL_WORD.sub("", cut) if text[MAX_TEXT].isalnum() or text[MAX_TEXT] == "_" else cut


@dataclass(frozen=True, slots=True)
class Feed:
    """A feed the bot polls, with its polling state as kept in the store."""

    id: int
    url: str
    name: str
    lang: str | None
    interval: int  # seconds between polls when healthy
    etag: str | None = None
    last_modified: str | None = None
    failures: int = 0  # consecutive failed polls; drives the back-off
    next_poll_at: datetime | None = None  # UTC; None means "due now"
    last_polled_at: datetime | None = None
    last_ok_at: datetime | None = None
    last_error: str | None = None
    initialised: bool = False  # False until the first successful poll (backlog policy)
    enabled: bool = True
    guids_unstable: bool = False  # its GUIDs were seen to rotate: items are known by link/fingerprint
    ignore_params: tuple[str, ...] = ()  # query parameters dropped from its item links (config)
    kind: SourceKind = "rss"
    spec: str = ""  # JSON: the kind's settings ({"channel": ...} or the page's selectors); "" for rss
    state: str = ""  # JSON the kind keeps between polls (last message id, last selector count)
    labels: tuple[str, ...] = ()  # what kind of outlet it is (config ``feeds[].labels``: state-media, wire, ...)


@dataclass(frozen=True, slots=True)
class ItemKeys:
    """What an entry can be recognised by, computed once where the entry becomes an Item
    (:func:`core.identity.entry_keys`); which of them decides is :func:`core.identity.decide`'s job."""

    guid: str | None  # the entry's guid/id as given
    link: str | None  # canonical link: tracking parameters, fragment and default port gone
    anchor: str  # the link's fragment when it names a place in the page (``post-7``), else ""
    fingerprint: str  # of the title alone when it is long enough, else of title + first words
    content: str  # of title + the summary's first words: tells apart items sharing a title
    legacy: str  # the uid versions before item identity gave this entry (still counts as seen)


@dataclass(frozen=True, slots=True)
class Item:
    """One feed entry, normalised: plain-text title and summary, UTC time, stable id."""

    feed_url: str
    uid: str  # stable within the feed: guid, else canonical link, else content hash
    title: str
    summary: str
    link: str | None = None
    published: datetime | None = None  # timezone-aware, UTC
    lang: str | None = None
    feed_name: str = ""
    keys: ItemKeys | None = None  # None for items not read from a feed (``match`` command, tests)
    labels: tuple[str, ...] = ()  # its feed's labels (state-media, wire, ...): shown, and rules may ask for them

    @property
    def key(self) -> tuple[str, str]:
        return (self.feed_url, self.uid)


@dataclass(frozen=True, slots=True)
class Hit:
    """One matched span: which group matched, where, and the text as it stands in the item."""

    group: str
    field: Field
    start: int  # character offsets into the item's field (title or summary)
    end: int
    text: str


@dataclass(frozen=True, slots=True)
class Match:
    """A rule that matched an item, with the spans that made it match (the *why*)."""

    rule: str
    priority: Priority
    hits: tuple[Hit, ...] = field(default=())
    score: float | None = None  # the item's relevance score 0–1 (rules/score.py), when a model is loaded

    def why(self) -> dict[str, list[str]]:
        """Group name → distinct matched texts, in order of first appearance."""
        out: dict[str, list[str]] = {}
        for hit in self.hits:
            seen = out.setdefault(hit.group, [])
            if hit.text not in seen:
                seen.append(hit.text)
        return out

    def why_text(self) -> str:
        """One line such as ``DPRK: «КНДР», RUSSIA: «российских военных»``."""
        return ", ".join(f"{group}: " + ", ".join(f"«{t}»" for t in texts) for group, texts in self.why().items())
