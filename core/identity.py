"""Item identity: deciding whether an entry of a feed is an item the bot already has.

An alert bot is judged by its repeats. What real feeds do to the obvious "uid = guid, else link" rule
(each case is a table row in tests/test_core_identity.py, polled 4 times over real HTTP):

* some rotate their GUIDs on every fetch (4 alerts in 4 polls);
* some have no GUID and links whose tracking parameters change (``?at_medium=RSS&at_campaign=<n>``);
* some re-publish a story under a new GUID with an edited title (2 alerts);
* some have neither GUID nor link, and a summary that changes (4 alerts);
* some give every entry the same link (the site root, or a live blog's page with ``#post-N``): a uid
  of the link alone kept 1 of 6 stories and silently marked the rest seen;
* several feeds carry the same story under the same link.

So an entry carries several keys (:class:`core.models.ItemKeys`, made by :func:`entry_keys` where the
entry becomes an Item) and :func:`decide` matches them against what the store holds, in this order:

1. **GUID**, while the feed's GUIDs are stable. A feed whose GUIDs rotate (in one fetch, at least two
   entries — or every entry — have a new GUID but a link or fingerprint already stored under another
   GUID of the feed) is marked ``guids_unstable`` for good; from then on an equal GUID still matches but
   a new one means nothing. A GUID shared by entries with different titles in one fetch is no identity.
2. **Canonical link** (a GUID that is a URL when there is no link): http read as https, host lowercased,
   default port, fragment and the tracking parameters of :data:`TRACKING_PARAMS` (plus a feed's
   ``ignore_params``) removed, the rest of the query sorted. On the real labelled set's 2,845 links this
   merges 4 pairs, each one WSJ article with and without ``mod=`` (the old rule: none). A link is matched
   across *all* feeds: the same story from a second feed is the same item (stored once, the second feed
   recorded as another source). A link is *no* identity when it is the site root, or when entries with
   different titles or fragments share it (in one fetch), or different titles (in the store): those
   entries are told apart by the link's fragment (``#post-7``) or, without one, by link + title.
3. **Fingerprint**, only for entries with no link and no usable GUID: the normalised title
   alone when it has at least 4 words or 24 letters, else the title with the summary's first 30 words.
   Title alone, because feeds without GUID or link are exactly the ones whose summaries change (time
   stamps, counters, teasers that grow) while the headline a reader sees stays. Entries of one fetch
   that share a title but not a summary are told apart by title + summary.

A match in the same feed whose title or summary differs is an **update**: the stored text is replaced
and the row stamped ``updated_at``, and nobody is alerted again. An update or another feed's copy of an
item that matched no rule is matched again by the pipeline (it may say more): the store alerts it once
if it matches now, and never if the item had matched before. Items stored by versions before this
module keep their uid, and the uid those versions would give an entry (:attr:`ItemKeys.legacy`) still
counts as seen, so an upgrade re-alerts nothing. Everything here is pure: plain values in, plain values
out; the store runs the look-ups and records the decisions in the poll's one transaction.
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Literal
from urllib.parse import SplitResult, parse_qsl, urlencode, urlsplit, urlunsplit

from core.models import Item, ItemKeys

# Query parameters that say how a reader arrived, not what they read; ``*`` ends a prefix. The README's
# "How an item's identity is decided" lists the same.
TRACKING_PARAMS: tuple[str, ...] = (
    "utm_*",  # Google Analytics campaign tags
    "at_*",  # BBC / AT Internet (at_medium, at_campaign, at_custom1…)
    "ns_*",  # comScore (ns_mchannel, ns_source, ns_campaign, ns_linkname)
    "mc_*",  # Mailchimp (mc_cid, mc_eid)
    "pk_*",  # Matomo / Piwik
    "mtm_*",  # Matomo
    "fbclid",
    "gclid",
    "dclid",
    "gbraid",
    "wbraid",
    "yclid",
    "msclkid",
    "igshid",
    "_openstat",
    "_ga",
    "_gl",
    "cmpid",
    "ito",
    "ocid",
    "smid",
    "xtor",
    "wt.*",  # Webtrends (WT.mc_id)
    "cmp",  # the Guardian (CMP=share_btn_tw)
    "mod",  # WSJ (mod=rss_Technology, mod=world_lead_pos5: one article)
    "srcref",  # MSN (srcref=rss)
    "traffic_source",  # Al Jazeera (traffic_source=rss)
    "ref",
    "ref_src",
    "from",
)
MIN_TITLE_WORDS, MIN_TITLE_LETTERS, SUMMARY_WORDS = 4, 24, 30
_WORDS = re.compile(r"\w+")
_PARAM = re.compile(r"^[A-Za-z0-9_.-]+\*?$")


def param_problem(name: object) -> str | None:
    """Why ``name`` cannot be an ``ignore_params`` entry, or None (a name, or a prefix ending in ``*``)."""
    if not isinstance(name, str) or not _PARAM.match(name):
        return f"must be a query parameter name (letters, digits, _ . -), optionally ending in *, got {name!r}"
    return None


def _pattern(params: Iterable[str]) -> re.Pattern[str]:
    alternatives = [re.escape(p[:-1]) + ".*" if p.endswith("*") else re.escape(p) for p in params]
    return re.compile("(?:" + "|".join(alternatives) + ")", re.IGNORECASE)


_TRACKING = _pattern(TRACKING_PARAMS)


def _clean_query(query: str, ignore_params: Iterable[str]) -> str:
    """The query without tracking parameters, the rest sorted."""
    if not query:
        return ""
    extra = tuple(ignore_params)
    own = _pattern(extra) if extra else None
    kept = sorted(
        (k, v)
        for k, v in parse_qsl(query, keep_blank_values=True)
        if not _TRACKING.fullmatch(k) and not (own and own.fullmatch(k))
    )
    return urlencode(kept)


def _host_port(parts: SplitResult) -> tuple[str, int | None]:
    host = (parts.hostname or "").lower()
    if ":" in host:  # an IPv6 literal keeps its brackets
        host = f"[{host}]"
    try:
        return host, parts.port
    except ValueError:  # a port that is no number in range: keep it as written, it is part of the name
        return parts.netloc.rpartition("@")[2].lower(), None


def canonical_link(link: str, ignore_params: Iterable[str] = ()) -> str:
    """The link two spellings of one article share: http as https, host lowercased, default port, fragment and
    tracking parameters (:data:`TRACKING_PARAMS` and ``ignore_params``) removed, other parameters sorted."""
    try:
        parts = urlsplit(link.strip().replace("&amp;", "&"))  # a feed that escaped its links twice
    except ValueError:  # e.g. an unclosed IPv6 bracket: the link as written is the best key there is
        return link.strip()
    scheme = parts.scheme.lower()
    host, port = _host_port(parts)
    netloc = host if port is None or port == {"http": 80, "https": 443}.get(scheme) else f"{host}:{port}"
    scheme = "https" if scheme == "http" else scheme  # one article either way
    return urlunsplit((scheme, netloc, parts.path or "/", _clean_query(parts.query, ignore_params), ""))


def link_anchor(link: str) -> str:
    """The fragment when it names a place in the page (``post-7``); "" for none or a tracking one
    (``xtor=RSS-1``)."""
    fragment = link.strip().partition("#")[2]
    return "" if "=" in fragment or "&" in fragment else fragment[:200]


def feed_key(url: str) -> str:
    """The key two spellings of one feed URL share (config.yaml, OPML import, /feed_add): scheme dropped
    (http = https), host lowercased, default port, fragment, trailing slash and tracking parameters
    removed; path case and the other parameters kept."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return url.strip()
    host, port = _host_port(parts)
    netloc = host if port in (None, 80, 443) else f"{host}:{port}"
    return urlunsplit(("", netloc, parts.path.rstrip("/"), _clean_query(parts.query, ()), ""))


@lru_cache(maxsize=8192)
def is_site_root(link: str) -> bool:
    """A link to a site's front page (``https://meduza.io/``) names no article. (Cached: a poll asks twice
    per item, on the event loop, and ``urlsplit`` is ~5 µs.)"""
    parts = urlsplit(link)
    return parts.path in ("", "/") and not parts.query


def _digest(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


def fingerprint(title: str, summary: str) -> str:
    """Of the normalised title alone when it has ≥ 4 words or ≥ 24 letters, else of title + summary start."""
    words = _WORDS.findall(title.casefold())
    if len(words) >= MIN_TITLE_WORDS or sum(map(len, words)) >= MIN_TITLE_LETTERS:
        return _digest("t:" + " ".join(words))
    return content_fingerprint(title, summary)


def content_fingerprint(title: str, summary: str) -> str:
    """Of the normalised title and the summary's first 30 words."""
    words = _WORDS.findall(title.casefold()) + _WORDS.findall(summary.casefold())[:SUMMARY_WORDS]
    return _digest("ts:" + " ".join(words))


# The rule versions before this module used (watchers/parse.py): kept only to compute old uids.
_LEGACY_TRACKING = re.compile(r"^(utm_|yclid$|gclid$|fbclid$|_openstat$|from$|ref$)")


def legacy_uid(guid: str, link: str, title: str, summary: str) -> str:
    """The uid versions before item identity gave an entry: guid, else canonical link, else a hash."""
    if guid:
        return guid[:1000]
    if link.startswith(("http://", "https://")):
        try:
            parts = urlsplit(link.strip())
        except ValueError:  # the old parser dropped such an entry: any uid will do
            return link.strip()[:1000]
        query = urlencode(
            [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not _LEGACY_TRACKING.match(k.lower())]
        )
        return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), parts.path or "/", query, ""))[:1000]
    return "sha1:" + _digest(f"{title}\n{summary}")


def entry_keys(guid: str, link: str, title: str, summary: str, ignore_params: Iterable[str] = ()) -> ItemKeys:
    """An entry's keys from its plain values (guid and link as the feed gives them, plain-text title and
    summary); the one normalisation every parser calls."""
    guid = guid.strip()[:1000]
    link = link.strip()
    legacy = legacy_uid(guid, link, title, summary)
    if not link.startswith(("http://", "https://")) and guid.startswith(("http://", "https://")):
        link = guid  # a GUID that is the article's URL is its link (Atom ids, RSS permalinks)
    web = link.startswith(("http://", "https://"))
    return ItemKeys(
        guid=guid or None,
        link=canonical_link(link, ignore_params)[:1000] if web else None,
        anchor=link_anchor(link) if web else "",
        fingerprint=fingerprint(title, summary),
        content=content_fingerprint(title, summary),
        legacy=legacy,
    )


def entry_uid(guid: str, link: str, title: str, summary: str, ignore_params: Iterable[str] = ()) -> str:
    """The provisional uid :func:`entry_keys` gives an entry (GUID, else canonical link, else ``sha1:`` and the
    fingerprint), computing only the key it uses: for ``bot.py match``, which needs the uid and no other key
    (the keys are ~60 % of normalising an entry, issue 16)."""
    guid = guid.strip()[:1000]
    if guid:
        return guid
    link = link.strip()
    if link.startswith(("http://", "https://")):
        return canonical_link(link, ignore_params)[:1000]
    return "sha1:" + fingerprint(title, summary)


def keys_of(item: Item) -> ItemKeys:
    """The item's keys; for an item not read from a feed, keys from its uid (as a guid) and link."""
    if item.keys is not None:
        return item.keys
    keys = entry_keys(item.uid, item.link or "", item.title, item.summary)
    return replace(keys, legacy=item.uid)


@dataclass(frozen=True, slots=True)
class Known:
    """A stored item's identity, as the store's look-up returns it."""

    item_id: int
    feed_id: int
    uid: str
    guid: str | None
    link: str | None
    fingerprint: str | None
    title: str
    summary: str


@dataclass(frozen=True, slots=True)
class Lookup:
    """What to look up for one poll: uids, GUIDs and fingerprints in the feed; links in every feed."""

    uids: frozenset[str]
    guids: frozenset[str]
    links: frozenset[str]
    fingerprints: frozenset[str]


Kind = Literal["new", "seen", "update", "source"]


@dataclass(frozen=True, slots=True)
class Decision:
    """``new``: store and match it; ``seen``: nothing to do; ``update``: the stored item ``twin`` gets the
    new text, nobody is alerted; ``source``: ``twin`` is another feed's item, this feed is recorded as a
    second source. ``item`` has the uid it is stored under (for ``new``)."""

    item: Item
    kind: Kind
    twin: int | None = None


@dataclass(frozen=True, slots=True)
class FeedDecisions:
    decisions: tuple[Decision, ...]
    guids_unstable: bool  # the feed's flag after this poll (it only ever turns on)

    def of(self, kind: Kind) -> list[Decision]:
        return [d for d in self.decisions if d.kind == kind]


def _link_uid(link: str, anchor: str, title: str) -> str:
    return f"{link}#{anchor}"[:1000] if anchor else "sha1:" + _digest(f"{link}\n{title}")


def candidate_uids(keys: ItemKeys, title: str) -> set[str]:
    """Every uid :func:`decide` could store this entry under, and its legacy uid."""
    out = {keys.legacy, "sha1:" + keys.fingerprint, "sha1:" + keys.content}
    if keys.guid:
        out.add(keys.guid)
    if keys.link:
        out |= {keys.link, _link_uid(keys.link, keys.anchor, title), _link_uid(keys.link, "", title)}
    return out


def lookup(items: Sequence[Item]) -> Lookup:
    """The look-ups :func:`decide` needs for ``items`` (site-root links are never looked up)."""
    uids: set[str] = set()
    guids: set[str] = set()
    links: set[str] = set()
    fingerprints: set[str] = set()
    for item in items:
        keys = keys_of(item)
        uids |= candidate_uids(keys, item.title)
        if keys.guid:
            guids.add(keys.guid)
        if keys.link and not is_site_root(keys.link):
            links.add(keys.link)
        fingerprints |= {keys.fingerprint, keys.content}
    return Lookup(frozenset(uids), frozenset(guids), frozenset(links), frozenset(fingerprints))


def _shared(values: Iterable[tuple[str | None, str]]) -> set[str]:
    """Keys carried by more than one distinct (non-empty) title."""
    titles: dict[str, set[str]] = defaultdict(set)
    for key, title in values:
        if key is not None and title:
            titles[key].add(title)
    return {key for key, seen in titles.items() if len(seen) > 1}


@dataclass(frozen=True, slots=True)
class _Entry:
    item: Item
    keys: ItemKeys
    guid: str | None  # usable as an identity in this fetch
    link: str | None  # usable as an identity
    fingerprint: str


def decide(feed_id: int, items: Sequence[Item], known: Sequence[Known], *, guids_unstable: bool) -> FeedDecisions:
    """Decide, for each entry of one fetch of feed ``feed_id``, whether it is new, seen, an update or another
    feed's item, given the stored items ``known`` that :func:`lookup`'s keys found. Pure."""
    all_keys = [keys_of(i) for i in items]
    # a link is no identity when entries with different titles, or different fragments, share it
    shared_links = _shared((k.link, f"{i.title}#{k.anchor}") for k, i in zip(all_keys, items, strict=True))
    shared_links |= _shared((k.link, k.title) for k in known)
    shared_guids = _shared((k.guid, i.title) for k, i in zip(all_keys, items, strict=True))
    shared_fps = _shared((k.fingerprint, i.summary or "-") for k, i in zip(all_keys, items, strict=True))
    entries = [
        _Entry(
            item,
            keys,
            keys.guid if keys.guid and keys.guid not in shared_guids else None,
            keys.link if keys.link and keys.link not in shared_links and not is_site_root(keys.link) else None,
            keys.content if keys.fingerprint in shared_fps else keys.fingerprint,
        )
        for item, keys in zip(items, all_keys, strict=True)
    ]
    mine = [k for k in known if k.feed_id == feed_id]
    by_uid = {k.uid: k for k in mine}
    by_guid = {k.guid: k for k in mine if k.guid}
    by_fp = {k.fingerprint: k for k in mine if k.fingerprint}
    by_link: dict[str, list[Known]] = defaultdict(list)
    for k in sorted(known, key=lambda k: (k.feed_id != feed_id, k.item_id)):  # this feed's first, then oldest
        if k.link:
            by_link[k.link].append(k)

    if not guids_unstable:
        rotated = 0
        for e in entries:
            if e.guid is None or e.guid in by_guid or e.guid in by_uid:
                continue
            other = by_link[e.link][0] if e.link and by_link.get(e.link) else None
            if other is None or other.feed_id != feed_id:
                other = by_fp.get(e.fingerprint)
            if other is not None and other.guid and other.guid != e.guid:
                rotated += 1
        guids_unstable = rotated >= 2 or (rotated >= 1 and rotated == len(entries))

    decisions: list[Decision] = []
    fresh: dict[str, int] = {}  # keys of this fetch's new entries → their index (a body repeating itself)
    for e in entries:
        guid = e.guid if not guids_unstable else None
        use_fp = e.keys.link is None and guid is None  # a shared link still tells entries apart
        if guid:
            uid = guid
        elif e.link:
            uid = e.link
        elif e.keys.link:
            uid = _link_uid(e.keys.link, e.keys.anchor, e.item.title)
        else:
            uid = "sha1:" + e.fingerprint
        twin: Known | None = by_uid.get(uid)
        # the legacy uid was the guid, else the link, else a hash: it is only as good as that was
        legacy_ok = e.keys.guid not in shared_guids if e.keys.guid else e.keys.link is None or e.link is not None
        if twin is None and legacy_ok:
            twin = by_uid.get(e.keys.legacy)
        if twin is None and e.guid:
            twin = by_guid.get(e.guid)
        if twin is None and e.link and by_link.get(e.link):
            twin = by_link[e.link][0]
        if twin is None and use_fp:
            twin = by_fp.get(e.fingerprint)
        if twin is None:
            mark = [uid, *(["l:" + e.link] if e.link else []), *(["f:" + e.fingerprint] if use_fp else [])]
            if any(m in fresh for m in mark):
                decisions.append(Decision(e.item, "seen"))
                continue
            fresh.update(dict.fromkeys(mark, len(decisions)))
            keys = e.keys if e.keys.fingerprint == e.fingerprint else replace(e.keys, fingerprint=e.fingerprint)
            # ^ the fingerprint chosen: stored and looked up
            decisions.append(Decision(replace(e.item, uid=uid, keys=keys), "new"))
        elif twin.feed_id != feed_id:
            decisions.append(Decision(e.item, "source", twin.item_id))
        elif twin.title and (twin.title, twin.summary) != (e.item.title, e.item.summary):
            decisions.append(Decision(e.item, "update", twin.item_id))
        else:
            decisions.append(Decision(e.item, "seen", twin.item_id))
    return FeedDecisions(tuple(decisions), guids_unstable)
