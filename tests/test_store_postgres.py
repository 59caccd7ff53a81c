"""The PostgreSQL backend: the SQL translation rules, a lost connection, and the server going away under
the running bot (real servers: tests/pgserver.py)."""

from __future__ import annotations

import itertools
import re
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import psycopg
import pytest
from psycopg.pq import Trace
from pytest_httpserver import HTTPServer

from core.config import FeedConfig
from core.identity import Lookup
from core.models import Hit, Item, Match
from delivery.sender import ChatPacer
from service.app import run_deliver_locked, run_poll
from store import DB_ERRORS, ProcessedItem, Store, StoryDecision
from store.postgres import translate
from store.search import parse_query, search
from tests.pgserver import PgServer, find_bindir
from tests.running import running_app
from tgemu import BotApiEmulator

REPO = Path(__file__).resolve().parents[1]
NOW = datetime(2026, 5, 1, 23, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("name", "sqlite", "postgresql"),
    [
        ("placeholders", "SELECT a FROM t WHERE b = ? AND c IN (?,?)", "SELECT a FROM t WHERE b = %s AND c IN (%s,%s)"),
        ("a ? inside a literal stays", "SELECT '?' || a FROM t WHERE b = ?", "SELECT '?' || a FROM t WHERE b = %s"),
        ("an escaped quote keeps the literal open", "SELECT 'it''s ?' WHERE a = ?", "SELECT 'it''s ?' WHERE a = %s"),
        ("a literal % is doubled", "DELETE FROM kv WHERE key LIKE 'quota:%' AND key < ?",
         "DELETE FROM kv WHERE key LIKE 'quota:%%' AND key < %s"),
        ("insert or ignore", "INSERT OR IGNORE INTO kv (key, value) VALUES (?, ?)",
         "INSERT INTO kv (key, value) VALUES (%s, %s) ON CONFLICT DO NOTHING"),
        ("insert or ignore with returning", "INSERT OR IGNORE INTO kv (key, value) VALUES (?, ?) RETURNING key",
         "INSERT INTO kv (key, value) VALUES (%s, %s) ON CONFLICT DO NOTHING RETURNING key"),
        ("begin immediate", "BEGIN IMMEDIATE", "BEGIN"),
        ("portable SQL is left as it is", "INSERT INTO kv (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET "
         "value = excluded.value", "INSERT INTO kv (key, value) VALUES (%s, %s) ON CONFLICT(key) DO UPDATE SET "
         "value = excluded.value"),
    ],
)  # fmt: skip
def test_the_stores_sql_is_translated_once_per_string(name: str, sqlite: str, postgresql: str) -> None:
    assert translate(sqlite) == postgresql, name


def test_a_lost_connection_fails_writes_with_a_db_error_and_the_health_check_reconnects(pg_url: str) -> None:
    with Store.open(pg_url) as store:
        store.sync_feeds([FeedConfig("https://news.example/rss", "News", "ru", 600)], NOW)
        pid = store.conn.execute("SELECT pg_backend_pid()").fetchone()[0]
        with psycopg.connect(pg_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        with pytest.raises(DB_ERRORS):
            store.upsert_subscription(1, NOW)
        assert store.health_problem(NOW) is None, "reconnected once, and the heartbeat committed"
        assert store.last_alive() == NOW
        store.upsert_subscription(1, NOW)
        assert [s.chat_id for s in store.subscriptions()] == ["1"]


# -- round trips: what one poll waits for ------------------------------------------------------------

URL = "https://news.example/rss"
INSTANT = Match("military", "instant", (Hit("DPRK", "title", 0, 4, "КНДР"),))


def _item(uid: str) -> Item:
    return Item(URL, uid, f"КНДР и Россия {uid}", "s", f"https://news.example/{uid}", NOW, "ru", "News")


@contextmanager
def _round_trips(store: Store, tmp_path: Path) -> Iterator[list[int]]:
    """How many times the client waited for the server inside the block: libpq's protocol trace, one
    round trip per turn from sending (F lines) to receiving (B lines)."""
    raw = store.conn.raw  # type: ignore[attr-defined]
    out: list[int] = []
    trace = tmp_path / f"trace{len(list(tmp_path.glob('trace*')))}.txt"
    with trace.open("w") as f:
        raw.pgconn.trace(f.fileno())
        raw.pgconn.set_trace_flags(Trace.SUPPRESS_TIMESTAMPS | Trace.REGRESS_MODE)
        try:
            yield out
        finally:
            raw.pgconn.untrace()
    sides = [line[0] for line in trace.read_text().splitlines() if line[:1] in ("F", "B")]
    out.append(sum(1 for a, b in itertools.pairwise(sides) if (a, b) == ("F", "B")))


def _poll(store: Store, uids: list[str]) -> None:
    feed_id = store.feed_by_url(URL).id  # type: ignore[union-attr]
    items = [ProcessedItem(_item(u), (INSTANT,), True, StoryDecision(keys=(f"w:ru:{u}",))) for u in uids]
    store.commit_poll(feed_id, NOW, ok=True, etag=None, last_modified=None, error=None, next_poll_at=NOW, items=items)


def test_a_polls_commit_waits_for_the_server_four_times_for_3_items_or_30(pg_url: str, tmp_path: Path) -> None:
    with Store.open(pg_url) as store:
        store.sync_feeds([FeedConfig(URL, "News", "ru", 600)], NOW)
        _poll(store, ["warm-up"])  # the first use of each statement
        with _round_trips(store, tmp_path) as few:
            _poll(store, [f"a{n}" for n in range(3)])
        with _round_trips(store, tmp_path) as many:
            _poll(store, [f"b{n}" for n in range(30)])
        # the feed's row (the test's), the subscriptions, the items' INSERT and the COMMIT: the rest is pipelined
        assert few == many == [4]
        found, _ = search(store.conn, parse_query("Россия"), limit=100)  # type: ignore[arg-type]
        assert len(found) == 34, "every item stored, and indexed"


def test_identity_and_story_look_ups_are_one_round_trip_whatever_their_keys(pg_url: str, tmp_path: Path) -> None:
    with Store.open(pg_url) as store:
        store.sync_feeds([FeedConfig(URL, "News", "ru", 600)], NOW)
        _poll(store, [f"a{n}" for n in range(20)])
        feed = store.feed_by_url(URL)
        assert feed is not None
        uids = frozenset(f"a{n}" for n in range(20))
        links = frozenset(f"https://news.example/a{n}" for n in range(20))
        wanted = Lookup(uids=uids, guids=frozenset({"g1", "g2"}), links=links, fingerprints=frozenset({"f1"}))
        with _round_trips(store, tmp_path) as identity:
            known = store.known_items(feed.id, wanted)
        assert len(known) == 20 and identity == [1]
        keys = [f"w:ru:a{n}" for n in range(12)]
        with _round_trips(store, tmp_path) as stories:
            members = store.story_candidates(keys, NOW - timedelta(days=1))
        assert len(members) == 12
        assert stories == [3], "the keys' buckets, then the candidates' rows and their matches"
        with _round_trips(store, tmp_path) as again:
            assert store.story_candidates(keys, NOW - timedelta(days=1)) == members
        assert again == [2], "the keys' buckets, then only the kept candidates' marks"


# -- the server goes away under the running bot --------------------------------------------------------

TOKEN = "31337:PG-token"
ADMIN, CHAT = 42, 100


@pytest.fixture
def own_server() -> Iterator[PgServer]:
    """A server of this test's own (it is stopped mid-test; the session's one serves the others)."""
    bindir = find_bindir()
    if bindir is None:
        pytest.skip("no PostgreSQL server binaries")
    server = PgServer(bindir).start()
    try:
        yield server
    finally:
        server.stop()


def feed_xml(count: int) -> bytes:
    published = NOW - timedelta(hours=1)
    body = "".join(
        f"<item><title>Сделка {1100 + n}: Шойгу прибыл в Пхеньян для переговоров о военном сотрудничестве</title>"
        f"<link>https://news.example/{n}</link><guid isPermaLink='false'>pg-{n}</guid>"
        f"<pubDate>{format_datetime(published + timedelta(minutes=n))}</pubDate></item>"
        for n in range(count)
    )
    return (
        "<?xml version='1.0' encoding='UTF-8'?><rss version='2.0'><channel><title>Лента</title>"
        f"<link>https://news.example/</link>{body}</channel></rss>"
    ).encode()


async def test_postgresql_stopped_mid_run_sends_nothing_unrecorded_and_delivery_resumes(
    tmp_path: Path, own_server: PgServer, httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/feed.xml").respond_with_data(feed_xml(3), content_type="application/rss+xml")
    url = own_server.url()
    config = tmp_path / "config.yaml"
    config.write_text(
        f"telegram: {{base_url: '{{base}}'}}\nadmins: [{ADMIN}]\nstorage: {{url: '{url}'}}\n"
        f"rules: {{files: ['{REPO / 'rules'}/*.yaml']}}\n"
        "polling: {allow_private_urls: true, timeout: 5, backlog: {max_items: 100, max_age: null}}\n"
        f"feeds:\n  - {{url: '{httpserver.url_for('/feed.xml')}', name: Лента, lang: ru}}\n"
        f"subscriptions:\n  - {{chat: {CHAT}, mode: instant}}\n",
        encoding="utf-8",
    )
    with BotApiEmulator(TOKEN) as emu:
        emu.add_chat(ADMIN, "private")
        emu.add_chat(CHAT, "private")
        config.write_text(config.read_text().replace("{base}", emu.base_url), encoding="utf-8")
        emu.fail_next("sendMessage", "429", chat_id=CHAT, retry_after=1)
        clock = [NOW]
        async with running_app(config, TOKEN, NOW) as (app, state):
            state.clock = lambda: clock[0]
            state.sender.pacer = ChatPacer(0.0, 0.0)
            await run_poll(app)  # Telegram answers 429: the alerts wait in the outbox

            async def passes(n: int) -> None:
                for _ in range(n):
                    clock[0] += timedelta(seconds=10)
                    async with state.lock:
                        await run_deliver_locked(app)

            own_server.pause()  # the database is gone: every write fails
            await passes(4)
            health_down = state.metrics.health(clock[0], 30, 10)[1]
            sent_while_down = len(emu.sent(CHAT))
            own_server.resume()
            await passes(2)
            health_after = state.metrics.health(clock[0], 30, 10)[1]
            states = [r[0] for r in state.store.conn.execute("SELECT state FROM outbox ORDER BY id")]
        copies = Counter(m for message in emu.sent(CHAT) for m in re.findall(r"Сделка (\d{4})", message.text))
    assert sent_while_down == 0, "nothing is sent that cannot be recorded"
    assert "store:" in health_down and url in health_down, health_down
    assert "store:" not in health_after, "the health check reconnected"
    assert len(copies) == 3 and max(copies.values()) == 1, f"each alert once: {dict(copies)}"
    assert states == ["sent"] * 3
    assert sum("Store problem" in m.text for m in emu.sent(ADMIN)) == 1, "told once per incident"


def test_bot_check_says_it_cannot_connect_to_postgresql_without_a_traceback(tmp_path: Path) -> None:
    import socket
    import subprocess
    import sys

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens there once closed
    config = tmp_path / "config.yaml"
    config.write_text(
        f"storage: {{url: 'postgresql://bot@127.0.0.1:{port}/monitor'}}\n"
        f"rules: {{files: ['{REPO / 'rules'}/*.yaml']}}\nfeeds: [https://example.org/rss]\n",
        encoding="utf-8",
    )
    check = subprocess.run(
        [sys.executable, str(REPO / "bot.py"), "--config", str(config), "check"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert check.returncode == 1, check.stdout
    assert f"storage.url: cannot connect to postgresql://bot@127.0.0.1:{port}/monitor: " in check.stderr, check.stderr
    assert "Traceback" not in check.stderr
