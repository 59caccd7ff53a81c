"""`bot.py store copy`: a store the real bot filled, copied whole into another, and the bot carrying on there.

The source is filled through the running bot: feeds polled from a local HTTP server, instant alerts sent to
the Bot API emulator, a digest sent, 👍/👎 votes cast from the alerts' own buttons, a rule edit kept for
/undo, a chat's language. The copy must hold every row of every table (compared row by row, the search
index too), and the bot started on the copy must not alert again what it already sent.
"""

from __future__ import annotations

import asyncio
import io
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from chat.feedback import DOWN, UP, cast_vote, signer
from cli.store_copy import copy_store, parse_target
from core.config import load_config
from service.app import build_application, post_init, post_shutdown, prepare, run_digests, run_poll
from service.state import BotState
from store import Store
from store.lock import StoreLock
from store.schema import MIGRATIONS
from store.search import parse_query, search
from tests.feedhttp import FeedServer, Response, ok, rss
from tgemu import BotApiEmulator

REPO = Path(__file__).resolve().parents[1]
TOKEN = "515151:COPY-token"
ADMIN, ANALYST = 42, 7
INSTANT, DIGEST = 100, 300
START = datetime(2026, 5, 1, 23, 0, tzinfo=UTC)  # 08:00 in Seoul; the digest is at 09:00
MATCHING = (
    (
        "North Korea ships more missiles to Russia, intelligence says",
        "Pyongyang has delivered ballistic missiles and artillery shells to Russian forces.",
    ),
    (
        "Северокорейские военные прибыли в Курскую область",
        "Войска КНДР направлены на помощь российской армии, сообщила разведка.",
    ),
    ("Russia and North Korea sign a military treaty", "Moscow and Pyongyang pledge mutual military assistance."),
)
NEAR_MISS = ("Сборная России по хоккею выиграла товарищеский матч", "Матч прошёл в Москве.")


class Feeds(FeedServer):
    """Two feeds, each the three matching items and a near miss (ids unique per feed), with an ETag."""

    def respond(self, path: str, headers: dict[str, str]) -> Response:
        tag = path.strip("/").removesuffix(".xml")
        entries = [
            (title, f"https://{tag}.example/{n}", summary, START - timedelta(hours=n))
            for n, (title, summary) in enumerate((*MATCHING, NEAR_MISS))
        ]
        return ok(rss(tag, f"https://{tag}.example/", entries))


def write_config(folder: Path, emu: BotApiEmulator, feeds: Feeds, store: Path) -> Path:
    path = folder / f"{store.stem}.yaml"
    path.write_text(
        textwrap.dedent(
            f"""\
            telegram: {{base_url: '{emu.base_url}'}}
            admins: [{ADMIN}]
            storage: {{path: '{store}'}}
            rules: {{files: ['{REPO / "rules"}/*.yaml']}}
            polling: {{allow_private_urls: true, timeout: 5, backlog: {{max_items: 100, max_age: null}}}}
            digest: {{time: '09:00', timezone: Asia/Seoul}}
            feeds:
              - {{url: '{feeds.base_url}/tass.xml', name: 'ТАСС', lang: ru, interval: 600}}
              - {{url: '{feeds.base_url}/wire.xml', name: 'Wire', lang: en, interval: 600}}
            subscriptions:
              - {{chat: {INSTANT}, mode: instant}}
              - {{chat: {DIGEST}, mode: digest}}
            """
        ),
        encoding="utf-8",
    )
    return path


class Bot:
    """The bot as ``bot.py run`` builds it, without its scheduler: the test moves the clock and runs jobs."""

    def __init__(self, config: Path, clock: list[datetime]) -> None:
        self.config, self.clock = config, clock

    async def __aenter__(self) -> Bot:
        state = prepare(load_config(self.config), self.clock[0])
        assert state is not None
        state.clock = lambda: self.clock[0]
        state.schedule_jobs = False
        self.state: BotState = state
        self.app = build_application(state, TOKEN)
        await self.app.initialize()
        await post_init(self.app)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await post_shutdown(self.app)
        await self.app.shutdown()


@dataclass
class Filled:
    folder: Path
    store: Path
    emu: BotApiEmulator
    feeds: Feeds
    sent: int  # messages the bot sent while filling
    clock: datetime


async def fill(folder: Path, emu: BotApiEmulator, feeds: Feeds) -> Filled:
    store = folder / "source.sqlite3"
    clock = [START]
    async with Bot(write_config(folder, emu, feeds, store), clock) as bot:
        await run_poll(bot.app)  # polls both feeds, queues and sends the instant alerts
        alerts = emu.sent(INSTANT)
        assert alerts, "the bot sent no instant alert"
        sign = signer(bot.state.store)  # what the alerts' 👍/👎 buttons carry
        sent_items = bot.state.store.conn.execute(
            "SELECT item_id FROM outbox WHERE state = 'sent' AND kind = 'instant' ORDER BY id"
        ).fetchall()
        for (item_id,), label in zip(sent_items[:2], (UP, DOWN), strict=False):
            cast_vote(bot.state.store, sign(item_id, label), ANALYST, str(INSTANT), clock[0])
        clock[0] += timedelta(hours=1, minutes=1)  # 09:01 in Seoul: the digest is due
        await run_digests(bot.app)
        assert emu.sent(DIGEST), "the digest was not sent"
        store_ = bot.state.store
        store_.push_rule_version("rules/dprk_russia.yaml", "version: 1\nrules: []\n", "edit", str(ADMIN), clock[0])
        store_.set_chat_language(INSTANT, "ru", clock[0])
    return Filled(folder, store, emu, feeds, len(emu.sent()), clock[0])


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Filled]:
    with BotApiEmulator(TOKEN) as emu, Feeds() as feeds:
        for chat in (INSTANT, DIGEST, ADMIN):
            emu.add_chat(chat, "private")
        yield asyncio.run(fill(tmp_path_factory.mktemp("filled"), emu, feeds))


def dump(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table of a SQLite store, the search index's entries included (FTS5's own shadow
    tables left out: their layout depends on insertion batches, not on what is indexed). Implicit rowids are
    not content (kv's key is its text), so rows are compared as the columns hold them."""
    with sqlite3.connect(path) as conn:
        names = [
            n
            for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            if not n.startswith(("sqlite_", "items_fts_"))
        ]
        select = {"items_fts": "SELECT rowid, keys FROM items_fts"}  # its rowid is the item's id
        return {n: sorted(conn.execute(select.get(n, f"SELECT * FROM {n}")).fetchall(), key=repr) for n in names}


def run_copy(source: str, destination: str, *extra: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    batch = int(extra[1]) if extra else 5000
    return copy_store(source, destination, batch=batch, out=out, errors=err), out.getvalue(), err.getvalue()


def test_a_sqlite_copy_holds_every_row_of_every_table(filled: Filled, tmp_path: Path) -> None:
    copy = tmp_path / "copy.sqlite3"
    code, out, err = run_copy(str(filled.store), f"sqlite:///{copy}", "--batch", "2")  # batches of 2 rows
    assert (code, err) == (0, "")
    before, after = dump(filled.store), dump(copy)
    assert before == after
    for table in ("feeds", "items", "matches", "outbox", "subscriptions", "votes", "rule_history", "kv", "items_fts"):
        assert before[table], f"the filled store has no {table} rows: the test would prove nothing there"
    lines = out.splitlines()
    assert lines[0].split() == ["table", "source", "copied"]
    counts = {line.split()[0]: line.split()[1:] for line in lines[1:-1]}
    assert counts["items"] == [f"{len(before['items'])}"] * 2
    assert lines[-1].startswith(f"copied {sum(len(v) for k, v in before.items() if k != 'items_fts')} rows")
    assert "verified" in lines[-1]


@pytest.mark.parametrize("route", ["sqlite → sqlite", "sqlite → postgresql → sqlite"])
async def test_the_bot_on_the_copy_sends_nothing_it_already_sent(
    filled: Filled, tmp_path: Path, route: str, request: pytest.FixtureRequest
) -> None:
    copy = tmp_path / "moved.sqlite3"
    if "postgresql" in route:
        database = str(request.getfixturevalue("pg_empty_url"))
        assert run_copy(str(filled.store), database)[0] == 0
        assert run_copy(database, str(copy))[0] == 0
    else:
        assert run_copy(str(filled.store), str(copy))[0] == 0
    assert len(filled.emu.sent()) == filled.sent
    clock = [filled.clock + timedelta(hours=2)]  # every feed due again; the next digest not yet
    async with Bot(write_config(tmp_path, filled.emu, filled.feeds, copy), clock) as bot:
        report = await bot.state.pipeline.run_cycle(clock[0])
        assert (report.feeds_due, report.feeds_ok, report.new_items) == (2, 2, 0)
        await run_poll(bot.app)
        await run_digests(bot.app)
        assert bot.state.store.pending_instant(clock[0]) == []
    assert len(filled.emu.sent()) == filled.sent, "the copy re-sent alerts or a digest already delivered"


# -- PostgreSQL -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("fixture", ["pg_empty_url", "pg_url"])  # a new database, or one already migrated
def test_sqlite_to_postgresql_and_back_keeps_every_row(
    filled: Filled, tmp_path: Path, fixture: str, request: pytest.FixtureRequest
) -> None:
    database = str(request.getfixturevalue(fixture))
    code, _out, err = run_copy(str(filled.store), database, "--batch", "3")
    assert (code, err) == (0, ""), err
    back = tmp_path / "back.sqlite3"
    code, _out, err = run_copy(database, str(back), "--batch", "3")
    assert (code, err) == (0, ""), err
    assert dump(back) == dump(filled.store)  # BLOB → BYTEA → BLOB, ids, flags, times: all as they were
    assert any(isinstance(v, bytes) for row in dump(back)["items"] for v in row), "no embedding (BLOB) was carried"

    with Store.open(database) as pg, Store.open(filled.store) as lite:
        for text in ("Pyongyang", '"North Korea"', "КНДР -хоккею", "военные"):  # search answers the same on the copy
            query = parse_query(text)
            assert [f.item_id for f in search(pg.conn, query)[0]] == [f.item_id for f in search(lite.conn, query)[0]]
            assert search(pg.conn, query)[0], f"{text!r} finds nothing: the comparison would prove nothing"
        next_id = pg.conn.execute("INSERT INTO rule_history (file, action, created_at) VALUES ('f', 'edit', 'x') "
                                  "RETURNING id").fetchone()[0]  # fmt: skip
        top = lite.conn.execute("SELECT MAX(id) FROM rule_history").fetchone()[0]
        assert next_id == top + 1, "the identity sequence continues after the copied ids"


def test_a_postgresql_source_in_use_or_a_filled_one_as_destination_is_refused(
    filled: Filled, pg_empty_url: str
) -> None:
    import psycopg

    assert run_copy(str(filled.store), pg_empty_url)[0] == 0
    code, _out, err = run_copy(str(filled.store), pg_empty_url)
    assert code == 1 and err.count("\n") == 1 and "is not empty (chat_settings: 1 row)" in err

    with psycopg.connect(pg_empty_url, application_name="dprk-ru-monitor run"):  # a bot's session
        code, _out, err = run_copy(pg_empty_url, str(filled.folder / "never.sqlite3"))
    assert code == 1 and err.count("\n") == 1
    assert "1 other session(s) connected (dprk-ru-monitor run)" in err and "not a copy" in err
    assert not (filled.folder / "never.sqlite3").exists()


def test_the_command_line_prints_the_table_and_exits_0(filled: Filled, tmp_path: Path) -> None:
    copy = tmp_path / "cli.sqlite3"
    proc = subprocess.run(
        [sys.executable, str(REPO / "bot.py"), "store", "copy", "--from", str(filled.store), "--to", str(copy)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "items" in proc.stdout and "verified" in proc.stdout
    assert dump(copy) == dump(filled.store)


# -- refusals: one line, exit 1, nothing written --------------------------------------------------------


def newer(path: Path) -> Path:
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    return path


def not_sqlite(path: Path) -> Path:
    path.write_bytes(b"feeds,items\n" * 1000)
    return path


def older(path: Path) -> Path:
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) - 1}")
    return path


def created(folder: Path) -> list[str]:
    """The files in ``folder`` but the source's own (its lock file) and SQLite's -wal and -shm (reading a
    store in WAL mode, even read-only, opens them; they hold no rows of their own here)."""
    return sorted(
        p.name
        for p in folder.iterdir()
        if not p.name.startswith("source.sqlite3") and not p.name.endswith(("-wal", "-shm"))
    )


@pytest.mark.parametrize(
    ("name", "prepare_source", "destination", "message"),
    [
        ("source newer than the program", newer, None, "newer than this program's"),
        ("source older than the program", older, None, "run the bot on it once"),
        ("no source at all", lambda p: p.with_name("missing.sqlite3"), None, "no store at"),
        ("source not a store", not_sqlite, None, "is it a store of this bot?"),
        ("destination not empty", lambda p: p, "copy-of-source", "is not empty (chat_settings: 1 row)"),
        ("destination is the source", lambda p: p, "same", "are the same store"),
        ("unknown scheme", lambda p: p, "mysql://u@127.0.0.1/db", "storage URLs are sqlite:///path or postgresql://"),
        ("unreachable PostgreSQL", lambda p: p, "postgresql://nobody@127.0.0.1:9/monitor", "cannot connect"),
    ],
)
def test_a_refused_copy_says_why_in_one_line_and_writes_nothing(
    filled: Filled, tmp_path: Path, name: str, prepare_source: Any, destination: str | None, message: str
) -> None:
    if "PostgreSQL" in name:
        pytest.importorskip("psycopg")
    source = tmp_path / "source.sqlite3"
    shutil.copy(filled.store, source)
    source = prepare_source(source)
    target = tmp_path / "destination.sqlite3"
    if destination == "copy-of-source":
        shutil.copy(filled.store, target)
    spec = {None: str(target), "copy-of-source": str(target), "same": str(source)}.get(destination, destination)
    assert spec is not None
    before = created(tmp_path)
    stamp = target.read_bytes() if target.exists() else None

    code, out, err = run_copy(str(source), spec)

    assert (code, out) == (1, ""), name
    assert err.count("\n") == 1 and err.startswith("error: ") and message in err, err
    assert created(tmp_path) == before, "a refused copy created files"
    assert (target.read_bytes() if target.exists() else None) == stamp, "a refused copy changed the destination"


def test_a_source_a_bot_is_running_on_is_refused(filled: Filled, tmp_path: Path) -> None:
    source = tmp_path / "busy.sqlite3"
    shutil.copy(filled.store, source)
    held = StoreLock.acquire(source)  # as `bot.py run` holds it
    try:
        code, out, err = run_copy(str(source), str(tmp_path / "copy.sqlite3"))
    finally:
        held.release()
    assert code == 1 and out == ""
    assert "in use by another bot process" in err and "not a copy" in err and err.count("\n") == 1
    assert not (tmp_path / "copy.sqlite3").exists()
    assert run_copy(str(source), str(tmp_path / "copy.sqlite3"))[0] == 0, "once the bot stopped, the copy goes ahead"


def test_a_password_in_the_url_is_refused_without_printing_it(tmp_path: Path) -> None:
    code, out, err = run_copy(str(tmp_path / "a.sqlite3"), "postgresql://monitor:s3cret@127.0.0.1:9/monitor")
    assert code == 1 and out == "" and err.count("\n") == 1
    assert "s3cret" not in err and "PGPASSWORD" in err
    assert parse_target("postgresql://monitor@db.internal/monitor").dialect == "postgresql"


def drop_a_vote(table: str, columns: list[str], rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    return rows[1:] if table == "votes" else rows


def cut_a_summary(table: str, columns: list[str], rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    if table != "items":
        return rows
    at = columns.index("summary")
    return [(*rows[0][:at], rows[0][at][:-1], *rows[0][at + 1 :]), *rows[1:]]


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        (drop_a_vote, "verification failed for table votes: rows 2 in the source, 1 in the destination"),
        (cut_a_summary, "verification failed for table items: length of summary"),
    ],
)
def test_the_verification_names_the_table_that_differs_and_commits_nothing(
    filled: Filled, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fault: Any, message: str
) -> None:
    import cli.store_copy as module

    real = module.SqliteDestination.write

    def faulty(self: Any, table: Any, columns: Any, rows: list[tuple[Any, ...]]) -> None:
        real(self, table, columns, fault(table.name, list(columns), rows))  # a write that lost something

    monkeypatch.setattr(module.SqliteDestination, "write", faulty)
    code, out, err = run_copy(str(filled.store), str(tmp_path / "copy.sqlite3"))
    assert code == 1 and out == "" and err.count("\n") == 1
    assert message in err and "nothing was committed" in err, err
    assert not (tmp_path / "copy.sqlite3").exists(), "the half-made destination this command created is removed"


def test_a_disk_error_during_the_copy_is_one_line_and_leaves_no_half_copy(
    filled: Filled, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import cli.store_copy as module

    real = module.SqliteDestination.write

    def disk_fails(self: Any, table: Any, columns: Any, rows: list[tuple[Any, ...]]) -> None:
        if table.name == "matches":
            raise sqlite3.OperationalError("disk I/O error")
        real(self, table, columns, rows)

    monkeypatch.setattr(module.SqliteDestination, "write", disk_fails)
    code, out, err = run_copy(str(filled.store), str(tmp_path / "copy.sqlite3"))
    assert (code, out) == (1, "")
    assert err == f"error: the copy into {tmp_path / 'copy.sqlite3'} failed (disk I/O error); nothing was committed\n"
    assert not (tmp_path / "copy.sqlite3").exists()
