"""Several workers on one PostgreSQL database: real ``bot.py run --role …`` processes, 300 feeds on
127.0.0.1, the Bot API emulator over HTTP.

Two workers poll and send (``--role poller,sender``), one receives updates (``--role web``). Every
matched item must reach every subscribed chat exactly once, and every feed is fetched by one worker
only (its claim); then, with one worker SIGKILLed while it works, nothing is lost: its claimed feeds
and chats pass to the other worker after the lease, and a chat sees an item twice only for an alert that
was in flight when the worker died (recorded as an unconfirmed send: the at-most-one-resend rule).
Counts, not timings: each run waits until the expected messages arrived (or a generous deadline).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from rules import load_rules
from service.app import UPDATES_LOCK
from store import Store
from tests.feedhttp import FeedServer, Response, ok, rss
from tests.running import numbered_by_chat, received
from tgemu import BotApiEmulator

REPO = Path(__file__).resolve().parents[1]
TOKEN = "555222:WORKERS-test-token"
CHATS = (201, 202, 203, 204)
FEEDS = 300
ON_TOPIC = (
    "Минобороны России и КНДР обсудили поставки артиллерийских снарядов",
    "Делегация министерства обороны КНДР провела переговоры в Москве о военном сотрудничестве.",
)
OFF_TOPIC = ("Сборная России по хоккею выиграла товарищеский матч", "Матч прошёл в Москве.")
EVERY = 50  # feed k carries an on-topic item when k % EVERY == 0: 6 alerts a chat


def story(n: int) -> tuple[str, str]:
    """Item ``n`` (generation × 1000 + feed number): on topic when its feed number is a multiple of EVERY."""
    title, summary = ON_TOPIC if n % 1000 % EVERY == 0 else OFF_TOPIC
    return f"{title} — выпуск {n}", summary


class Feeds(FeedServer):
    """``/f<k>.xml``: one item per generation so far; counts the fetches of each feed."""

    def __init__(self) -> None:
        super().__init__()
        self.fetches: Counter[int] = Counter()
        self.generations = 1
        self.guard = threading.Lock()

    def respond(self, path: str, headers: dict[str, str]) -> Response:
        k = int(path.strip("/").removeprefix("f").removesuffix(".xml"))
        with self.guard:
            self.fetches[k] += 1
        entries = []
        for g in range(self.generations, 0, -1):
            n = g * 1000 + k
            title, summary = story(n)
            published = datetime(2026, 11, 1, tzinfo=UTC) + timedelta(minutes=n)
            entries.append((title, f"https://news.example/{n}", summary, published))
        return ok(rss(f"Лента {k}", "https://news.example/", entries))


@pytest.fixture
def emu() -> Iterator[BotApiEmulator]:
    with BotApiEmulator(TOKEN) as e:
        for chat in CHATS:
            e.add_chat(chat, "private")
        yield e


def write_config(tmp_path: Path, emu: BotApiEmulator, feeds: Feeds, url: str) -> Path:
    subs = "".join(f"  - {{chat: {chat}, mode: instant, stories: off}}\n" for chat in CHATS)
    lines = "".join(f"  - {{url: '{feeds.base_url}/f{k}.xml', name: Лента {k}, lang: ru}}\n" for k in range(FEEDS))
    path = tmp_path / "config.yaml"
    path.write_text(
        textwrap.dedent(
            f"""\
            telegram: {{base_url: '{emu.base_url}', poll_timeout: 1, poll_interval: 0.2}}
            storage: {{url: '{url}'}}
            rules: {{files: ['{REPO / "rules"}/*.yaml']}}
            polling: {{allow_private_urls: true, timeout: 5, default_interval: 3600,
                       backlog: {{max_items: 1000, max_age: null}}}}
            delivery: {{max_instant_per_pass: 1000}}
            spikes: {{enabled: false}}
            run: {{lease: 3, tick: 1}}
            feeds:
            """
        )
        + lines
        + "subscriptions:\n"
        + subs,
        encoding="utf-8",
    )
    return path


def start(config: Path, roles: str, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, str(REPO / "bot.py"), "--config", str(config), "run", "--role", roles],
            cwd=REPO,
            env={**os.environ, "TELEGRAM_BOT_TOKEN": TOKEN},
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def expected_items(generation: int) -> set[int]:
    ruleset = load_rules(sorted((REPO / "rules").glob("*.yaml")))
    items = [generation * 1000 + k for k in range(FEEDS)]
    return {n for n in items if any(m.priority == "instant" for m in ruleset.match_text(*story(n)))}


def wait_for_all(emu: BotApiEmulator, expected: set[int], procs: list[subprocess.Popen[bytes]], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if all(expected <= set(received(emu, chat)) for chat in CHATS):
            return
        if all(p.poll() is not None for p in procs):
            break
        time.sleep(0.2)
    missing = {chat: sorted(expected - set(received(emu, chat))) for chat in CHATS}
    raise AssertionError(f"not delivered: {missing}; log tail:\n{log.read_text()[-4000:]}")


def until_sent(emu: BotApiEmulator, count: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while len(emu.sent()) < count and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.01)


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def unconfirmed(url: str) -> dict[int, set[int]]:
    """Per chat, the items whose alert the store counted as a send Telegram may have accepted."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT s.chat_id, i.title FROM outbox o JOIN items i ON i.id = o.item_id "
            "JOIN subscriptions s ON s.id = o.subscription_id WHERE o.unconfirmed > 0"
        ).fetchall()
    return numbered_by_chat(rows)


def sender_holding_chats(url: str) -> int | None:
    """The pid of the worker that holds chat claims now (it is sending), from its id ``host:pid:random``."""
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT worker FROM send_claims ORDER BY subscription_id LIMIT 1").fetchone()
    return int(row[0].split(":")[-2]) if row else None


@pytest.mark.timeout(150)
def test_three_workers_deliver_every_alert_once_and_a_killed_one_loses_nothing(
    tmp_path: Path, emu: BotApiEmulator, pg_url: str, figure: Callable[[str], None]
) -> None:
    first, second = expected_items(1), expected_items(2)
    assert len(first) == len(second) == FEEDS // EVERY, "the on-topic items are alerts, the others are not"
    log = tmp_path / "workers.log"
    feeds = Feeds()
    with feeds:
        config = write_config(tmp_path, emu, feeds, pg_url)
        procs = [start(config, roles, log) for roles in ("poller,sender", "poller,sender", "web")]
        try:
            # 1. Every alert reaches every chat exactly once; every feed is fetched by one worker only.
            wait_for_all(emu, first, procs, log)
            time.sleep(1.5)  # a late duplicate would arrive within a delivery tick or two
            once = {chat: received(emu, chat) for chat in CHATS}
            fetches = dict(feeds.fetches)

            # 2. A second generation of items; the worker sending them is SIGKILLed mid-pass (pacing
            # holds each chat's alerts a second apart), its chats claimed and an alert a chat maybe in
            # flight. The other sender takes them over when the victim's lease runs out.
            before = len(emu.sent())
            feeds.generations = 2
            with psycopg.connect(pg_url) as conn:
                conn.execute("UPDATE feeds SET next_poll_at = NULL")  # time passes: every feed is due
            deadline = time.monotonic() + 60
            victim = None
            while time.monotonic() < deadline and victim is None:
                if len(emu.sent()) >= before + 3:
                    victim = sender_holding_chats(pg_url)
                time.sleep(0.01)
            assert victim is not None, f"nobody sent the second generation; log:\n{log.read_text()[-3000:]}"
            killed = next(p for p in procs if p.pid == victim)
            killed.send_signal(signal.SIGKILL)
            killed.wait(timeout=10)
            sent_before_kill = len(emu.sent()) - before
            survivors = [p for p in procs if p is not killed]
            wait_for_all(emu, first | second, survivors, log)
            time.sleep(1.5)
        finally:
            stop(procs)
    text = log.read_text()
    for chat in CHATS:
        got = once[chat]
        assert set(got) == first and all(n == 1 for n in got.values()), f"chat {chat}: {got}"
    assert sorted(fetches) == list(range(FEEDS)), "every feed polled"
    twice = {k: n for k, n in fetches.items() if n > 1}
    assert not twice, f"feeds polled by two workers in one interval: {twice}"
    started = re.findall(r"event=bot_started worker=(\S+) roles=(\S+)", text)
    assert sorted(r for _, r in started) == ["poller,sender", "poller,sender", "web"], text[-3000:]
    assert len({w for w, _ in started}) == 3, "each worker has an id of its own"
    assert all(p.returncode == 0 for p in survivors), text[-3000:]

    maybe_sent = unconfirmed(pg_url)
    repeats = 0
    for chat in CHATS:
        got = received(emu, chat)
        assert first | second <= set(got), f"chat {chat} lost {sorted(first | second - set(got))}"
        assert all(n <= 2 for n in got.values()), f"chat {chat}: a message sent more than twice: {got}"
        again = {n for n, count in got.items() if count > 1}
        assert again <= maybe_sent.get(chat, set()), f"chat {chat}: repeats {sorted(again)} not unconfirmed sends"
        repeats += len(again)
    assert sum(len(v) for v in maybe_sent.values()) <= len(CHATS), "only what was in flight: one alert a chat"
    figure(
        f"workers: 3 processes, {FEEDS} feeds, {len(CHATS)} chats; SIGKILL after {sent_before_kill} of "
        f"{len(second) * len(CHATS)} alerts; repeats {repeats}, unconfirmed sends "
        f"{sum(len(v) for v in maybe_sent.values())}"
    )


@pytest.mark.timeout(120)
def test_a_second_web_worker_polling_for_updates_exits_with_a_line_pointing_to_webhook_mode(
    tmp_path: Path, emu: BotApiEmulator, pg_url: str
) -> None:
    """Telegram allows one getUpdates consumer per token: a second one would steal the first one's updates."""
    config = tmp_path / "config.yaml"
    config.write_text(
        f"telegram: {{base_url: '{emu.base_url}'}}\nstorage: {{url: '{pg_url}'}}\n"
        f"rules: {{files: ['{REPO / 'rules'}/*.yaml']}}\nfeeds: []\n",
        encoding="utf-8",
    )
    with Store.open(pg_url) as other, other.advisory_lock(UPDATES_LOCK) as receiving:  # a web worker polls
        assert receiving
        result = subprocess.run(
            [sys.executable, str(REPO / "bot.py"), "--config", str(config), "run", "--role", "web"],
            cwd=REPO,
            env={**os.environ, "TELEGRAM_BOT_TOKEN": TOKEN},
            capture_output=True,
            text=True,
            timeout=100,
        )
    assert result.returncode == 1, result.stderr
    assert "another worker already receives Telegram updates" in result.stderr
    assert "--role poller,sender" in result.stderr and "telegram.webhook" in result.stderr
    assert not [r for r in emu.requests if r[1] == "getUpdates"], "it never asked Telegram for updates"
