"""The Store: migrations and the queries the bot needs, each a short transaction, on SQLite or PostgreSQL.

The SQL here is one portable subset both databases run (store/backend.py lists its rules); the backend
behind ``store.backend`` (store/sqlite.py, store/postgres.py) supplies the connection and the few
dialect differences. Times are stored as fixed-width ISO-8601 UTC text (``2026-11-25T04:06:44.000000Z``)
so that text order is time order, and every method that needs the clock takes ``now`` (tests drive it).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Literal
from zoneinfo import ZoneInfo

from core.config import FeedConfig, SubscriptionConfig
from core.identity import Known, Lookup, canonical_link, feed_key, fingerprint, legacy_uid
from core.models import Feed, Hit, Item, Match, Priority
from store.backend import DB_ERRORS, Backend, Connection, TargetError, backend_for
from store.claims import Claims
from store.lock import StoreLock
from store.schema import MIGRATIONS
from store.sqlite import damage

__all__ = ["DB_ERRORS", "MIGRATIONS", "Store", "StoreError", "damage", "storage_problem"]

_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
MAX_UNCONFIRMED = 2  # sends Telegram may have accepted, unrecorded, before an entry is 'uncertain'


class StoreError(Exception):
    """The store cannot be opened or used; the message names the file (or URL) and the reason."""


def ts(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("store times must be timezone-aware")
    return value.astimezone(UTC).strftime(_TIME_FORMAT)


def from_ts(value: str | None) -> datetime | None:
    return None if value is None else datetime.strptime(value, _TIME_FORMAT).replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class StoryDecision:
    """Which story a matched item joins, decided before the commit and stored with the item.

    ``story_id`` an earlier story; else ``same_as`` the position of an earlier item of the same poll whose
    story it joins; else a new story (its id is the item's own id). ``keys`` are its candidate buckets."""

    story_id: int | None = None
    same_as: int | None = None
    keys: tuple[str, ...] = ()
    embedding: bytes | None = None


@dataclass(frozen=True, slots=True)
class ProcessedItem:
    """A new item of one poll, its matches, and whether it may be delivered (backlog policy)."""

    item: Item
    matches: tuple[Match, ...]
    deliver: bool
    story: StoryDecision | None = None
    stored_id: int | None = None  # an update or another feed's copy of this stored item (core.identity)


@dataclass(frozen=True, slots=True)
class ItemUpdate:
    """A stored item seen again with another title or summary (:func:`core.identity.decide`'s update)."""

    item_id: int
    title: str
    summary: str


@dataclass(frozen=True, slots=True)
class StoryMember:
    """A stored matched item as a story candidate."""

    item_id: int
    story_id: int
    item: Item
    matches: tuple[Match, ...]
    embedding: bytes | None


@dataclass(frozen=True, slots=True)
class StoryAlert:
    """The instant alert a subscription got for a story: later reports edit it (or reply to it)."""

    subscription_id: int
    story_id: int
    chat_id: str
    message_id: int
    text: str
    sources: tuple[str, ...]
    dirty: bool
    replies: int
    edited_at: datetime | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class CommitResult:
    new_items: int
    matches: int
    outbox_rows: int
    instant_outbox_ids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Subscription:
    id: int
    chat_id: str
    mode: str  # instant | digest | both
    rules: tuple[str, ...]  # empty = all rules
    digest_time: str | None  # "HH:MM" local; None = config default
    timezone: str | None  # IANA name; None = config default
    paused: bool = False
    paused_reason: str | None = None
    muted_until: datetime | None = None
    last_digest_at: datetime | None = None
    chat_title: str | None = None
    chat_type: str | None = None
    source: str = "chat"
    created_at: datetime | None = None
    stories: bool = True  # False: every item alerted on its own (``stories: off``)

    def follows(self, rules: Iterable[str]) -> bool:
        return not self.rules or any(r in self.rules for r in rules)


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """A queued delivery with what the sender needs to render it."""

    id: int
    subscription_id: int
    chat_id: str
    kind: str  # instant | digest
    item: Item
    matches: tuple[Match, ...]
    attempts: int
    created_at: datetime
    item_id: int = 0  # the item's row id: what the 👍/👎 buttons' callback data names
    story_id: int | None = None
    stories: bool = True  # the subscription follows stories (later reports edit the first alert)


@dataclass(frozen=True, slots=True)
class Vote:
    """One user's latest 👍 (1) / 👎 (0) on one item, with the item's text and the rules' verdict as they
    were when the vote was cast."""

    item_id: int
    user_id: int
    chat_id: str
    label: int
    item: Item
    rules: tuple[str, ...]  # the rules that had matched the item
    verdict: tuple[dict[str, Any], ...]  # per rule: {"rule", "priority", "score"} (score None if none)
    voted_at: datetime


def _hits_json(match: Match) -> str:
    return json.dumps([[h.group, h.field, h.start, h.end, h.text] for h in match.hits], ensure_ascii=False)


def _match_from_row(rule: str, priority: str, hits_json: str, score: float | None = None) -> Match:
    hits = tuple(Hit(g, f, s, e, t) for g, f, s, e, t in json.loads(hits_json))
    prio: Priority = "instant" if priority == "instant" else "digest"
    return Match(rule=rule, priority=prio, hits=hits, score=score)


def _labels(labels_json: str | None) -> tuple[str, ...]:
    return tuple(json.loads(labels_json or "[]"))


def storage_problem(path: Path) -> str | None:
    """Why the store cannot be created or written at ``path``, or None when it can."""
    if path.exists():
        if path.is_dir():
            return f"storage path {path} is a directory, not a file"
        if not os.access(path, os.W_OK):
            return f"storage file {path} is not writable"
        return damage(path)  # corrupt or truncated: the bot would refuse to start
    parent = path.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        return f"cannot create {path}: {parent} is not a directory"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"cannot create {path}: {parent} is not writable"
    return None


def chat_key(chat: int | str) -> str:
    """Chats are keyed by text: numeric ids as digits, channels as '@name'."""
    return str(chat)


class Store(Claims):
    """The bot's memory on one backend (``store.dialect``: "sqlite" | "postgresql"); ``store.conn`` runs the
    portable SQL with ``?`` placeholders on both and returns tuples."""

    def __init__(self, conn: Connection, backend: Backend, lock: StoreLock | None = None) -> None:
        self.conn = conn
        self.backend = backend
        self.lock = lock
        # story candidates decoded by earlier calls, by item id, with the row they came from (story_candidates)
        self._story_members: OrderedDict[int, tuple[tuple[Any, ...], StoryMember]] = OrderedDict()

    @property
    def dialect(self) -> str:
        return self.backend.name

    @property
    def target(self) -> Path | str:
        """What :meth:`open` was given, in a form :meth:`open` takes again (a path, or the URL)."""
        path = getattr(self.backend, "path", None)
        return path if isinstance(path, Path) else str(getattr(self.backend, "url", ""))

    @property
    def path(self) -> Path:
        """The SQLite file (StoreError on PostgreSQL, which has none: use :attr:`target`)."""
        path = getattr(self.backend, "path", None)
        if not isinstance(path, Path):
            raise StoreError(f"the store {self.describe()} is not a file")
        return path

    def describe(self) -> str:
        """The store as every message names it: the path, or the URL without a password."""
        return self.backend.describe()

    @property
    def skip_locked(self) -> str:
        """Appended to a claiming ``SELECT … FOR UPDATE``-style query: `` FOR UPDATE SKIP LOCKED`` on
        PostgreSQL (another worker's claimed rows are skipped, not waited for), ``""`` on SQLite."""
        return self.backend.skip_locked

    def advisory_lock(self, name: str) -> AbstractContextManager[bool]:
        """``with store.advisory_lock("prune") as mine:`` — True for the one worker that got it (never waits).
        PostgreSQL: a transaction lock inside :meth:`transaction`, else a session lock for the block;
        SQLite: always True (the file lock already makes the store one process's)."""
        return self.backend.advisory_lock(self.conn, name)

    # -- lifecycle -----------------------------------------------------------------------------------

    @classmethod
    def open(cls, target: Path | str, *, exclusive: bool = False) -> Store:
        """Open the store at ``target`` and migrate it to the latest schema. ``target``: a path (SQLite,
        folders and file created as needed, integrity checked first with ``PRAGMA quick_check``), a
        ``sqlite:///…`` URL, or ``postgresql://user@host:port/db`` (no password in it: store/backend.py).
        ``exclusive``: on SQLite take the one-process-per-store lock first (``run``, ``backfill``, ``demo``;
        StoreError names the process holding it); on PostgreSQL it takes no lock, since several workers
        share the database (claims and :meth:`advisory_lock` keep their work apart)."""
        try:
            backend = backend_for(target)
        except TargetError as exc:
            raise StoreError(str(exc)) from None
        lock = backend.take_lock(exclusive)
        try:
            store = cls._open(backend, lock)
        except BaseException:
            if lock is not None:
                lock.release()
            raise
        if exclusive:
            backend.start_maintenance(store.conn)
        return store

    @classmethod
    def _open(cls, backend: Backend, lock: StoreLock | None) -> Store:
        problem = backend.damage()
        if problem:
            raise StoreError(problem)
        try:
            conn = backend.connect()
        except DB_ERRORS as exc:
            raise StoreError(f"cannot open the store {backend.describe()}: {exc}") from None
        store = cls(conn, backend, lock)
        try:
            store._migrate()
            store._backfill_identity()
        except DB_ERRORS as exc:
            conn.close()
            raise StoreError(f"cannot use the store {backend.describe()}: {exc}") from None
        except StoreError:
            conn.close()
            raise
        return store

    def _migrate(self) -> None:
        """Each script in its own transaction (BEGIN IMMEDIATE on SQLite; on PostgreSQL under a transaction
        advisory lock), the version re-read inside it: two processes opening a fresh store at once never
        both run the same script. Versions are logical (store/schema.py says how the lists align)."""
        from store.sqlite import statements

        scripts, base = self.backend.migrations, self.backend.base
        latest = base + len(scripts) - 1
        while True:
            with self.transaction() as conn:
                self.backend.lock_migrations(conn)
                version = self.backend.read_version(conn)
                if version > latest:
                    raise StoreError(
                        f"the store {self.describe()} has schema version {version}, newer than this program knows "
                        f"({latest}); upgrade the bot or use another storage.path or storage.url"
                    )
                if version == latest:
                    return
                index = 0 if version < base else version - base + 1
                for statement in statements(scripts[index]):
                    conn.execute(statement)
                self.backend.write_version(conn, base + index)

    def _backfill_identity(self) -> None:
        """Give items stored before item identity (schema v2) their keys, once: canonical link, fingerprint,
        and the guid where their uid was one. Their uid stays, so they still count as seen; with the keys,
        a rotated GUID or another feed's copy of an old item is recognised too."""
        if self.conn.execute("SELECT 1 FROM kv WHERE key = 'identity_backfilled'").fetchone():
            return
        with self.transaction() as conn:
            rows = conn.execute(
                "SELECT id, uid, title, summary, link FROM items WHERE fingerprint IS NULL AND link_key IS NULL"
            ).fetchall()
            updates = []
            for item_id, uid, title, summary, link in rows:
                web = bool(link) and link.startswith(("http://", "https://"))
                old_link_uid = legacy_uid("", link, "", "") if web else None
                guid = None if uid.startswith("sha1:") or uid == old_link_uid else uid
                fp = fingerprint(title, summary) if title or summary else None
                updates.append((guid, canonical_link(link) if web else None, fp, item_id))
            conn.executemany("UPDATE items SET guid = ?, link_key = ?, fingerprint = ? WHERE id = ?", updates)
            conn.execute(
                "INSERT INTO kv (key, value) VALUES ('identity_backfilled', ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (str(len(updates)),),
            )

    def close(self) -> None:
        self.backend.stop_maintenance()
        self.conn.close()
        if self.lock is not None:
            self.lock.release()
            self.lock = None

    # -- health --------------------------------------------------------------------------------------

    def file_problem(self) -> str | None:
        """Why the store this connection writes is no longer the configured one, or None. SQLite: writes to
        an unlinked file succeed and are lost at the next restart, so this is checked each tick; PostgreSQL
        has no file (always None)."""
        return self.backend.file_problem()

    def last_alive(self) -> datetime | None:
        """When a running bot last found this store healthy (its heartbeat, written by each health check)."""
        row = self.conn.execute("SELECT value FROM kv WHERE key = 'alive_at'").fetchone()
        return from_ts(row[0]) if row else None

    def _heartbeat(self, now: datetime) -> None:
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO kv (key, value) VALUES ('alive_at', ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (ts(now),),
            )

    def health_problem(self, now: datetime) -> str | None:
        """None when the store is the configured one and a small write commits (the heartbeat, see
        :meth:`last_alive`); else the reason. A lost PostgreSQL connection is reconnected once first."""
        problem = self.file_problem()
        if problem:
            return problem
        try:
            self._heartbeat(now)
        except DB_ERRORS as exc:
            try:
                if not self.backend.reconnect(self.conn):
                    return f"cannot write the store {self.describe()}: {exc}"
                self._heartbeat(now)
            except DB_ERRORS as again:
                return f"cannot write the store {self.describe()}: {again}"
        return None

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """BEGIN (IMMEDIATE on SQLite) … COMMIT, or ROLLBACK on any exception."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self._rollback()
            raise
        try:
            self.conn.execute("COMMIT")
        except DB_ERRORS:  # e.g. SQLITE_FULL at commit: the transaction is still open; end it
            self._rollback()
            raise

    def _rollback(self) -> None:
        if self.conn.in_transaction:
            with contextlib.suppress(*DB_ERRORS):  # the database may have rolled back already (I/O error)
                self.conn.execute("ROLLBACK")

    @property
    def schema_version(self) -> int:
        """The logical schema version (``len(MIGRATIONS)`` once migrated, on either backend)."""
        return self.backend.read_version(self.conn)

    # -- feeds ---------------------------------------------------------------------------------------

    _FEED_COLUMNS = (
        "id, url, name, lang, interval, etag, last_modified, failures, next_poll_at, last_polled_at, "
        "last_ok_at, last_error, initialised, enabled, guids_unstable, ignore_params, kind, spec, source_state, labels"
    )

    @staticmethod
    def _feed(row: Sequence[Any]) -> Feed:
        return Feed(
            id=row[0],
            url=row[1],
            name=row[2],
            lang=row[3],
            interval=row[4],
            etag=row[5],
            last_modified=row[6],
            failures=row[7],
            next_poll_at=from_ts(row[8]),
            last_polled_at=from_ts(row[9]),
            last_ok_at=from_ts(row[10]),
            last_error=row[11],
            initialised=bool(row[12]),
            enabled=bool(row[13]),
            guids_unstable=bool(row[14]),
            ignore_params=tuple(json.loads(row[15] or "[]")),
            kind=row[16],
            spec=row[17],
            state=row[18],
            labels=tuple(json.loads(row[19] or "[]")),
        )

    @staticmethod
    def _urls_by_key(conn: Connection) -> dict[str, str]:
        """Stored feed URLs by :func:`core.identity.feed_key` (enabled feeds first, then the oldest)."""
        out: dict[str, str] = {}
        for (url,) in conn.execute("SELECT url FROM feeds ORDER BY enabled DESC, id"):
            out.setdefault(feed_key(url), url)
        return out

    def _stored_url(self, conn: Connection, url: str, by_key: dict[str, str]) -> str | None:
        """The stored URL of the feed ``url`` spells, the exact spelling first."""
        if conn.execute("SELECT 1 FROM feeds WHERE url = ?", (url,)).fetchone():
            return url
        return by_key.get(feed_key(url))

    def sync_feeds(self, configs: Sequence[FeedConfig], now: datetime) -> None:
        """Make the config's feeds present and enabled; disable config feeds no longer listed. Spellings of
        one URL (:func:`core.identity.feed_key`) are one feed: the first listed wins, and a stored feed
        spelt another way is that feed (polled under the config's spelling, its items and state kept)."""
        firsts: dict[str, FeedConfig] = {}
        for c in configs:
            firsts.setdefault(feed_key(c.url), c)
        urls: list[str] = []
        with self.transaction() as conn:
            by_key = self._urls_by_key(conn)
            for key, c in firsts.items():
                stored = self._stored_url(conn, c.url, by_key)
                if stored is not None and stored != c.url:
                    conn.execute("UPDATE feeds SET url = ? WHERE url = ?", (c.url, stored))
                by_key[key] = c.url
                conn.execute(
                    "INSERT INTO feeds (url, name, lang, interval, ignore_params, added_by, created_at, kind, spec, "
                    "labels) VALUES (?, ?, ?, ?, ?, 'config', ?, ?, ?, ?) "
                    "ON CONFLICT(url) DO UPDATE SET name = excluded.name, lang = excluded.lang, "
                    "interval = excluded.interval, ignore_params = excluded.ignore_params, enabled = 1, "
                    "kind = excluded.kind, spec = excluded.spec, labels = excluded.labels, "
                    # new selectors or another channel: what the old ones matched says nothing any more
                    "source_state = CASE WHEN feeds.spec = excluded.spec THEN feeds.source_state ELSE '' END",
                    (
                        c.url,
                        c.name,
                        c.lang,
                        c.interval,
                        json.dumps(list(c.ignore_params)),
                        ts(now),
                        c.kind,
                        c.spec,
                        json.dumps(list(c.labels)),
                    ),
                )
                urls.append(c.url)
            placeholders = ",".join("?" * len(urls)) or "''"
            conn.execute(
                f"UPDATE feeds SET enabled = 0 WHERE added_by = 'config' AND url NOT IN ({placeholders})",
                urls,
            )

    def add_feed(
        self,
        url: str,
        name: str,
        lang: str | None,
        interval: int,
        added_by: str,
        now: datetime,
        *,
        kind: str = "rss",
        spec: str = "",
    ) -> Feed:
        """Add a feed, or revive a removed or retired (410) one: it is due at once, its failures forgotten.
        ``added_by`` becomes its source, so a feed once in config.yaml and added again from chat or by an
        import is no longer disabled by :meth:`sync_feeds` when the config does not list it. A URL spelt
        like a stored feed's (:func:`core.identity.feed_key`) is that feed. ``kind`` and ``spec`` say what
        the source is (a telegram channel, a page and its selectors)."""
        with self.transaction() as conn:
            url = self._stored_url(conn, url, self._urls_by_key(conn)) or url
            conn.execute(
                "INSERT INTO feeds (url, name, lang, interval, added_by, created_at, kind, spec) "
                "VALUES (?,?,?,?,?,?,?,?) "
                "ON CONFLICT(url) DO UPDATE SET enabled = 1, gone = 0, failures = 0, last_error = NULL, "
                "next_poll_at = NULL, added_by = excluded.added_by, kind = excluded.kind, spec = excluded.spec, "
                "source_state = CASE WHEN feeds.spec = excluded.spec THEN feeds.source_state ELSE '' END",
                (url, name, lang, interval, added_by, ts(now), kind, spec),
            )
        feed = self.feed_by_url(url)
        assert feed is not None
        return feed

    def remove_feed(self, url: str) -> bool:
        with self.transaction() as conn:
            return conn.execute("UPDATE feeds SET enabled = 0 WHERE url = ?", (url,)).rowcount > 0

    def due_feeds(self, now: datetime) -> list[Feed]:
        rows = self.conn.execute(
            f"SELECT {self._FEED_COLUMNS} FROM feeds WHERE enabled = 1 AND gone = 0 "
            "AND (next_poll_at IS NULL OR next_poll_at <= ?) ORDER BY next_poll_at IS NOT NULL, next_poll_at",
            (ts(now),),
        )
        return [self._feed(r) for r in rows]

    def all_feeds(self, *, enabled_only: bool = False) -> list[Feed]:
        where = "WHERE enabled = 1" if enabled_only else ""
        return [self._feed(r) for r in self.conn.execute(f"SELECT {self._FEED_COLUMNS} FROM feeds {where} ORDER BY id")]

    def feed_sources(self) -> dict[str, str]:
        """Who added each enabled feed, by URL: ``config``, ``chat:<user>``, ``import…``."""
        return dict(self.conn.execute("SELECT url, added_by FROM feeds WHERE enabled = 1 ORDER BY id").fetchall())

    def retired_feeds(self) -> list[Feed]:
        """Enabled feeds that answered 410 Gone: still listed, no longer polled (``add_feed`` revives one)."""
        rows = self.conn.execute(f"SELECT {self._FEED_COLUMNS} FROM feeds WHERE enabled = 1 AND gone = 1 ORDER BY id")
        return [self._feed(r) for r in rows]

    def feed_by_url(self, url: str) -> Feed | None:
        row = self.conn.execute(f"SELECT {self._FEED_COLUMNS} FROM feeds WHERE url = ?", (url,)).fetchone()
        return self._feed(row) if row else None

    # -- quiet feeds (watchers/silence.py decides; these keep the history and the told-once flag) -----

    def seen_times(self, feed_id: int, limit: int = 31) -> list[datetime]:
        """The distinct instants at which the feed's new items were first seen, newest first."""
        rows = self.conn.execute(
            "SELECT DISTINCT seen_at FROM items WHERE feed_id = ? ORDER BY seen_at DESC LIMIT ?", (feed_id, limit)
        )
        return [t for (value,) in rows if (t := from_ts(value)) is not None]

    def last_seen_times(self) -> dict[int, datetime]:
        """Feed id → when its newest item was first seen (one index walk, for every feed at once)."""
        rows = self.conn.execute("SELECT feed_id, MAX(seen_at) FROM items GROUP BY feed_id")
        return {feed_id: t for feed_id, value in rows if (t := from_ts(value)) is not None}

    def quiet_flags(self) -> dict[int, datetime]:
        """Feed id → the last-new-item instant of the quiet episode its admins were told of."""
        rows = self.conn.execute("SELECT id, quiet_told_for FROM feeds WHERE quiet_told_for IS NOT NULL")
        return {feed_id: t for feed_id, value in rows if (t := from_ts(value)) is not None}

    def set_quiet_flag(self, feed_id: int, episode: datetime | None) -> None:
        with self.transaction() as conn:
            conn.execute("UPDATE feeds SET quiet_told_for = ? WHERE id = ?", (ts(episode), feed_id))

    # -- items ---------------------------------------------------------------------------------------

    def unseen_uids(self, feed_id: int, uids: Sequence[str]) -> set[str]:
        wanted = set(uids)
        seen: set[str] = set()
        chunk = list(wanted)
        for start in range(0, len(chunk), 500):
            part = chunk[start : start + 500]
            rows = self.conn.execute(
                f"SELECT uid FROM items WHERE feed_id = ? AND uid IN ({','.join('?' * len(part))})",
                (feed_id, *part),
            )
            seen.update(r[0] for r in rows)
        return wanted - seen

    def known_items(self, feed_id: int, wanted: Lookup) -> list[Known]:
        """Stored items that :func:`core.identity.decide` must see for one poll: this feed's by uid, GUID
        or fingerprint, and every feed's by canonical link."""
        queries = [
            ("i.feed_id = ? AND i.uid", [feed_id], wanted.uids),
            ("i.feed_id = ? AND i.guid", [feed_id], wanted.guids),
            ("i.feed_id = ? AND i.fingerprint", [feed_id], wanted.fingerprints),
            ("i.link_key", [], wanted.links),
        ]
        arms: list[tuple[str, list[Any]]] = []
        for where, params, values in queries:
            chunk = sorted(values)
            for start in range(0, len(chunk), 500):
                part = chunk[start : start + 500]
                arms.append(
                    (
                        "SELECT i.id, i.feed_id, i.uid, i.guid, i.link_key, i.fingerprint, i.title, i.summary "
                        f"FROM items i WHERE {where} IN ({','.join('?' * len(part))})",
                        [*params, *part],
                    )
                )
        found: dict[int, Known] = {}
        for start in range(0, len(arms), 4):  # a poll's look-ups in one statement (one round trip), not four
            some = arms[start : start + 4]
            rows = self.conn.execute(" UNION ALL ".join(a[0] for a in some), [p for a in some for p in a[1]])
            for r in rows:
                found[r[0]] = Known(*r)
        return [found[k] for k in sorted(found)]

    def item_sources(self, item_id: int) -> list[str]:
        """The URLs of the feeds an item came from: the feed that brought it first, then the others."""
        rows = self.conn.execute(
            "SELECT f.url FROM items i JOIN feeds f ON f.id = i.feed_id WHERE i.id = ? "
            "UNION ALL SELECT f.url FROM (SELECT * FROM item_sources WHERE item_id = ? ORDER BY seen_at) s "
            "JOIN feeds f ON f.id = s.feed_id",
            (item_id, item_id),
        )
        return [r[0] for r in rows]

    def commit_poll(
        self,
        feed_id: int,
        now: datetime,
        *,
        ok: bool,
        etag: str | None,
        last_modified: str | None,
        error: str | None,
        next_poll_at: datetime,
        gone: bool = False,
        items: Sequence[ProcessedItem] = (),
        updates: Sequence[ItemUpdate] = (),
        sources: Sequence[tuple[int, str]] = (),
        guids_unstable: bool | None = None,
        source_state: str | None = None,
    ) -> CommitResult:
        """One transaction: feed state, new items (seen), their matches and their outbox rows (and those of
        a known item that matches for the first time: ``stored_id``), and the identity decisions of the
        poll: ``updates`` to stored items, ``sources`` (another feed's item id, this feed's uid for it) and
        the feed's ``guids_unstable`` flag. ``source_state`` (a successful poll's watcher state, e.g. a
        channel's last message id) is kept in the same transaction as the items it describes; None leaves
        it as it was."""
        new_items = n_matches = n_outbox = 0
        instant_ids: list[int] = []
        with self.transaction() as conn:
            if ok:
                conn.execute(
                    "UPDATE feeds SET etag = ?, last_modified = ?, failures = 0, last_error = NULL, "
                    "next_poll_at = ?, last_polled_at = ?, last_ok_at = ?, initialised = 1, "
                    "source_state = COALESCE(?, source_state), claimed_by = NULL, claim_until = NULL WHERE id = ?",
                    (etag, last_modified, ts(next_poll_at), ts(now), ts(now), source_state, feed_id),
                )
            else:
                conn.execute(
                    "UPDATE feeds SET failures = failures + 1, last_error = ?, next_poll_at = ?, "
                    "last_polled_at = ?, gone = ?, claimed_by = NULL, claim_until = NULL WHERE id = ?",
                    (error, ts(next_poll_at), ts(now), int(gone), feed_id),
                )
            if guids_unstable is not None:
                conn.execute("UPDATE feeds SET guids_unstable = ? WHERE id = ?", (int(guids_unstable), feed_id))
            conn.executemany(
                "UPDATE items SET title = ?, summary = ?, updated_at = ? WHERE id = ?",
                [(u.title, u.summary, ts(now), u.item_id) for u in updates],
            )
            texts: list[tuple[int, str, str]] = [(u.item_id, u.title, u.summary) for u in updates]  # to index
            conn.executemany(
                "INSERT INTO item_sources (item_id, feed_id, uid, seen_at) VALUES (?,?,?,?) "
                "ON CONFLICT(item_id, feed_id) DO NOTHING",
                [(item_id, feed_id, uid, ts(now)) for item_id, uid in sources],
            )
            subs = self._active_subscriptions(conn) if any(p.deliver and p.matches for p in items) else []
            inserted = self._insert_items(conn, feed_id, now, [p.item for p in items if p.stored_id is None])
            stories: dict[int, int] = {}  # position in this poll → story id
            for position, p in enumerate(items):
                it = p.item
                if p.stored_id is not None:
                    # a known item matches only if it never matched before: then it is matched (and alerted)
                    # once, with the text that matched; an item that matched already is never alerted again
                    if conn.execute("SELECT 1 FROM matches WHERE item_id = ?", (p.stored_id,)).fetchone():
                        continue
                    conn.execute(
                        "UPDATE items SET title = ?, summary = ?, link = COALESCE(?, link), updated_at = ? "
                        "WHERE id = ?",
                        (it.title, it.summary, it.link, ts(now), p.stored_id),
                    )
                    item_id: int | None = p.stored_id
                    texts.append((p.stored_id, it.title, it.summary))
                else:
                    item_id = inserted.pop(it.uid, None)
                    if item_id is None:
                        continue  # seen before: never processed twice
                    new_items += 1
                    texts.append((item_id, it.title, it.summary))
                assert item_id is not None
                if p.story is not None:  # the story decision is stored with the item, in its transaction
                    d = p.story
                    story = d.story_id or (stories.get(d.same_as) if d.same_as is not None else None) or item_id
                    stories[position] = story
                    conn.execute(
                        "UPDATE items SET story_id = ?, embedding = ? WHERE id = ?", (story, d.embedding, item_id)
                    )
                    at = ts(it.published or now)
                    conn.executemany(
                        "INSERT INTO story_keys (key, item_id, at) VALUES (?,?,?)", [(k, item_id, at) for k in d.keys]
                    )
                for m in p.matches:
                    conn.execute(
                        "INSERT INTO matches (item_id, rule, priority, hits_json, created_at, score) "
                        "VALUES (?,?,?,?,?,?) ON CONFLICT(item_id, rule) DO NOTHING",
                        (item_id, m.rule, m.priority, _hits_json(m), ts(now), m.score),
                    )
                    n_matches += 1
                if not (p.deliver and p.matches):
                    continue
                for sub in subs:
                    followed = [m for m in p.matches if sub.follows([m.rule])]
                    if not followed:
                        continue
                    rules_json = json.dumps([m.rule for m in followed])
                    kinds = []
                    if sub.mode in ("instant", "both") and any(m.priority == "instant" for m in followed):
                        kinds.append("instant")
                    if sub.mode in ("digest", "both"):
                        kinds.append("digest")
                    for kind in kinds:
                        row = conn.execute(
                            "INSERT INTO outbox (subscription_id, item_id, kind, rules_json, created_at) "
                            "VALUES (?,?,?,?,?) ON CONFLICT(subscription_id, item_id, kind) DO NOTHING RETURNING id",
                            (sub.id, item_id, kind, rules_json, ts(now)),
                        ).fetchall()
                        if row:
                            n_outbox += 1
                            if kind == "instant":
                                instant_ids.append(int(row[0][0]))
            self._index(conn, texts)
        return CommitResult(new_items, n_matches, n_outbox, tuple(instant_ids))

    def _insert_items(self, conn: Connection, feed_id: int, now: datetime, items: Sequence[Item]) -> dict[str, int]:
        """Insert a poll's new items, a few hundred a statement (one round trip each on PostgreSQL, not one
        an item); uid → id of those inserted (a uid stored before, or twice in the poll, inserts once)."""
        out: dict[str, int] = {}
        for start in range(0, len(items), 500):  # 11 parameters a row: far below either database's limit
            part = items[start : start + 500]
            params: list[Any] = []
            for it in part:
                keys = it.keys
                params += (
                    feed_id,
                    it.uid,
                    it.title,
                    it.summary,
                    it.link,
                    ts(it.published),
                    it.lang,
                    ts(now),
                    keys.guid if keys else None,
                    keys.link if keys else None,
                    keys.fingerprint if keys else None,
                )
            rows = conn.execute(
                "INSERT INTO items (feed_id, uid, title, summary, link, published, lang, seen_at, guid, link_key, "
                f"fingerprint) VALUES {','.join(['(?,?,?,?,?,?,?,?,?,?,?)'] * len(part))} "
                "ON CONFLICT(feed_id, uid) DO NOTHING RETURNING id, uid",
                params,
            ).fetchall()  # all: SQLite finishes a RETURNING statement as its rows are read
            out.update((str(r[1]), int(r[0])) for r in rows)
        return out

    def _index(self, conn: Connection, texts: Sequence[tuple[int, str, str]]) -> None:
        """Keep the search index of items just written, in their transaction. SQLite: its triggers already
        did (store/search.py); PostgreSQL: the same keys, written here as a tsvector (``item_search``)."""
        if self.dialect != "postgresql" or not texts:
            return
        from store.search import vector_text  # store/search.py imports this module

        keep = [(i, vector_text(t, s)) for i, t, s in texts if t or s]
        drop = [(i,) for i, t, s in texts if not (t or s)]
        conn.executemany(
            "INSERT INTO item_search (item_id, keys) VALUES (?, ?::tsvector) "
            "ON CONFLICT(item_id) DO UPDATE SET keys = excluded.keys",
            keep,
        )
        conn.executemany("DELETE FROM item_search WHERE item_id = ?", drop)

    def recent_items(self, since: datetime) -> list[Item]:
        rows = self.conn.execute(
            "SELECT f.url, i.uid, i.title, i.summary, i.link, i.published, i.lang, f.name "
            "FROM items i JOIN feeds f ON f.id = i.feed_id WHERE i.seen_at >= ? ORDER BY +i.id",  # + : seen_at's index
            (ts(since),),
        )
        return [Item(r[0], r[1], r[2], r[3], r[4], from_ts(r[5]), r[6], r[7]) for r in rows]

    def match_counts(self, since: datetime) -> dict[str, int]:
        rows = self.conn.execute(
            # rule || '': grouped by an expression, so SQLite keeps to the created_at index (v8)
            "SELECT rule || '', COUNT(*) FROM matches WHERE created_at >= ? GROUP BY 1",
            (ts(since),),
        )
        return {r[0]: r[1] for r in rows}

    def daily_match_counts(
        self,
        since: datetime,
        until: datetime,
        tz: ZoneInfo,
        by: Literal["rule", "entity"] = "rule",
        names: Sequence[str] | None = None,
    ) -> dict[str, dict[date, int]]:
        """Matched items per local day (in ``tz``) from ``since`` to ``until`` (both included), per rule or
        per group named in the matches' hits (``by="entity"``; an item counts once a group a day).

        A day is the day the bot saw the item. Every day of the period is present, zero-filled; every
        name in ``names`` is present (and only those), else every name that had a match.
        """
        first, last = since.astimezone(tz).date(), until.astimezone(tz).date()
        days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
        starts = [ts(datetime.combine(d, time(0), tzinfo=tz)) or "" for d in days]  # local midnights, UTC text
        # SQL counts per UTC hour (per minute when a local midnight is not on the hour, e.g. UTC+05:30);
        # a bucket never straddles midnight, so each falls in one day, found by bisecting the midnights.
        width, pad = (13, ":00:00.000000Z") if all(s[14:16] == "00" for s in starts) else (16, ":00.000000Z")
        key = "m.rule" if by == "rule" else self.backend.json_first("j.value")
        source = "matches m" if by == "rule" else f"matches m, {self.backend.json_elements('m.hits_json', 'j')}"
        count = "COUNT(*)" if by == "rule" else "COUNT(DISTINCT m.item_id)"  # (item, rule) is unique
        where = "m.created_at >= ? AND m.created_at <= ?"
        params: list[Any] = [ts(since), ts(until)]
        if names is not None:
            where += f" AND {key} IN ({','.join('?' * len(names))})"
            params += names
        rows = self.conn.execute(
            f"SELECT {key}, substr(m.created_at, 1, {width}), {count} FROM {source} WHERE {where} GROUP BY 1, 2",
            params,
        )
        out = {name: [0] * len(days) for name in names or ()}
        for name, bucket, n in rows:
            index = bisect_right(starts, bucket + pad) - 1
            if 0 <= index < len(days):
                out.setdefault(name, [0] * len(days))[index] += n
        return {name: dict(zip(days, counts, strict=True)) for name, counts in out.items()}

    def prune(self, now: datetime, keep_days: float | None = 365) -> int:
        """Drop the stored text of items seen more than ``keep_days`` ago that nothing still waits to
        deliver, and their delivered outbox rows; ``None`` keeps everything (``storage.retention: forever``).
        The item rows themselves stay (a few dozen bytes): a feed that still lists an old entry must never
        see it as new and alert again. Blanking the text also takes the item out of the search index."""
        if keep_days is None:
            return 0
        cutoff = ts(now - timedelta(days=keep_days))
        with self.transaction() as conn:
            conn.execute("DELETE FROM outbox WHERE state != 'pending' AND created_at < ?", (cutoff,))
            # stories look back 48 h: older candidate buckets, alerts and vectors are never read again
            conn.execute("DELETE FROM story_keys WHERE at < ?", (cutoff,))
            conn.execute("DELETE FROM story_alerts WHERE created_at < ?", (cutoff,))
            conn.execute("UPDATE items SET embedding = NULL WHERE seen_at < ? AND embedding IS NOT NULL", (cutoff,))
            blanked = conn.execute(
                "UPDATE items SET title = '', summary = '', link = NULL WHERE seen_at < ? AND title != '' "
                "AND id NOT IN (SELECT item_id FROM outbox WHERE state = 'pending') RETURNING id",
                (cutoff,),
            ).fetchall()
            self._index(conn, [(int(r[0]), "", "") for r in blanked])
            return len(blanked)

    # -- subscriptions -------------------------------------------------------------------------------

    _SUB_COLUMNS = (
        "id, chat_id, mode, rules_json, digest_time, timezone, paused, paused_reason, muted_until, "
        "last_digest_at, chat_title, chat_type, source, created_at, stories"
    )

    @staticmethod
    def _sub(row: Sequence[Any]) -> Subscription:
        return Subscription(
            id=row[0],
            chat_id=row[1],
            mode=row[2],
            rules=tuple(json.loads(row[3])),
            digest_time=row[4],
            timezone=row[5],
            paused=bool(row[6]),
            paused_reason=row[7],
            muted_until=from_ts(row[8]),
            last_digest_at=from_ts(row[9]),
            chat_title=row[10],
            chat_type=row[11],
            source=row[12],
            created_at=from_ts(row[13]),
            stories=bool(row[14]),
        )

    def _active_subscriptions(self, conn: Connection) -> list[Subscription]:
        rows = conn.execute(f"SELECT {self._SUB_COLUMNS} FROM subscriptions WHERE paused = 0 ORDER BY id")
        return [self._sub(r) for r in rows]

    def upsert_subscription(
        self,
        chat: int | str,
        now: datetime,
        *,
        mode: str = "both",
        rules: Sequence[str] = (),
        digest_time: str | None = None,
        timezone: str | None = None,
        source: str = "chat",
        chat_title: str | None = None,
        chat_type: str | None = None,
        stories: bool | None = None,
    ) -> Subscription:
        """Create or update a chat's subscription; ``stories`` None keeps what it had (on for a new one)."""
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO subscriptions (chat_id, mode, rules_json, digest_time, timezone, source, "
                "chat_title, chat_type, created_at, updated_at, stories) VALUES (?,?,?,?,?,?,?,?,?,?,?) "
                "ON CONFLICT(chat_id) DO UPDATE SET mode = excluded.mode, rules_json = excluded.rules_json, "
                "digest_time = excluded.digest_time, timezone = excluded.timezone, "
                "chat_title = COALESCE(excluded.chat_title, subscriptions.chat_title), "
                "chat_type = COALESCE(excluded.chat_type, subscriptions.chat_type), updated_at = excluded.updated_at"
                + (", stories = excluded.stories" if stories is not None else ""),
                (
                    chat_key(chat),
                    mode,
                    json.dumps(list(rules)),
                    digest_time,
                    timezone,
                    source,
                    chat_title,
                    chat_type,
                    ts(now),
                    ts(now),
                    int(stories if stories is not None else True),
                ),
            )
        sub = self.subscription(chat)
        assert sub is not None
        return sub

    def sync_config_subscriptions(self, configs: Sequence[SubscriptionConfig], now: datetime) -> None:
        for c in configs:
            self.upsert_subscription(
                c.chat,
                now,
                mode=c.mode,
                rules=c.rules,
                digest_time=c.digest_time.strftime("%H:%M") if c.digest_time else None,
                timezone=c.timezone,
                source="config",
                stories=c.stories,
            )

    def subscription(self, chat: int | str) -> Subscription | None:
        row = self.conn.execute(
            f"SELECT {self._SUB_COLUMNS} FROM subscriptions WHERE chat_id = ?", (chat_key(chat),)
        ).fetchone()
        return self._sub(row) if row else None

    def subscriptions(self) -> list[Subscription]:
        return [self._sub(r) for r in self.conn.execute(f"SELECT {self._SUB_COLUMNS} FROM subscriptions ORDER BY id")]

    def delete_subscription(self, chat: int | str) -> bool:
        with self.transaction() as conn:
            return conn.execute("DELETE FROM subscriptions WHERE chat_id = ?", (chat_key(chat),)).rowcount > 0

    def set_paused(self, chat: int | str, paused: bool, reason: str | None, now: datetime) -> None:
        with self.transaction() as conn:
            conn.execute(
                "UPDATE subscriptions SET paused = ?, paused_reason = ?, updated_at = ? WHERE chat_id = ?",
                (int(paused), reason if paused else None, ts(now), chat_key(chat)),
            )

    def set_muted_until(self, chat: int | str, until: datetime | None, now: datetime) -> None:
        with self.transaction() as conn:
            conn.execute(
                "UPDATE subscriptions SET muted_until = ?, updated_at = ? WHERE chat_id = ?",
                (ts(until), ts(now), chat_key(chat)),
            )

    def chat_language(self, chat: int | str) -> str | None:
        """The interface language chosen for ``chat`` with /language, or None."""
        row = self.conn.execute("SELECT language FROM chat_settings WHERE chat_id = ?", (chat_key(chat),)).fetchone()
        return str(row[0]) if row else None

    def set_chat_language(self, chat: int | str, language: str, now: datetime) -> None:
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO chat_settings (chat_id, language, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT (chat_id) DO UPDATE SET language = excluded.language, updated_at = excluded.updated_at",
                (chat_key(chat), language, ts(now)),
            )

    def migrate_chat(self, old: int | str, new: int | str, now: datetime) -> bool:
        """A group became a supergroup: its subscription (and queue) and its chosen language move to the new id."""
        with self.transaction() as conn:
            conn.execute(  # unless the new id chose its own language already
                "UPDATE chat_settings SET chat_id = ? WHERE chat_id = ? "
                "AND NOT EXISTS (SELECT 1 FROM chat_settings WHERE chat_id = ?)",
                (chat_key(new), chat_key(old), chat_key(new)),
            )
            if conn.execute("SELECT 1 FROM subscriptions WHERE chat_id = ?", (chat_key(new),)).fetchone():
                conn.execute("DELETE FROM subscriptions WHERE chat_id = ?", (chat_key(old),))
                return False
            return (
                conn.execute(
                    "UPDATE subscriptions SET chat_id = ?, updated_at = ? WHERE chat_id = ?",
                    (chat_key(new), ts(now), chat_key(old)),
                ).rowcount
                > 0
            )

    # -- outbox --------------------------------------------------------------------------------------

    def _entries(self, where: str, params: Sequence[Any], limit: int | None = None) -> list[OutboxEntry]:
        sql = (
            "SELECT o.id, o.subscription_id, s.chat_id, o.kind, o.rules_json, o.attempts, o.created_at, "
            "o.item_id, f.url, i.uid, i.title, i.summary, i.link, i.published, i.lang, f.name, i.story_id, s.stories, "
            "f.labels FROM outbox o JOIN subscriptions s ON s.id = o.subscription_id "
            "JOIN items i ON i.id = o.item_id JOIN feeds f ON f.id = i.feed_id "
            f"WHERE {where} ORDER BY o.id" + (f" LIMIT {int(limit)}" if limit else "")
        )
        rows = self.conn.execute(sql, params).fetchall()
        out = []
        for r in rows:
            rules = json.loads(r[4])
            match_rows = self.conn.execute(
                f"SELECT rule, priority, hits_json, score FROM matches WHERE item_id = ? AND rule IN "
                f"({','.join('?' * len(rules))}) ORDER BY id",
                (r[7], *rules),
            ).fetchall()
            item = Item(r[8], r[9], r[10], r[11], r[12], from_ts(r[13]), r[14], r[15], labels=_labels(r[18]))
            created = from_ts(r[6])
            assert created is not None
            out.append(
                OutboxEntry(
                    id=r[0],
                    subscription_id=r[1],
                    chat_id=r[2],
                    kind=r[3],
                    item=item,
                    matches=tuple(_match_from_row(*m) for m in match_rows),
                    attempts=r[5],
                    created_at=created,
                    item_id=r[7],
                    story_id=r[16],
                    stories=bool(r[17]),
                )
            )
        return out

    def pending_instant(
        self, now: datetime, limit: int = 100, *, subscriptions: Sequence[int] | None = None
    ) -> list[OutboxEntry]:
        """Due instant alerts (of ``subscriptions`` only, when given: the chats a worker claimed)."""
        only = ""
        if subscriptions is not None:
            if not subscriptions:
                return []
            only = f" AND o.subscription_id IN ({','.join(str(int(i)) for i in subscriptions)})"
        return self._entries(
            "o.state = 'pending' AND o.kind = 'instant' AND s.paused = 0 "
            "AND (o.next_attempt_at IS NULL OR o.next_attempt_at <= ?) "
            "AND (s.muted_until IS NULL OR s.muted_until <= ?)" + only,
            (ts(now), ts(now)),
            limit,
        )

    def digest_entries(self, subscription_id: int, until: datetime) -> list[OutboxEntry]:
        return self._entries(
            "o.state = 'pending' AND o.kind = 'digest' AND o.subscription_id = ? AND o.created_at <= ?",
            (subscription_id, ts(until)),
        )

    def digest_retry_at(self, subscription_id: int) -> datetime | None:
        """The latest retry time set on a subscription's pending digest entries (after a 429 or a network
        error), or None; the digest waits until it has passed."""
        row = self.conn.execute(
            "SELECT MAX(next_attempt_at) FROM outbox "
            "WHERE subscription_id = ? AND kind = 'digest' AND state = 'pending'",
            (subscription_id,),
        ).fetchone()
        return from_ts(row[0]) if row else None

    # The delivery state machine: pending → in_flight → sent | uncertain | dropped (see delivery/outbox.py).

    def begin_send(
        self, ids: Sequence[int], now: datetime, *, worker: str | None = None, lease: float = 0.0
    ) -> list[int]:
        """Record that ``ids`` are being handed to Telegram (an attempt counted), in its own transaction,
        BEFORE the send: when this write fails (one of DB_ERRORS), nothing may be sent. Returns the ids that
        were still pending and are now in flight for ``worker`` (until ``now + lease``): only those may be
        sent (another worker took the others)."""
        until = ts(now + timedelta(seconds=lease)) if worker else None
        moved: list[int] = []
        with self.transaction() as conn:
            for i in ids:
                cur = conn.execute(
                    "UPDATE outbox SET state = 'in_flight', in_flight_at = ?, attempts = attempts + 1, "
                    "claimed_by = ?, claim_until = ? WHERE id = ? AND state = 'pending'",
                    (ts(now), worker, until, i),
                )
                if cur.rowcount:
                    moved.append(i)
        return moved

    def mark_sent(
        self, ids: Sequence[int], now: datetime, *, chat_id: str | None = None, message_id: int | None = None
    ) -> None:
        """Telegram accepted ``ids`` (as ``message_id`` in ``chat_id``, when known)."""
        with self.transaction() as conn:
            conn.executemany(
                "UPDATE outbox SET state = 'sent', sent_at = ?, in_flight_at = NULL, "
                "message_id = COALESCE(?, message_id), chat_id = COALESCE(?, chat_id) WHERE id = ?",
                [(ts(now), message_id, chat_id, i) for i in ids],
            )

    def release(self, ids: Sequence[int]) -> None:
        """In flight but never handed to Telegram (an earlier message of the same send failed): pending
        again, without counting a send Telegram may have accepted."""
        with self.transaction() as conn:
            conn.executemany(
                "UPDATE outbox SET state = 'pending', in_flight_at = NULL WHERE id = ? AND state = 'in_flight'",
                [(i,) for i in ids],
            )

    def mark_unconfirmed(self, ids: Sequence[int], error: str) -> list[int]:
        """Telegram may have accepted ``ids`` but we cannot know (its reply could not be read, the record
        after it failed, the process died). Each such send is counted; an entry is sent again until
        :data:`MAX_UNCONFIRMED` such sends, then it is 'uncertain' and never sent again. Returns the ids that
        became uncertain."""
        with self.transaction() as conn:
            conn.executemany(
                "UPDATE outbox SET unconfirmed = unconfirmed + 1, in_flight_at = NULL, last_error = ?, "
                "state = CASE WHEN unconfirmed + 1 >= ? THEN 'uncertain' ELSE 'pending' END "
                "WHERE id = ? AND state IN ('in_flight', 'pending')",
                [(error, MAX_UNCONFIRMED, i) for i in ids],
            )
            return self._uncertain_among(conn, ids)

    def resolve_in_flight(self, worker: str | None = None, now: datetime | None = None) -> tuple[list[int], list[int]]:
        """Entries left in flight (the process died during a send, or the write after it failed): each is a
        send Telegram may have accepted (:meth:`mark_unconfirmed`). Returns (resent later, uncertain).
        With ``worker`` (and ``now``) on a shared store, only entries whose lease expired, ``worker``'s own
        and its previous life's are resolved: another live worker's sends are its own business."""
        where, params = "", list[Any]()
        if worker is not None and now is not None:
            free, params = self._free("claimed_by", "claim_until", worker, now)
            where = f" AND (claimed_by = ? OR {free})"
            params = [worker, *params]
        ids = [
            r[0]
            for r in self.conn.execute(f"SELECT id FROM outbox WHERE state = 'in_flight'{where} ORDER BY id", params)
        ]
        if not ids:
            return [], []
        uncertain = self.mark_unconfirmed(ids, "in flight when the delivery was interrupted")
        return [i for i in ids if i not in set(uncertain)], uncertain

    @staticmethod
    def _uncertain_among(conn: Connection, ids: Sequence[int]) -> list[int]:
        out: list[int] = []
        for start in range(0, len(ids), 500):
            part = list(ids[start : start + 500])
            rows = conn.execute(
                f"SELECT id FROM outbox WHERE state = 'uncertain' AND id IN ({','.join('?' * len(part))})", part
            )
            out.extend(r[0] for r in rows)
        return sorted(out)

    def outbox_state(self, outbox_id: int) -> tuple[str, int, int, int | None, str | None]:
        """(state, attempts, unconfirmed sends, message_id, chat_id as sent) of one entry."""
        row = self.conn.execute(
            "SELECT state, attempts, unconfirmed, message_id, chat_id FROM outbox WHERE id = ?", (outbox_id,)
        ).fetchone()
        if row is None:
            raise KeyError(outbox_id)
        return row[0], row[1], row[2], row[3], row[4]

    def mark_retry(self, outbox_id: int, now: datetime, next_attempt_at: datetime, error: str) -> None:
        with self.transaction() as conn:
            conn.execute(
                "UPDATE outbox SET state = 'pending', in_flight_at = NULL, next_attempt_at = ?, last_error = ? "
                "WHERE id = ? AND state IN ('pending', 'in_flight')",
                (ts(next_attempt_at), error, outbox_id),
            )

    def mark_dropped(self, outbox_id: int, error: str) -> None:
        with self.transaction() as conn:
            conn.execute(
                "UPDATE outbox SET state = 'dropped', in_flight_at = NULL, last_error = ? WHERE id = ?",
                (error, outbox_id),
            )

    def complete_digest(self, subscription_id: int, ids: Sequence[int], now: datetime) -> None:
        """Mark a digest's entries sent and record the digest time, together."""
        with self.transaction() as conn:
            conn.executemany(
                "UPDATE outbox SET state = 'sent', sent_at = ?, in_flight_at = NULL "
                "WHERE id = ? AND state != 'uncertain'",
                [(ts(now), i) for i in ids],
            )
            conn.execute("UPDATE subscriptions SET last_digest_at = ? WHERE id = ?", (ts(now), subscription_id))

    def queue_sizes(self) -> dict[tuple[str, str], int]:
        rows = self.conn.execute("SELECT kind, state, COUNT(*) FROM outbox GROUP BY kind, state")
        return {(r[0], r[1]): r[2] for r in rows}

    # -- votes (👍/👎) -----------------------------------------------------------------------------

    def take_daily_quota(self, name: str, day: date, limit: int) -> bool:
        """Count one use of ``name``'s quota for ``day`` and say True, or False when ``limit`` uses were
        already counted that day (nothing counted then). Kept in ``kv`` as ``quota:<day>:<name>``, so a
        restart keeps the day's count; earlier days' counters are dropped as a new day starts."""
        key = f"quota:{day.isoformat()}:{name}"
        with self.transaction() as conn:
            row = conn.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
            used = int(row[0]) if row else 0
            if used >= limit:
                return False
            if row is None:
                conn.execute("DELETE FROM kv WHERE key LIKE 'quota:%' AND key < ?", (f"quota:{day.isoformat()}",))
            conn.execute(
                "INSERT INTO kv (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, str(used + 1)),
            )
        return True

    def secret(self, name: str) -> bytes:
        """A random per-store secret kept in ``kv`` under ``name`` (made on first use, then stable)."""
        row = self.conn.execute("SELECT value FROM kv WHERE key = ?", (name,)).fetchone()
        if row is None:
            with self.transaction() as conn:
                conn.execute("INSERT OR IGNORE INTO kv (key, value) VALUES (?, ?)", (name, secrets.token_hex(32)))
                row = conn.execute("SELECT value FROM kv WHERE key = ?", (name,)).fetchone()
        return bytes.fromhex(row[0])

    def item_with_matches(self, item_id: int) -> tuple[Item, tuple[Match, ...]] | None:
        """A stored item and the matches recorded for it; None if there is no such item or its text was
        pruned (nothing left to label)."""
        row = self.conn.execute(
            "SELECT f.url, i.uid, i.title, i.summary, i.link, i.published, i.lang, f.name "
            "FROM items i JOIN feeds f ON f.id = i.feed_id WHERE i.id = ?",
            (item_id,),
        ).fetchone()
        if row is None or not (row[2] or row[3]):
            return None
        matches = self.conn.execute(
            "SELECT rule, priority, hits_json FROM matches WHERE item_id = ? ORDER BY id", (item_id,)
        ).fetchall()
        item = Item(row[0], row[1], row[2], row[3], row[4], from_ts(row[5]), row[6], row[7])
        return item, tuple(_match_from_row(*m) for m in matches)

    def record_vote(
        self,
        item_id: int,
        user_id: int,
        chat_id: str,
        label: int,
        item: Item,
        verdict: Sequence[dict[str, Any]],
        now: datetime,
    ) -> int | None:
        """Keep ``user_id``'s vote on ``item_id`` (replacing their earlier one); returns the earlier label."""
        with self.transaction() as conn:
            before = conn.execute(
                "SELECT label FROM votes WHERE item_id = ? AND user_id = ?", (item_id, user_id)
            ).fetchone()
            conn.execute(
                "INSERT INTO votes (item_id, user_id, chat_id, label, title, summary, lang, link, verdict_json, "
                "voted_at) VALUES (?,?,?,?,?,?,?,?,?,?) ON CONFLICT(item_id, user_id) DO UPDATE SET "
                "chat_id = excluded.chat_id, label = excluded.label, title = excluded.title, "
                "summary = excluded.summary, lang = excluded.lang, link = excluded.link, "
                "verdict_json = excluded.verdict_json, voted_at = excluded.voted_at",
                (
                    item_id,
                    user_id,
                    chat_id,
                    label,
                    item.title,
                    item.summary,
                    item.lang,
                    item.link,
                    json.dumps(list(verdict), ensure_ascii=False),
                    ts(now),
                ),
            )
        return None if before is None else int(before[0])

    def votes(self, since: datetime | None = None) -> list[Vote]:
        """Every user's latest vote per item (cast at or after ``since``), oldest item first."""
        rows = self.conn.execute(
            "SELECT v.item_id, v.user_id, v.chat_id, v.label, f.url, i.uid, v.title, v.summary, v.link, "
            "i.published, v.lang, f.name, v.verdict_json, v.voted_at "
            "FROM votes v JOIN items i ON i.id = v.item_id JOIN feeds f ON f.id = i.feed_id "
            "WHERE v.voted_at >= ? ORDER BY v.item_id, v.user_id",
            (ts(since) if since else "",),
        ).fetchall()
        out = []
        for r in rows:
            verdict = tuple(json.loads(r[12]))
            voted_at = from_ts(r[13])
            assert voted_at is not None
            item = Item(r[4], r[5], r[6], r[7], r[8], from_ts(r[9]), r[10], r[11])
            rules = tuple(str(v["rule"]) for v in verdict)
            out.append(Vote(r[0], r[1], r[2], r[3], item, rules, verdict, voted_at))
        return out

    # -- stories -------------------------------------------------------------------------------------

    # 2,048 held ~13 MB more at 5,000 feeds (peak RSS 148–150 → 136–137 MB) for no measurable CPU
    STORY_MEMBERS_CACHED = 1024

    def story_candidates(
        self, keys: Sequence[str], since: datetime, *, per_key: int = 64, cross_key: str | None = None, cross: int = 128
    ) -> list[StoryMember]:
        """Stored matched items sharing a bucket with a new one, seen since ``since``: the latest
        ``per_key`` of each bucket (``cross`` of ``cross_key``, the bucket searched across languages).

        Decoded candidates are kept (the latest :attr:`STORY_MEMBERS_CACHED`) and reused while their item row
        reads the same: an item's matches are written once, with its story keys, and never change, and a
        feed's items share most candidates with the items before them. Decoding each candidate's matches on
        every call was a 425 ms stretch of a 5,000-feed cycle on the event loop (issue 16)."""
        ids: set[int] = set()
        distinct = list(dict.fromkeys(keys))
        for start in range(0, len(distinct), 50):  # one statement (round trip) for a new item's keys, not one a key
            some = distinct[start : start + 50]
            params: list[Any] = []
            for key in some:
                params += (key, ts(since), cross if key == cross_key else per_key)
            arm = (
                "SELECT item_id FROM (SELECT item_id FROM story_keys WHERE key = ? AND at >= ? "
                "ORDER BY at DESC LIMIT ?) k"
            )
            rows = self.conn.execute(" UNION ALL ".join([arm] * len(some)), params)
            ids.update(r[0] for r in rows)
        cache = self._story_members
        members: dict[int, StoryMember] = {}
        # a kept candidate is checked by a short mark first (every write to an item's title, summary or
        # link sets updated_at; the story, the vector and a pruned text are read directly): reading every
        # candidate's whole row, summary and vector, on each call was most of what was left of this look-up
        # on the loop (issue 16). Candidates not kept are read whole at once (no mark round trip).
        kept = sorted(i for i in ids if i in cache)
        read = sorted(i for i in ids if i not in cache)
        for start in range(0, len(kept), 500):
            part = kept[start : start + 500]
            for mark in self.conn.execute(
                "SELECT i.id, i.story_id, i.updated_at, length(i.title), length(i.summary), "
                "CASE WHEN i.embedding IS NULL THEN 0 ELSE 1 END, f.url, f.name "
                "FROM items i JOIN feeds f ON f.id = i.feed_id "
                f"WHERE i.id IN ({','.join('?' * len(part))})",
                part,
            ):
                known = cache[mark[0]]
                if known[0] == tuple(mark):
                    members[mark[0]] = known[1]
                    cache.move_to_end(mark[0])
                else:
                    read.append(mark[0])
        for start in range(0, len(read), 500):
            part = read[start : start + 500]
            marks_of = ",".join("?" * len(part))
            rows = self.conn.execute(
                "SELECT i.id, i.story_id, f.url, i.uid, i.title, i.summary, i.link, i.published, i.lang, f.name, "
                f"i.embedding, i.updated_at FROM items i JOIN feeds f ON f.id = i.feed_id WHERE i.id IN ({marks_of})",
                part,
            ).fetchall()
            decoded: dict[int, list[Match]] = {}
            for m in self.conn.execute(
                f"SELECT item_id, rule, priority, hits_json FROM matches WHERE item_id IN ({marks_of}) "
                "ORDER BY item_id, id",
                part,
            ):
                decoded.setdefault(m[0], []).append(_match_from_row(m[1], m[2], m[3]))
            for r in rows:
                item = Item(r[2], r[3], r[4], r[5], r[6], from_ts(r[7]), r[8], r[9])
                member = StoryMember(r[0], r[1], item, tuple(decoded.get(r[0], ())), r[10])
                mark = (r[0], r[1], r[11], len(r[4]), len(r[5]), 0 if r[10] is None else 1, r[2], r[9])
                cache[r[0]] = (mark, member)
                cache.move_to_end(r[0])
                members[r[0]] = member
        while len(cache) > self.STORY_MEMBERS_CACHED:
            cache.popitem(last=False)
        return [members[i] for i in sorted(members)]

    def item_stories(self) -> dict[tuple[str, str], int | None]:
        """Every stored item's story id by (feed url, uid) (tests and diagnostics)."""
        rows = self.conn.execute("SELECT f.url, i.uid, i.story_id FROM items i JOIN feeds f ON f.id = i.feed_id")
        return {(r[0], r[1]): r[2] for r in rows}

    @staticmethod
    def _story_alert(row: Sequence[Any]) -> StoryAlert:
        created = from_ts(row[9])
        assert created is not None
        return StoryAlert(
            row[0],
            row[1],
            row[2],
            row[3],
            row[4],
            tuple(json.loads(row[5])),
            bool(row[6]),
            row[7],
            from_ts(row[8]),
            created,
        )

    _ALERT_COLUMNS = (
        "subscription_id, story_id, chat_id, message_id, text, sources_json, dirty, replies, edited_at, created_at"
    )

    def story_alert(self, subscription_id: int, story_id: int) -> StoryAlert | None:
        row = self.conn.execute(
            f"SELECT {self._ALERT_COLUMNS} FROM story_alerts WHERE subscription_id = ? AND story_id = ?",
            (subscription_id, story_id),
        ).fetchone()
        return self._story_alert(row) if row else None

    def story_alert_item(self, alert: StoryAlert) -> int | None:
        """The item whose alert message ``alert`` is (the story's first report in that chat), or None."""
        row = self.conn.execute(
            "SELECT item_id FROM outbox WHERE subscription_id = ? AND chat_id = ? AND message_id = ? "
            "AND state = 'sent' ORDER BY id LIMIT 1",
            (alert.subscription_id, alert.chat_id, alert.message_id),
        ).fetchone()
        return int(row[0]) if row else None

    def record_story_alert(
        self,
        outbox_id: int,
        subscription_id: int,
        story_id: int,
        chat_id: str,
        message_id: int,
        text: str,
        source: str,
        now: datetime,
    ) -> None:
        """The first alert of a story went out: mark it sent and remember its message, together."""
        with self.transaction() as conn:
            conn.execute(  # as mark_sent: the attempt was counted when the send began
                "UPDATE outbox SET state = 'sent', sent_at = ?, in_flight_at = NULL, message_id = ?, chat_id = ? "
                "WHERE id = ?",
                (ts(now), message_id, chat_id, outbox_id),
            )
            conn.execute(
                "INSERT INTO story_alerts (subscription_id, story_id, chat_id, message_id, text, sources_json, "
                "created_at) VALUES (?,?,?,?,?,?,?) ON CONFLICT(subscription_id, story_id) DO UPDATE SET "
                "chat_id = excluded.chat_id, message_id = excluded.message_id, text = excluded.text, "
                "sources_json = excluded.sources_json, dirty = 0, replies = 0, edited_at = NULL, "
                "created_at = excluded.created_at",
                (
                    subscription_id,
                    story_id,
                    chat_id,
                    message_id,
                    text,
                    json.dumps([source], ensure_ascii=False),
                    ts(now),
                ),
            )

    def absorb_into_story(self, outbox_id: int, alert: StoryAlert, source: str, now: datetime) -> None:
        """A later report of an alerted story: its source joins the alert (to be edited in), and its own
        outbox row is done — one transaction, so a crash never sends it as a new alert nor loses it."""
        sources = list(alert.sources)
        new_source = source not in sources  # the same outlet again (an update) changes nothing shown
        if new_source:
            sources.append(source)
        with self.transaction() as conn:
            conn.execute(
                "UPDATE outbox SET state = 'sent', sent_at = ?, attempts = attempts + 1, last_error = 'story' "
                "WHERE id = ?",
                (ts(now), outbox_id),
            )
            if new_source:
                conn.execute(
                    "UPDATE story_alerts SET sources_json = ?, dirty = 1 WHERE subscription_id = ? AND story_id = ?",
                    (json.dumps(sources, ensure_ascii=False), alert.subscription_id, alert.story_id),
                )

    def dirty_story_alerts(self) -> list[StoryAlert]:
        rows = self.conn.execute(f"SELECT {self._ALERT_COLUMNS} FROM story_alerts WHERE dirty = 1 ORDER BY created_at")
        return [self._story_alert(r) for r in rows]

    def story_alert_updated(self, alert: StoryAlert, now: datetime, *, replied: bool) -> None:
        """The edit (or the reply that replaced it) went out with ``alert.sources``."""
        with self.transaction() as conn:
            conn.execute(
                "UPDATE story_alerts SET dirty = CASE WHEN sources_json = ? THEN 0 ELSE 1 END, edited_at = ?, "
                "replies = replies + ? WHERE subscription_id = ? AND story_id = ?",
                (
                    json.dumps(list(alert.sources), ensure_ascii=False),
                    ts(now),
                    int(replied),
                    alert.subscription_id,
                    alert.story_id,
                ),
            )

    # -- rule history --------------------------------------------------------------------------------

    def push_rule_version(
        self,
        file: str,
        content: str | None,
        action: str,
        author: str | None,
        now: datetime,
        follow: Mapping[str, Sequence[str]] | None = None,
    ) -> int:
        """Keep ``file``'s previous ``content`` for /undo; in the same transaction, set the rule lists of the
        subscriptions in ``follow`` (chat → rules), keeping their previous lists with the version."""
        with self.transaction() as conn:
            previous: dict[str, list[str]] = {}
            for chat, rules in (follow or {}).items():
                row = conn.execute("SELECT rules_json FROM subscriptions WHERE chat_id = ?", (chat_key(chat),))
                found = row.fetchone()
                if found is None:
                    continue
                previous[chat_key(chat)] = json.loads(found[0])
                conn.execute(
                    "UPDATE subscriptions SET rules_json = ?, updated_at = ? WHERE chat_id = ?",
                    (json.dumps(list(rules)), ts(now), chat_key(chat)),
                )
            cur = conn.execute(
                "INSERT INTO rule_history (file, content, action, author, created_at, subscriptions_json) "
                "VALUES (?,?,?,?,?,?) RETURNING id",
                (file, content, action, author, ts(now), json.dumps(previous) if previous else None),
            )
            return int(cur.fetchall()[0][0])

    def pop_rule_change(self, now: datetime) -> tuple[str, str | None, str] | None:
        """The latest saved version (file, content, action), removed from the history; the subscriptions
        that change updated get their previous rule lists back in the same transaction."""
        with self.transaction() as conn:
            row = conn.execute(
                "SELECT id, file, content, action, subscriptions_json FROM rule_history ORDER BY id DESC LIMIT 1"
            ).fetchone()
            if row is None:
                return None
            conn.execute("DELETE FROM rule_history WHERE id = ?", (row[0],))
            for chat, rules in (json.loads(row[4]) if row[4] else {}).items():
                conn.execute(
                    "UPDATE subscriptions SET rules_json = ?, updated_at = ? WHERE chat_id = ?",
                    (json.dumps(rules), ts(now), chat),
                )
            return row[1], row[2], row[3]

    def pop_rule_version(self, file: str | None = None) -> tuple[str, str | None, str] | None:
        """The latest saved version (file, content, action), removed from the history."""
        with self.transaction() as conn:
            row = conn.execute(
                "SELECT id, file, content, action FROM rule_history "
                + ("WHERE file = ? " if file else "")
                + "ORDER BY id DESC LIMIT 1",
                (file,) if file else (),
            ).fetchone()
            if row is None:
                return None
            conn.execute("DELETE FROM rule_history WHERE id = ?", (row[0],))
            return row[1], row[2], row[3]
