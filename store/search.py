"""Full-text search over every stored item: an SQLite FTS5 index of *normalised keys*, kept in step by
triggers on ``items``, and the query language people type into ``/search``.

Why keys and not FTS5's own tokenisers. The search must find what the rules would: ``Пхеньян`` finds
«в Пхеньяне», ``Корея`` finds «Северной Кореи», ``북한`` finds ``북한의``. Each stored token is indexed
as one key made by the rules' own normalisation (rules/text.py: case, ``ё``→``е``, NFKC, tokens) and,
per writing system:

* Cyrillic → the pymorphy3 lemma (rules/morph.py's analyser) when the dictionary knows the word, else
  its Snowball stem (rules/morph.py's stemmer): ``Пхеньяне``/``Пхеньян`` → ``пхеньян``, ``Кореи`` →
  ``корея``, ``Мацегорой``/``Мацегора`` → ``мацегор``. Cached per token (vocabularies are small);
* Latin → the English Snowball stem (``missiles`` → ``missil``);
* Hangul → the token as written; a query word of two syllables or more is a *prefix* of a token, as the
  rules' Korean aliases are, so ``북한`` finds ``북한의``, ``북한군은`` (and, as the rules without exclusions,
  ``북한강``); a one-syllable word is exact (the rules refuse it as a prefix: it finds far too much);
* digits and mixed tokens → as written.

The query goes through the same function, so both sides meet in the same form. Measured against
FTS5's ``trigram`` tokeniser (``python bench/search.py --compare``): trigram cannot match a query of
fewer than three characters at all (``북한`` is two syllables: 0 results), misses every Russian form
whose ending changes the stem (``Корея`` vs ``Кореи``, ``Россия`` vs ``России``): 4 of the bench's 8
cases, with an index of 26 MiB per 20,000 items against 3.6 MiB (+ 4.6 MiB of stored keys) for the key
index, which finds all 8. The figures are in the README.

Why triggers. Items are written by ``Store.commit_poll`` (and by other engineers' changes to it); an
``AFTER INSERT/UPDATE/DELETE`` trigger on ``items`` keeps the index in the same transaction whatever
writes the row, and ``Store.prune`` blanking an old item's text removes it from the index too. The
triggers call the application function ``search_keys``, which :func:`install` registers on every
connection the store opens (before migrations, which backfill existing rows). It never raises: a
failure falls back to the plain normalised tokens, so indexing can never make an item's commit fail.
A poll's items have their keys made beforehand, in the CPU pool (:func:`prepare_keys`); the trigger then
only takes them (~30 µs an item of the bench's feeds, more for long summaries, no longer on the event loop:
issue 16). Keys not prepared are made in the trigger as before, so the index never depends on it.

On PostgreSQL (store/postgres.py) the same keys are the index: the Store writes each item's keys, made by
the same :func:`_search_keys`, into ``item_search`` as a ``tsvector`` (each key split at non-letters as
FTS5's ``unicode61`` does, with its position) in the item's own transaction, behind a GIN index; a query
becomes a ``tsquery`` of the same keys (``<->`` for a phrase's next token, ``:*`` for a prefix, ``!`` for
an exclusion), so both backends find the same items in the same order (newest first). One edge differs:
a tsvector keeps positions up to 16,383, so a phrase lying wholly beyond that many keys of one item's text
is not found on PostgreSQL (its words are; FTS5 keeps every position). tests/test_store_search.py names it.

Query language (:func:`parse_query`): words must all occur (AND); ``"a phrase"`` in order; ``-word``
and ``-"a phrase"`` exclude; ``word*`` is an explicit prefix; ``rule:NAME`` keeps the items that rule
matched (the why), ``-rule:NAME`` drops them; ``label:state-media`` keeps items from feeds with that label
(``feeds[].labels``), ``-label:NAME`` drops them. A query of only exclusions, an empty one or an unclosed
quote is a :class:`QueryError` naming the problem.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

from core.models import Item, Match, label_problem
from rules.morph import analyzer
from rules.morph import stem as russian_stem
from rules.text import TOKEN_RE, normalize, script_of
from store.backend import Connection, dialect_of
from store.db import Store, _match_from_row, from_ts, ts

log = logging.getLogger(__name__)

MAX_QUERY_LENGTH = 300
MAX_QUERY_PARTS = 12


class QueryError(ValueError):
    """A search query that cannot be run; the message says what to change."""


@cache
def _english() -> Any:
    import Stemmer

    return Stemmer.Stemmer("english")


@lru_cache(maxsize=200_000)
def key(token: str) -> str:
    """The index key of one normalised token (see the module docstring)."""
    kind = script_of(token)
    if kind == "cyrillic":
        parse = analyzer().parse(token)[0]
        if parse.is_known:
            return str(parse.normal_form).replace("ё", "е")
        return russian_stem(token)
    if kind == "latin":
        return str(_english().stemWord(token))
    return token


def tokens_of(text: str) -> list[str]:
    return TOKEN_RE.findall(normalize(text).text)


def keys_text(*fields: str | None) -> str:
    """The text stored in the index for an item's fields: one key per token, space-separated."""
    out: list[str] = []
    for field in fields:
        if field:
            out.extend(key(t) for t in tokens_of(field))
    return " ".join(out)


@cache
def _warn_once(error: str) -> None:
    log.error("search_keys_failed error=%s (items are indexed by their plain tokens meanwhile)", error)


_PREPARED: dict[tuple[str, str], str] = {}
_PREPARED_LOCK = threading.Lock()
MAX_PREPARED = 20_000  # a few polls' worth; kept keys a failed commit left behind are dropped past it


def prepare_keys(fields: Iterable[tuple[str | None, str | None]]) -> None:
    """Make the search keys of items about to be stored (``(title, summary)`` pairs) and keep them for the
    index trigger, which takes each once: run it in the CPU pool before the commit."""
    made = {(title or "", summary or ""): _made_keys(title, summary) for title, summary in fields}
    with _PREPARED_LOCK:
        if len(_PREPARED) + len(made) > MAX_PREPARED:
            _PREPARED.clear()
        _PREPARED.update(made)


def _search_keys(title: str | None, summary: str | None) -> str:
    with _PREPARED_LOCK:
        made = _PREPARED.pop((title or "", summary or ""), None)
    return _made_keys(title, summary) if made is None else made


def _made_keys(title: str | None, summary: str | None) -> str:
    try:
        return keys_text(title, summary)
    except Exception as exc:  # indexing must never make an item's commit fail, nor fill the log
        _warn_once(repr(exc))
        return " ".join(tokens_of(f"{title or ''} {summary or ''}"))


def install(conn: Any) -> None:
    """Register ``search_keys(title, summary)``, which the index triggers call, on an sqlite3 ``conn``."""
    conn.create_function("search_keys", 2, _search_keys, deterministic=True)


_RUN = re.compile(r"[^\W_]+")  # what FTS5's unicode61 keeps of a key: its runs of letters and digits
_MAX_POSITION = 16383  # a tsvector's largest position


def _lexeme(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "''") + "'"


def vector_text(title: str | None, summary: str | None) -> str:
    """PostgreSQL: the ``tsvector`` literal of an item's keys (positions as FTS5 counts its tokens). A run
    is letters and digits only, so it is quoted as it is (no ``'`` or ``\\`` to escape): this runs for
    every item a poll stores, on the event loop."""
    runs = _RUN.findall(_search_keys(title, summary))
    if len(runs) > _MAX_POSITION:
        return " ".join(f"'{r}':{min(n, _MAX_POSITION)}" for n, r in enumerate(runs, 1))
    return " ".join([f"'{r}':{n}" for n, r in enumerate(runs, 1)])


# -- the query language ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Term:
    """One word or phrase of a query: its normalised tokens, whether it excludes, and per token whether
    it is a prefix (Korean words, ``word*``)."""

    text: str
    tokens: tuple[str, ...]
    prefix: tuple[bool, ...]
    exclude: bool = False


@dataclass(frozen=True, slots=True)
class Query:
    terms: tuple[Term, ...]
    rules: tuple[str, ...] = ()  # ``rule:NAME``: only items that rule matched
    not_rules: tuple[str, ...] = ()  # ``-rule:NAME``: not those
    labels: tuple[str, ...] = ()  # ``label:state-media``: only items from feeds with that label
    not_labels: tuple[str, ...] = ()  # ``-label:NAME``: not from those

    @property
    def include(self) -> tuple[Term, ...]:
        return tuple(t for t in self.terms if not t.exclude)

    @property
    def exclude(self) -> tuple[Term, ...]:
        return tuple(t for t in self.terms if t.exclude)


def _split(text: str) -> list[tuple[str, bool, bool]]:
    """(raw text, exclude, quoted) of each part of a query."""
    parts: list[tuple[str, bool, bool]] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
            continue
        exclude = False
        if c in "-−" and i + 1 < n and not text[i + 1].isspace():
            exclude, i = True, i + 1
        if text[i] in '"«“„':
            closing = {"«": "»", "“": "”", "„": "“"}.get(text[i], '"')
            end = text.find(closing, i + 1)
            if end < 0 and closing != '"':
                end = text.find('"', i + 1)
            if end < 0:
                raise QueryError(f'a quote is not closed: {text[i:]!r} (write a phrase as "word word")')
            parts.append((text[i + 1 : end], exclude, True))
            i = end + 1
            continue
        j = i
        while j < n and not text[j].isspace() and text[j] != '"':
            j += 1
        parts.append((text[i:j], exclude, False))
        i = j
    return parts


_RULE = re.compile(r"^rule:([\w.-]{1,64})$")
_LABEL = re.compile(r"^label:(.*)$")


def parse_query(text: str) -> Query:
    """Parse a query (see the module docstring); :class:`QueryError` when it cannot be searched."""
    text = text.strip()
    if not text:
        raise QueryError('the query is empty: give a word, a "phrase" or both, e.g. Пхеньян -футбол')
    if len(text) > MAX_QUERY_LENGTH:
        raise QueryError(f"the query is {len(text)} characters long; at most {MAX_QUERY_LENGTH}")
    terms: list[Term] = []
    rules: list[str] = []
    not_rules: list[str] = []
    labels: list[str] = []
    not_labels: list[str] = []
    for raw, exclude, quoted in _split(text):
        if not quoted and (m := _RULE.match(raw)):
            (not_rules if exclude else rules).append(m.group(1))
            continue
        if not quoted and (m := _LABEL.match(raw)):
            if problem := label_problem(m.group(1)):
                raise QueryError(f"{raw}: a label {problem}")
            (not_labels if exclude else labels).append(m.group(1))
            continue
        star = not quoted and raw.endswith("*")
        toks = tuple(tokens_of(raw))
        if not toks:
            continue  # punctuation only
        # Korean words are prefixes (particles glue on), as in the rules; a one-syllable one is exact, as
        # the rules refuse it as a prefix (it would find far too much).
        prefix = tuple(script_of(t) == "hangul" and len(t) > 1 for t in toks)
        if star:
            if len(toks[-1]) < 3:
                raise QueryError(f"a prefix needs at least 3 letters before '*': {raw!r}")
            prefix = (*prefix[:-1], True)
        terms.append(Term(raw, toks, prefix, exclude))
    if len(terms) > MAX_QUERY_PARTS:
        raise QueryError(f"the query has {len(terms)} words and phrases; at most {MAX_QUERY_PARTS}")
    if not terms and not rules and not not_rules and not labels and not not_labels:
        raise QueryError(f"the query {text!r} has no words to search for")
    if not rules and not labels and not any(not t.exclude for t in terms):
        raise QueryError("the query has only exclusions (-word): say what to find too, e.g. Пхеньян -футбол")
    return Query(tuple(terms), tuple(rules), tuple(not_rules), tuple(labels), tuple(not_labels))


def _phrase(term: Term) -> str:
    # A phrase is FTS5 ``"k1" + "k2"*``: each token its own string, so each may be a prefix. A prefix
    # token is matched as typed (normalised, not reduced to a key): it is the start of a stored token.
    parts = []
    for tok, is_prefix in zip(term.tokens, term.prefix, strict=True):
        parts.append(f'"{tok}"*' if is_prefix else f'"{key(tok)}"')
    return " + ".join(parts)


def _ts_phrase(term: Term) -> str:
    parts: list[str] = []
    for tok, is_prefix in zip(term.tokens, term.prefix, strict=True):
        runs = _RUN.findall(tok if is_prefix else key(tok))
        parts.extend(_lexeme(r) + (":*" if is_prefix and n == len(runs) - 1 else "") for n, r in enumerate(runs))
    return " <-> ".join(parts) or "''"


def _ts_any(terms: tuple[Term, ...]) -> str:
    return " | ".join(f"({_ts_phrase(t)})" for t in terms)


def ts_expression(query: Query) -> str:
    """PostgreSQL: the ``tsquery`` of a parsed query (the same meaning as :func:`fts_expression`)."""
    include = " & ".join(f"({_ts_phrase(t)})" for t in query.include)
    return f"({include}) & !({_ts_any(query.exclude)})" if query.exclude else include


def fts_expression(query: Query) -> str:
    """The FTS5 MATCH expression of a parsed query."""
    include = " AND ".join(f"({_phrase(t)})" for t in query.include)
    exclude = " OR ".join(f"({_phrase(t)})" for t in query.exclude)
    return f"({include}) NOT ({exclude})" if exclude else include


# -- reads: search results and the export ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Found:
    """One stored item a search found, with the matches recorded for it (empty: it matched no rule)."""

    item_id: int
    item: Item
    seen_at: datetime
    matches: tuple[Match, ...]


def search(
    conn: Connection, query: Query, *, since: datetime | None = None, limit: int = 10, offset: int = 0
) -> tuple[list[Found], bool]:
    """Items matching ``query`` (seen at or after ``since``), newest first: ``limit`` of them from
    ``offset``, and whether there are more. ``conn`` is ``store.conn`` of either backend."""
    pg = dialect_of(conn) == "postgresql"
    columns = "i.id, fd.url, i.uid, i.title, i.summary, i.link, i.published, i.lang, fd.name, i.seen_at, fd.labels"
    where = ["i.seen_at >= ?"]
    params: list[Any] = [ts(since) if since else ""]
    rules = list(query.rules)
    if query.include and pg:
        source, order = "item_search s JOIN items i ON i.id = s.item_id", "i.id DESC"
        where.insert(0, "s.keys @@ ?::tsquery")
        params.insert(0, ts_expression(query))
    elif query.include:
        # The FTS5 index walks its rowids (= items' ids) backwards: no sort, however many items match.
        source, order = "items_fts JOIN items i ON i.id = items_fts.rowid", "items_fts.rowid DESC"
        where.insert(0, "items_fts MATCH ?")
        params.insert(0, fts_expression(query))
    else:  # only rule:NAME or label:NAME (and exclusions)
        if rules:  # the first rule's matches, newest first, drive the query
            source, order = "matches m JOIN items i ON i.id = m.item_id", "m.created_at DESC, m.item_id DESC"
            where.insert(0, "m.rule = ?")
            params.insert(0, rules.pop(0))
        else:  # only labels: every item, newest first, of the labelled feeds
            source, order = "items i", "i.id DESC"
        if query.exclude and pg:
            where.append("i.id NOT IN (SELECT item_id FROM item_search WHERE keys @@ ?::tsquery)")
            params.append(_ts_any(query.exclude))
        elif query.exclude:
            where.append("i.id NOT IN (SELECT rowid FROM items_fts WHERE items_fts MATCH ?)")
            params.append(" OR ".join(f"({_phrase(t)})" for t in query.exclude))
    for rule in rules:
        where.append("EXISTS (SELECT 1 FROM matches r WHERE r.item_id = i.id AND r.rule = ?)")
        params.append(rule)
    for rule in query.not_rules:
        where.append("NOT EXISTS (SELECT 1 FROM matches r WHERE r.item_id = i.id AND r.rule = ?)")
        params.append(rule)
    for label, wanted in [*((x, True) for x in query.labels), *((x, False) for x in query.not_labels)]:
        elements = _backend(conn).json_texts("fd.labels", "l")
        where.append(("" if wanted else "NOT ") + f"EXISTS (SELECT 1 FROM {elements} WHERE l.value = ?)")
        params.append(label)
    rows = conn.execute(
        f"SELECT {columns} FROM {source} JOIN feeds fd ON fd.id = i.feed_id "
        f"WHERE {' AND '.join(where)} ORDER BY {order} LIMIT ? OFFSET ?",
        (*params, limit + 1, offset),
    ).fetchall()
    more = len(rows) > limit
    rows = rows[:limit]
    matches: dict[int, list[Match]] = {}
    if rows:
        ids = [r[0] for r in rows]
        for item_id, rule, priority, hits in conn.execute(
            f"SELECT item_id, rule, priority, hits_json FROM matches WHERE item_id IN ({','.join('?' * len(ids))}) "
            "ORDER BY id",
            ids,
        ):
            matches.setdefault(item_id, []).append(_match_from_row(rule, priority, hits))
    out = []
    for r in rows:
        seen = from_ts(r[9])
        assert seen is not None
        item = Item(r[1], r[2], r[3], r[4], r[5], from_ts(r[6]), r[7], r[8], labels=tuple(json.loads(r[10] or "[]")))
        out.append(Found(r[0], item, seen, tuple(matches.get(r[0], ()))))
    return out, more


EXPORT_COLUMNS = (
    "item_id",
    "title",
    "link",
    "source",
    "source_url",
    "language",
    "published",
    "seen",
    "rules",
    "why",
    "score",
    "story_id",
    "votes_up",
    "votes_down",
)


def _backend(conn: Connection) -> Any:
    """The dialect helpers for a bare connection (json idioms, column lists)."""
    from store.postgres import PostgresBackend
    from store.sqlite import SqliteBackend

    return PostgresBackend("") if dialect_of(conn) == "postgresql" else SqliteBackend(Path())


def _columns(conn: Connection, table: str) -> set[str]:
    return set(_backend(conn).columns(conn, table))


def _tables(conn: Connection) -> list[str]:
    if dialect_of(conn) == "postgresql":
        sql = "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() ORDER BY 1"
    else:
        sql = "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
    return [str(r[0]) for r in conn.execute(sql)]


def _story_sql(conn: Connection) -> str:
    """How to read an item's story id, whatever the stories' schema turned out to be: a ``story_id``
    column on ``items``, or a table with ``item_id`` and ``story_id`` columns; NULL when there is none."""
    if "story_id" in _columns(conn, "items"):
        return "i.story_id"
    for table in _tables(conn):
        if not table.isidentifier():
            continue
        if {"item_id", "story_id"} <= _columns(conn, table):
            return f"(SELECT story_id FROM {table} WHERE item_id = i.id LIMIT 1)"
    return "NULL"


def export_rows(
    conn: Connection,
    *,
    since: datetime | None,
    rule: str | None = None,
    matched_only: bool = True,
    batch: int = 1000,
) -> Iterator[dict[str, Any]]:
    """Stored items seen at or after ``since`` (those that matched ``rule``, or any rule when
    ``matched_only``), oldest first, one dict per item keyed by :data:`EXPORT_COLUMNS`.

    Streamed: one query, read ``batch`` rows at a time, each item's match rows adjacent (ordered by item),
    so 100,000 items never sit in memory at once. ``score`` is the best of the item's matches' scores when
    the matches table has a ``score`` column, else None; ``story_id`` see :func:`_story_sql`."""
    score = "m.score" if "score" in _columns(conn, "matches") else "NULL"
    where = ["i.seen_at >= ?"]
    params: list[Any] = [ts(since) if since else ""]
    if rule is not None:
        where.append("EXISTS (SELECT 1 FROM matches r WHERE r.item_id = i.id AND r.rule = ?)")
        params.append(rule)
    elif matched_only:
        where.append("EXISTS (SELECT 1 FROM matches r WHERE r.item_id = i.id)")
    batches = _batches(
        conn,
        "SELECT i.id, i.title, i.link, fd.name, fd.url, i.lang, i.published, i.seen_at, "
        f"m.rule, m.priority, m.hits_json, {score}, {_story_sql(conn)}, "
        "(SELECT COUNT(*) FROM votes v WHERE v.item_id = i.id AND v.label = 1), "
        "(SELECT COUNT(*) FROM votes v WHERE v.item_id = i.id AND v.label = 0) "
        "FROM items i JOIN feeds fd ON fd.id = i.feed_id LEFT JOIN matches m ON m.item_id = i.id "
        f"WHERE {' AND '.join(where)} ORDER BY i.id, m.id",
        params,
        batch,
    )
    current: dict[str, Any] | None = None
    whys: list[str] = []
    scores: list[float] = []
    for rows in batches:
        for r in rows:
            if current is None or current["item_id"] != r[0]:
                if current is not None:
                    yield _finish(current, whys, scores)
                current = {
                    "item_id": r[0],
                    "title": r[1],
                    "link": r[2],
                    "source": r[3],
                    "source_url": r[4],
                    "language": r[5],
                    "published": r[6],
                    "seen": r[7],
                    "rules": [],
                    "story_id": r[12],
                    "votes_up": r[13],
                    "votes_down": r[14],
                }
                whys, scores = [], []
            if r[8] is not None:
                current["rules"].append(r[8])
                whys.append(f"{r[8]}: {_match_from_row(r[8], r[9], r[10]).why_text()}")
                if r[11] is not None:
                    scores.append(float(r[11]))
    if current is not None:
        yield _finish(current, whys, scores)


def _batches(conn: Connection, sql: str, params: list[Any], size: int) -> Iterator[list[Any]]:
    """The rows of one query, ``size`` at a time, never all in memory: SQLite steps its statement;
    PostgreSQL reads a server-side cursor (psycopg's plain cursor would fetch every row at once)."""
    stream = getattr(conn, "stream", None)
    if stream is not None:
        yield from stream(sql, params, size)
        return
    cur = conn.execute(sql, params)
    while rows := cur.fetchmany(size):
        yield rows


def _finish(row: dict[str, Any], whys: list[str], scores: list[float]) -> dict[str, Any]:
    row["why"] = "; ".join(whys)
    row["score"] = max(scores) if scores else None
    return {c: row[c] for c in EXPORT_COLUMNS}


# -- saved queries: what a paging button's short callback data stands for ----------------------------


def save_query(store: Store, text: str, days: int | None) -> str:
    """Keep a query (in ``kv``) under a short token, for buttons whose callback data must fit in 64
    bytes however long the query; the same query and days always get the same token. Survives restarts."""
    token = hashlib.sha256(f"{days}\n{text}".encode()).hexdigest()[:12]
    with store.transaction() as conn:
        conn.execute(
            "INSERT OR IGNORE INTO kv (key, value) VALUES (?, ?)",
            (f"search:{token}", json.dumps([text, days], ensure_ascii=False)),
        )
    return token


def saved_query(conn: Connection, token: str) -> tuple[str, int | None] | None:
    row = conn.execute("SELECT value FROM kv WHERE key = ?", (f"search:{token}",)).fetchone()
    if row is None:
        return None
    text, days = json.loads(row[0])
    return str(text), None if days is None else int(days)
