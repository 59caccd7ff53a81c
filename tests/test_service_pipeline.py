"""One poll cycle end to end over real HTTP and a real SQLite file."""

from __future__ import annotations

import asyncio
import contextlib
import io
import textwrap
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from cli.demo import run_demo
from core.config import BacklogPolicy, FeedConfig, PollingConfig
from core.models import MAX_TEXT
from core.workers import CpuPool
from rules import RuleSet, parse_rule_text
from service.pipeline import Pipeline
from store import Store
from watchers import PollSettings, make_client

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
RULES = textwrap.dedent(
    """\
    version: 1
    groups:
      DPRK: {aliases: [КНДР, North Korea]}
      RUSSIA: {aliases: [Россия, Russia]}
    rules:
      - name: pair
        priority: instant
        all: [DPRK, RUSSIA]
    """
)


def rss(*entries: tuple[str, str, datetime]) -> bytes:
    body = "".join(
        f"<item><guid>{guid}</guid><title>{title}</title><pubDate>{when.strftime('%a, %d %b %Y %H:%M:%S +0000')}"
        f"</pubDate></item>"
        for guid, title, when in entries
    )
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>{body}</channel></rss>'.encode()


@pytest.fixture
def ruleset() -> RuleSet:
    return parse_rule_text(RULES, "test.yaml")


def polling(max_items: int = 5, max_age: int | None = 86400) -> PollingConfig:
    return PollingConfig(allow_private_urls=True, timeout=2.0, backlog=BacklogPolicy(max_items, max_age))


async def cycle(store: Store, ruleset: RuleSet, now: datetime, config: PollingConfig) -> object:
    async with make_client(PollSettings.from_config(config)) as client:
        return await Pipeline(store, client, lambda: ruleset, config).run_cycle(now)


def etag_feed(body: bytes, counter: dict[str, int]):  # type: ignore[no-untyped-def]
    def handler(request: Request) -> Response:
        counter["hits"] += 1
        if request.headers.get("If-None-Match") == '"v1"':
            counter["304"] += 1
            return Response(status=304)
        return Response(body, content_type="application/rss+xml", headers={"ETag": '"v1"'})

    return handler


async def test_first_poll_backlog_then_304_then_restart(
    httpserver: HTTPServer, tmp_path: Path, ruleset: RuleSet
) -> None:
    entries = [(f"g{i}", f"КНДР и Россия: новость {i}", NOW - timedelta(hours=i * 10)) for i in range(6)]
    counter = {"hits": 0, "304": 0}
    httpserver.expect_request("/feed").respond_with_handler(etag_feed(rss(*entries), counter))
    config = polling(max_items=2, max_age=86400)
    path = tmp_path / "bot.sqlite3"
    with Store.open(path) as store:
        store.sync_feeds([FeedConfig(httpserver.url_for("/feed"), "F", "ru", 600)], NOW)
        store.upsert_subscription(1, NOW, mode="instant")
        report = await cycle(store, ruleset, NOW, config)
        assert (report.new_items, report.matched_items) == (6, 6)  # type: ignore[attr-defined]
        titles = [e.item.title for e in store.pending_instant(NOW)]
        # backlog: only the 2 newest of the items published within 24 h are delivered
        assert titles == ["КНДР и Россия: новость 0", "КНДР и Россия: новость 1"]
        second = await cycle(store, ruleset, NOW + timedelta(minutes=11), config)
        assert (second.feeds_not_modified, second.new_items) == (1, 0)  # type: ignore[attr-defined]
        assert counter == {"hits": 2, "304": 1}
    httpserver.clear()
    fresh = [*entries, ("g9", "North Korea and Russia sign a deal", NOW)]
    httpserver.expect_request("/feed").respond_with_data(rss(*fresh), content_type="application/rss+xml")
    with Store.open(path) as store:  # a restart: nothing is processed twice, only the new item alerts
        report = await cycle(store, ruleset, NOW + timedelta(minutes=30), config)
        assert report.new_items == 1  # type: ignore[attr-defined]
        assert [e.item.title for e in store.pending_instant(NOW + timedelta(hours=1))][-1] == (
            "North Korea and Russia sign a deal"
        )


async def test_failing_feed_backs_off_and_never_blocks_others(
    httpserver: HTTPServer, tmp_path: Path, ruleset: RuleSet
) -> None:
    httpserver.expect_request("/good").respond_with_data(
        rss(("a", "КНДР и Россия", NOW)), content_type="application/rss+xml"
    )
    httpserver.expect_request("/bad").respond_with_data("oops", status=503)
    config = polling()
    with Store.open(tmp_path / "b.sqlite3") as store:
        store.sync_feeds(
            [
                FeedConfig(httpserver.url_for("/bad"), "Bad", None, 600),
                FeedConfig(httpserver.url_for("/good"), "Good", None, 600),
            ],
            NOW,
        )
        now = NOW
        waits = []
        for _ in range(3):
            report = await cycle(store, ruleset, now, config)
            bad = store.feed_by_url(httpserver.url_for("/bad"))
            assert bad is not None and bad.last_error == "HTTP 503"
            assert bad.next_poll_at is not None
            waits.append((bad.next_poll_at - now).total_seconds())
            now = bad.next_poll_at
        assert report.feeds_failed == 1  # type: ignore[attr-defined]
        assert waits[0] < waits[1] < waits[2], f"exponential back-off, got {waits}"
        good = store.feed_by_url(httpserver.url_for("/good"))
        assert good is not None and good.failures == 0 and good.initialised


async def test_no_backlog_delivery_when_configured_off(
    httpserver: HTTPServer, tmp_path: Path, ruleset: RuleSet
) -> None:
    httpserver.expect_request("/feed").respond_with_data(
        rss(("a", "КНДР и Россия", NOW)), content_type="application/rss+xml"
    )
    with Store.open(tmp_path / "c.sqlite3") as store:
        store.sync_feeds([FeedConfig(httpserver.url_for("/feed"), "F", None, 600)], NOW)
        store.upsert_subscription(1, NOW)
        report = await cycle(store, ruleset, NOW, polling(max_items=0))
        assert report.new_items == 1 and store.queue_sizes() == {}  # type: ignore[attr-defined]


async def test_first_poll_delivers_the_newest_matching_items_not_the_newest_items(
    httpserver: HTTPServer, tmp_path: Path, ruleset: RuleSet
) -> None:
    # the five newest items match nothing; the sixth and seventh (older, still within max_age) do
    entries = [(f"n{i}", f"Погода в Москве: прогноз {i}", NOW - timedelta(hours=i)) for i in range(5)]
    entries += [("m1", "КНДР и Россия: договор", NOW - timedelta(hours=6))]
    entries += [("m2", "North Korea and Russia: talks", NOW - timedelta(hours=7))]
    entries += [("old", "КНДР и Россия: старое", NOW - timedelta(days=3))]  # past max_age
    httpserver.expect_request("/feed").respond_with_data(rss(*entries), content_type="application/rss+xml")
    with Store.open(tmp_path / "bl.sqlite3") as store:
        store.sync_feeds([FeedConfig(httpserver.url_for("/feed"), "F", "ru", 600)], NOW)
        store.upsert_subscription(1, NOW, mode="instant")
        report = await cycle(store, ruleset, NOW, polling(max_items=5, max_age=86400))
        assert (report.new_items, report.matched_items) == (8, 3)  # type: ignore[attr-defined]
        titles = [e.item.title for e in store.pending_instant(NOW)]
        assert titles == ["КНДР и Россия: договор", "North Korea and Russia: talks"]


def long_rss(guid: str, hit_at: int) -> bytes:
    """One item whose title says nothing and whose summary names both countries at character ``hit_at``."""
    filler = ("Обзор событий недели без упоминания стран. " * (hit_at // 40 + 1))[:hit_at]
    summary = f"{filler} КНДР и Россия подписали договор. " + "Конец обзора. " * 200
    return (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title><item><guid>{guid}</guid>'
        f"<title>Обзор недели</title><description>{summary}</description>"
        f"<pubDate>{NOW.strftime('%a, %d %b %Y %H:%M:%S +0000')}</pubDate></item></channel></rss>"
    ).encode()


@pytest.mark.parametrize(
    ("name", "hit_at", "matched"),
    [
        ("hit near the start", 100, True),
        ("hit at character 15,000 (past the old 4,000 cut)", 15_000, True),
        ("hit just inside the cap", MAX_TEXT - 100, True),
        ("hit past the cap is not read", MAX_TEXT + 500, False),
    ],
)
async def test_matching_reads_a_long_summary_up_to_the_cap(
    httpserver: HTTPServer, tmp_path: Path, ruleset: RuleSet, name: str, hit_at: int, matched: bool
) -> None:
    httpserver.expect_request("/long").respond_with_data(long_rss("g1", hit_at), content_type="application/rss+xml")
    with Store.open(tmp_path / "long.sqlite3") as store:
        store.sync_feeds([FeedConfig(httpserver.url_for("/long"), "F", "ru", 600)], NOW)
        store.upsert_subscription(1, NOW, mode="instant")
        report = await cycle(store, ruleset, NOW, polling())
        assert report.new_items == 1, name  # type: ignore[attr-defined]
        assert (report.matched_items == 1) == matched, name  # type: ignore[attr-defined]
        pending = store.pending_instant(NOW)
        assert len(pending) == (1 if matched else 0), name
        if matched:  # the alert still shows a short excerpt, and the hit's offset is where the text has it
            hit = next(h for h in pending[0].matches[0].hits if h.group == "DPRK")
            assert hit.field == "summary" and pending[0].item.summary[hit.start : hit.end] == "КНДР"


def test_demo_prints_the_seed_article_with_why_and_skips_near_misses(seed_article: str) -> None:
    out = io.StringIO()
    assert run_demo(out=out) == 0
    text = out.getvalue()
    alerts = text.split("did not match any rule")[0]
    assert "В КНДР сообщили о новых военных переговорах с Россией" in alerts
    assert "DPRK: «КНДР»" in alerts and "RUSSIA:" in alerts
    assert "КНДР запустила баллистическую ракету в сторону Японского моря" not in alerts
    assert "Wonsan-Kalma" not in alerts and "북한강" not in alerts
    assert "<script" not in text


# --- issue 16: each feed goes on as its fetch completes; parsing and matching off the event loop ----------


async def test_a_fast_feeds_items_are_stored_while_a_slow_feed_is_still_fetching(
    httpserver: HTTPServer, tmp_path: Path, ruleset: RuleSet
) -> None:
    import socket
    import threading

    sock = socket.socket()  # a feed that answers only when told to
    sock.bind(("127.0.0.1", 0))
    sock.listen(4)
    release = threading.Event()

    def slow() -> None:
        conn, _ = sock.accept()
        with conn:
            conn.recv(65536)
            release.wait(10)
            body = rss(("s1", "КНДР и Россия: slow", NOW))
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\nContent-Length: %d\r\n"
                         b"Connection: close\r\n\r\n%s" % (len(body), body))  # fmt: skip

    thread = threading.Thread(target=slow, daemon=True)
    thread.start()
    httpserver.expect_request("/fast").respond_with_data(rss(("f1", "КНДР и Россия: fast", NOW)))
    slow_url = f"http://127.0.0.1:{sock.getsockname()[1]}/slow"
    config = polling()
    with Store.open(tmp_path / "bot.sqlite3") as store:
        store.sync_feeds(
            [FeedConfig(httpserver.url_for("/fast"), "Fast", "ru", 600), FeedConfig(slow_url, "Slow", "ru", 600)], NOW
        )
        seen_while_slow_pending: list[str] = []
        async with make_client(PollSettings.from_config(config)) as client:
            pipeline = Pipeline(store, client, lambda: ruleset, config)
            task = asyncio.create_task(pipeline.run_cycle(NOW))
            for _ in range(200):  # until the fast feed's item is committed (bounded: ~10 s)
                titles = [i.title for i in store.recent_items(NOW - timedelta(days=1))]
                if titles:
                    seen_while_slow_pending = titles
                    break
                await asyncio.sleep(0.05)
            slow_was_pending = not task.done()
            release.set()
            report = await task
    thread.join(5)
    sock.close()
    assert seen_while_slow_pending == ["КНДР и Россия: fast"], "the fast feed waited for the slow one"
    assert slow_was_pending
    assert report.new_items == 2 and report.matched_items == 2  # type: ignore[attr-defined]


async def test_parsing_and_matching_run_off_the_event_loop_with_the_cycles_rule_set(
    httpserver: HTTPServer, tmp_path: Path, ruleset: RuleSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    import watchers.poll

    threads: dict[str, set[int]] = {"parse": set(), "match": set()}
    real_parse = watchers.poll.parse_feed

    def parse(*args: object, **kwargs: object) -> object:
        threads["parse"].add(threading.get_ident())
        return real_parse(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(watchers.poll, "parse_feed", parse)

    class Recording:  # a RuleSet as the workers see it, noting the thread each match runs in
        def __init__(self, rules: RuleSet) -> None:
            self.rules = rules

        def match(self, item: object) -> object:
            threads["match"].add(threading.get_ident())
            return self.rules.match(item)  # type: ignore[arg-type]

    edited = parse_rule_text(RULES.replace("all: [DPRK, RUSSIA]", "all: [DPRK]"), "test.yaml")
    current = {"rules": Recording(ruleset)}
    httpserver.expect_request("/a").respond_with_data(rss(("a1", "КНДР и Россия", NOW), ("a2", "КНДР одна", NOW)))
    config = polling()
    with Store.open(tmp_path / "bot.sqlite3") as store:
        store.sync_feeds([FeedConfig(httpserver.url_for("/a"), "A", "ru", 600)], NOW)
        async with make_client(PollSettings.from_config(config)) as client:
            pipeline = Pipeline(store, client, lambda: current["rules"], config)  # type: ignore[arg-type,return-value]
            first = await pipeline.run_cycle(NOW)
            httpserver.clear()
            httpserver.expect_request("/a").respond_with_data(rss(("a3", "КНДР одна снова", NOW)))
            current["rules"] = Recording(edited)  # a rule edit lands between cycles
            second = await pipeline.run_cycle(NOW + timedelta(hours=1), feeds=store.all_feeds())
    loop_thread = threading.get_ident()
    assert threads["parse"] and loop_thread not in threads["parse"], "parsing ran on the event loop"
    assert threads["match"] and loop_thread not in threads["match"], "matching ran on the event loop"
    assert first.matched_items == 1  # only the pair matched the first rules
    assert second.matched_items == 1, "the edited rule set did not reach the workers"


async def test_a_rule_that_asks_for_state_media_matches_only_the_labelled_feeds_items(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    ruleset = parse_rule_text(
        RULES + "  - name: state_view\n    all: [DPRK]\n    source: {label: state-media}\n", "t.yaml"
    )
    body = rss(("g1", "КНДР и Россия: новость", NOW - timedelta(minutes=5)))
    httpserver.expect_request("/state").respond_with_data(body, content_type="application/rss+xml")
    httpserver.expect_request("/other").respond_with_data(body, content_type="application/rss+xml")
    with Store.open(tmp_path / "bot.sqlite3") as store:
        store.sync_feeds(
            [
                FeedConfig(httpserver.url_for("/state"), "TASS", "ru", 600, labels=("state-media",)),
                FeedConfig(httpserver.url_for("/other"), "Other", "ru", 600),
            ],
            NOW,
        )
        await cycle(store, ruleset, NOW, polling())
        rules_by_feed = {
            name: sorted(rule for (rule,) in store.conn.execute(
                "SELECT m.rule FROM matches m JOIN items i ON i.id = m.item_id JOIN feeds f ON f.id = i.feed_id "
                "WHERE f.name = ?", (name,)))
            for name in ("TASS", "Other")
        }  # fmt: skip
    assert rules_by_feed == {"TASS": ["pair", "state_view"], "Other": ["pair"]}


def test_story_assignment_gives_the_loop_control_at_every_item_and_decides_as_before(tmp_path: Path) -> None:
    """A feed of 12 matched items used to be assigned its stories in one stretch on the event loop."""
    from collections.abc import Sequence

    import numpy as np

    from core.models import Hit, Item, Match
    from core.workers import CpuPool
    from service.pipeline import assign_stories, assign_stories_off_loop
    from store import ProcessedItem

    match = Match("pair", "instant", (Hit("DPRK", "title", 0, 4, "КНДР"), Hit("RUSSIA", "title", 7, 13, "Россия")))
    titles = ["КНДР и Россия провели учения", "КНДР и Россия подписали договор", "КНДР и Россия: переговоры"]

    def batch(feed: str, start: int, count: int) -> list[ProcessedItem]:
        return [
            ProcessedItem(
                Item(feed, f"u{n}", titles[n % 3], "", None, NOW - timedelta(minutes=n), "ru", "A"), (match,), True
            )
            for n in range(start, start + count)
        ]

    class Ones:
        def embed(self, texts: Sequence[str]) -> np.ndarray | None:
            return np.full((len(texts), 512), 512**-0.5, dtype=np.float32)

    async def ticking(store: Store, pool: CpuPool, processed: list[ProcessedItem]) -> tuple[list[ProcessedItem], int]:
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0)
                ticks += 1

        ticker = asyncio.create_task(tick())
        await asyncio.sleep(0)
        before = ticks
        out = await assign_stories_off_loop(
            store, pool, processed, list(np.full((12, 512), 512**-0.5, dtype=np.float32))
        )
        ticker.cancel()
        return out, ticks - before

    with Store.open(tmp_path / "s.sqlite3") as store:
        store.sync_feeds([FeedConfig("https://a.example/rss", "A", "ru", 600)], NOW)
        feed = store.feed_by_url("https://a.example/rss")
        assert feed is not None
        stored = assign_stories(store, Ones(), batch(feed.url, 0, 12))
        store.commit_poll(
            feed.id, NOW, ok=True, etag=None, last_modified=None, error=None, next_poll_at=NOW, items=stored
        )
        fresh = batch(feed.url, 100, 12)
        on_loop = assign_stories(store, Ones(), fresh)
        pool = CpuPool("thread")
        try:
            off_loop, ticks = asyncio.run(ticking(store, pool, fresh))
        finally:
            pool.close()
    assert off_loop == on_loop  # the same stories, the same keys and vectors
    assert any(p.story is not None and p.story.story_id is not None for p in off_loop)  # joined stored stories
    assert ticks >= 12  # the loop ran other work at least once per item


def test_candidate_features_are_computed_once_across_polls_and_follow_an_edited_item(tmp_path: Path) -> None:
    """Every poll of a busy story recomputed the features of the same stored candidates (issue 16: most of
    a cycle's CPU); they are kept now, yet an edited candidate is judged on its new title."""
    from core.models import Hit, Item, Match
    from service.pipeline import CandidateFeatures, assign_stories
    from store import ItemUpdate, ProcessedItem

    match = Match("pair", "instant", (Hit("DPRK", "title", 0, 4, "КНДР"), Hit("RUSSIA", "title", 7, 13, "Россия")))

    def batch(feed: str, start: int, title: str = "КНДР и Россия провели учения у Владивостока") -> list[ProcessedItem]:
        return [
            ProcessedItem(Item(feed, f"u{n}", title, "", None, NOW - timedelta(minutes=n), "ru", "A"), (match,), True)
            for n in range(start, start + 4)
        ]

    class NoEncoder:
        def embed(self, texts: object) -> None:
            return None

    with Store.open(tmp_path / "s.sqlite3") as store:
        store.sync_feeds([FeedConfig("https://a.example/rss", "A", "ru", 600)], NOW)
        feed = store.feed_by_url("https://a.example/rss")
        assert feed is not None
        stored = assign_stories(store, NoEncoder(), batch(feed.url, 0))
        store.commit_poll(
            feed.id, NOW, ok=True, etag=None, last_modified=None, error=None, next_poll_at=NOW, items=stored
        )
        kept = CandidateFeatures()
        first = assign_stories(store, NoEncoder(), batch(feed.url, 10), known=kept)
        computed = kept.computed
        assert computed == 4  # each stored candidate once, not once per new item
        second = assign_stories(store, NoEncoder(), batch(feed.url, 20), known=kept)
        assert kept.computed == computed  # the next poll reuses them
        assert second == assign_stories(store, NoEncoder(), batch(feed.url, 20))  # same decisions as fresh
        assert first[0].story is not None and first[0].story.story_id is not None  # joined the stored story

        # the stored items are edited into another story: a kept entry must not stand for the old title
        ids = [m.item_id for m in store.story_candidates(first[0].story.keys, NOW - timedelta(days=3))]
        other = "Шторм на Камчатке: сорваны рейсы паромов"
        store.commit_poll(
            feed.id, NOW, ok=True, etag=None, last_modified=None, error=None, next_poll_at=NOW,
            updates=[ItemUpdate(i, other, "") for i in ids],
        )  # fmt: skip
        third = assign_stories(store, NoEncoder(), batch(feed.url, 30), known=kept)
        assert kept.computed > computed
        assert third == assign_stories(store, NoEncoder(), batch(feed.url, 30))


async def test_a_polls_search_keys_are_made_off_the_event_loop(
    httpserver: HTTPServer, tmp_path: Path, ruleset: RuleSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The search index's keys were made in the store's trigger, on the loop, ~30 µs an item (issue 16)."""
    import threading

    import store.search as search_module
    from store.search import parse_query, search

    where: list[str] = []
    real = search_module.keys_text
    thread = threading.current_thread
    monkeypatch.setattr(search_module, "keys_text", lambda *f: where.append(thread().name) or real(*f))
    entries = [(f"g{i}", f"КНДР и Россия: переговоры в Пхеньяне {i}", NOW - timedelta(hours=i)) for i in range(5)]
    httpserver.expect_request("/feed").respond_with_data(rss(*entries), content_type="application/rss+xml")
    with Store.open(tmp_path / "k.sqlite3") as store:
        store.sync_feeds([FeedConfig(httpserver.url_for("/feed"), "F", "ru", 600)], NOW)
        report = await cycle(store, ruleset, NOW, polling())
        assert report.new_items == 5  # type: ignore[attr-defined]
        found, _ = search(store.conn, parse_query("Пхеньян"))  # type: ignore[arg-type]
        assert len(found) == 5, "every item indexed"
    assert len(where) == 5 and threading.main_thread().name not in where


@contextlib.asynccontextmanager
async def process_pipeline(
    httpserver: HTTPServer, tmp_path: Path, rules: Callable[[], RuleSet]
) -> AsyncIterator[tuple[Store, Pipeline, CpuPool]]:
    """A store with feed /a, and a Pipeline whose CPU pool is one spawned process worker."""
    config = polling()
    pool = CpuPool("process", workers=1)
    try:
        with Store.open(tmp_path / "bot.sqlite3") as store:
            store.sync_feeds([FeedConfig(httpserver.url_for("/a"), "A", "ru", 600)], NOW)
            async with make_client(PollSettings.from_config(config)) as client:
                yield store, Pipeline(store, client, rules, config, pool=pool), pool
    finally:
        pool.close()


async def test_a_rule_edit_reaches_the_process_workers_on_the_next_cycle(
    httpserver: HTTPServer, tmp_path: Path, ruleset: RuleSet
) -> None:
    """``polling.cpu_pool: process``: parse and match run in a spawned worker that keeps the compiled rules;
    after a rule swap the next cycle's items are matched there with the new rules, not the kept old ones."""
    from core.workers import _kept_digests

    edited = parse_rule_text(RULES.replace("all: [DPRK, RUSSIA]", "all: [DPRK]"), "test.yaml")
    current = {"rules": ruleset}
    httpserver.expect_request("/a").respond_with_data(rss(("a1", "КНДР и Россия", NOW), ("a2", "КНДР одна", NOW)))
    async with process_pipeline(httpserver, tmp_path, lambda: current["rules"]) as (store, pipeline, pool):
        first = await pipeline.run_cycle(NOW)
        kept_first = await pool.run_portable(_kept_digests)
        httpserver.clear()
        httpserver.expect_request("/a").respond_with_data(rss(("a3", "КНДР одна снова", NOW)))
        current["rules"] = edited  # what a confirmed chat edit does (state.rules = proposal.ruleset)
        second = await pipeline.run_cycle(NOW + timedelta(hours=1), feeds=store.all_feeds())
        kept_second = await pool.run_portable(_kept_digests)
    assert first.matched_items == 1 and first.feeds_ok == 1  # only the pair matched the first rules
    assert second.matched_items == 1, "the edited rule set did not reach the worker"
    assert len(kept_first) == 1 and len(kept_second) == 2  # the worker compiled each rule set once


async def test_a_killed_process_worker_loses_no_feeds_poll(
    httpserver: HTTPServer, tmp_path: Path, ruleset: RuleSet
) -> None:
    import os
    import signal

    httpserver.expect_request("/a").respond_with_data(rss(("a1", "КНДР и Россия", NOW)))
    httpserver.expect_request("/b").respond_with_data(rss(("b1", "Россия и КНДР", NOW)))
    async with process_pipeline(httpserver, tmp_path, lambda: ruleset) as (store, pipeline, pool):
        first = await pipeline.run_cycle(NOW)
        (worker,) = pool.worker_pids()
        os.kill(worker, signal.SIGKILL)  # out of memory, or an operator's kill
        store.sync_feeds([FeedConfig(httpserver.url_for(p), n, "ru", 600) for p, n in (("/a", "A"), ("/b", "B"))], NOW)
        second = await pipeline.run_cycle(NOW + timedelta(hours=1), feeds=store.all_feeds())
        assert worker not in pool.worker_pids()  # a fresh worker took over
    assert first.matched_items == 1
    assert (second.feeds_ok, second.feeds_failed, second.new_items, second.matched_items) == (2, 0, 1, 1)
    assert pool.restarts == 1


@pytest.mark.parametrize("kind", ["thread", "process", "inline"])
async def test_the_pipeline_runs_its_cpu_work_in_the_pool_polling_cpu_pool_names(
    tmp_path: Path, ruleset: RuleSet, kind: str
) -> None:
    config = PollingConfig(allow_private_urls=True, cpu_pool=kind)  # type: ignore[arg-type]
    with Store.open(tmp_path / "bot.sqlite3") as store:
        async with make_client(PollSettings.from_config(config)) as client:
            assert Pipeline(store, client, lambda: ruleset, config).pool.kind == kind
