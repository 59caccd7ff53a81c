"""The enrich step in real poll cycles: a title-only feed and its article pages on 127.0.0.1, a real
SQLite store, the real fetch layer and rules; what the analyst would see is the queued alert."""

from __future__ import annotations

import logging
import textwrap
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from core.config import FeedConfig, FullTextConfig, PollingConfig
from core.models import Feed
from delivery.render import render_alert
from rules import RuleSet, parse_rule_text
from service.enrich import EnrichPolicy
from service.pipeline import CycleReport, Pipeline
from store import Store
from tests.articles import article_page
from tests.feedhttp import rss
from watchers import PollSettings, make_client

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
RULES = textwrap.dedent(
    """\
    version: 1
    groups:
      DPRK: {aliases: [КНДР, North Korea, North Korean, Pyongyang, 북한]}
      RUSSIA: {aliases: [Россия, Russia, Russian, 러시아]}
      MILITARY: {aliases: [troops, soldiers, военные, 파병]}
    rules:
      - name: tie
        priority: instant
        all: [DPRK, RUSSIA, MILITARY]
    """
)
FILLER = [
    "The ministry's statement was read out on state television on Tuesday evening and repeated on the radio.",
    "Officials gave no further details about the timing of the decision or about who would carry it out.",
] * 6  # ~1,200 characters before the tie: past what the start of a summary shows
TIE = "Seoul's spy agency said about 3,000 more North Korean troops had been sent to Russia this spring."


@pytest.fixture
def httpserver() -> Iterator[HTTPServer]:
    """A threaded server: one slow article must not hold up the others (as real sites do not)."""
    server = HTTPServer(host="127.0.0.1", threaded=True)
    server.start()
    yield server
    server.clear()
    server.stop()


@pytest.fixture
def ruleset() -> RuleSet:
    return parse_rule_text(RULES, "test.yaml")


class Site:
    """A news-search-like feed (title-only items) and the article pages behind it; counts requests."""

    def __init__(self, server: HTTPServer) -> None:
        self.server = server
        self.entries: list[tuple[str, str, str, datetime]] = []
        self.pages: dict[str, Callable[[], Response]] = {}
        self.hits: Counter[str] = Counter()
        server.expect_request("/feed").respond_with_handler(self._feed)

    @property
    def feed_url(self) -> str:
        return self.server.url_for("/feed")

    def _feed(self, request: Request) -> Response:
        self.hits["/feed"] += 1
        return Response(rss("News search", "http://x", self.entries), content_type="application/rss+xml")

    def _page(self, request: Request) -> Response:
        self.hits[request.path] += 1
        return self.pages[request.path]()

    def add(self, slug: str, title: str, page: Callable[[], Response] | None, when: datetime = NOW) -> None:
        path = f"/news/{slug}"
        self.entries.append((title, self.server.url_for(path), "", when))  # title only, as Google News gives
        if page is not None:
            self.pages[path] = page
            self.server.expect_request(path).respond_with_handler(self._page)


def html(paragraphs: list[str], title: str = "Article") -> Callable[[], Response]:
    return lambda: Response(article_page(title, paragraphs), content_type="text/html; charset=utf-8")


async def cycle(store: Store, ruleset: RuleSet, now: datetime, policy: EnrichPolicy) -> CycleReport:
    polling = PollingConfig(allow_private_urls=True, timeout=1.0)
    async with make_client(PollSettings.from_config(polling)) as client:
        return await Pipeline(store, client, lambda: ruleset, polling, policy).run_cycle(now)


def open_store(tmp_path: Path, site: Site, name: str = "bot.sqlite3") -> Store:
    store = Store.open(tmp_path / name)
    store.sync_feeds([FeedConfig(site.feed_url, "News search", None, 600)], NOW)
    store.upsert_subscription(1, NOW, mode="instant")
    return store


def policy(site: Site, *, on: bool = True, per_host_daily: int = 200, timeout: float = 1.0) -> EnrichPolicy:
    return EnrichPolicy(FullTextConfig(per_host_daily=per_host_daily, timeout=timeout), {site.feed_url: on})


async def first_poll(store: Store, ruleset: RuleSet, pol: EnrichPolicy) -> None:
    """The feed's first poll (its backlog is only marked seen, no article fetched)."""
    await cycle(store, ruleset, NOW - timedelta(hours=1), pol)


async def test_title_only_item_alerts_only_with_full_text(
    httpserver: HTTPServer, tmp_path: Path, ruleset: RuleSet
) -> None:
    site = Site(httpserver)
    for on in (False, True):
        site.entries.clear()
        site.add("old", "Pyongyang weather report", html(["Sunny. " * 40]), NOW - timedelta(days=3))
        with open_store(tmp_path, site, f"{on}.sqlite3") as store:
            await first_poll(store, ruleset, policy(site, on=on))
            site.add("tie", "Pyongyang sends more workers abroad - Asia Wire", html([*FILLER, TIE]))
            site.hits.clear()
            await cycle(store, ruleset, NOW, policy(site, on=on))
            pending = store.pending_instant(NOW + timedelta(minutes=1))
            if not on:
                assert pending == [] and site.hits["/news/tie"] == 0
                continue
            assert site.hits["/news/tie"] == 1  # fetched once
            [entry] = pending
            assert entry.item.summary.endswith(TIE)
            assert entry.item.lang == "en"
            text = render_alert(entry.item, entry.matches)
            # the excerpt is the passage around the hits in the article, not its first 600 characters
            assert "3,000 more North Korean troops had been sent to Russia" in text
            assert "«North Korean»" in text and "«troops»" in text


@pytest.mark.parametrize(
    ("name", "answer"),
    [
        ("404", lambda: Response("no such page", status=404)),
        ("slow", None),
        ("20 MB", lambda: Response(b"<p>" + b"x " * 10_000_000 + b"</p>", content_type="text/html")),
        ("scripts only", lambda: Response("<html>" + "<script>var a=1;</script>" * 5000 + "</html>")),
    ],
)
async def test_failed_article_falls_back_to_feed_text_and_spares_the_others(
    httpserver: HTTPServer,
    tmp_path: Path,
    ruleset: RuleSet,
    caplog: pytest.LogCaptureFixture,
    name: str,
    answer: Callable[[], Response] | None,
) -> None:
    def slow() -> Response:
        time.sleep(1.5)
        return html([TIE] * 3)()

    site = Site(httpserver)
    with open_store(tmp_path, site) as store:
        await first_poll(store, ruleset, policy(site))
        # the broken article's title alone already matches: it must still alert, from the feed's text
        site.add("broken", "North Korean troops in Russia: new figures", answer or slow)
        site.add("fine", "Pyongyang mourns", html([*FILLER, TIE]))
        caplog.set_level(logging.INFO, logger="service.enrich")
        report = await cycle(store, ruleset, NOW, policy(site, timeout=1.0))
        assert report.feeds_failed == 0
        by_title = {e.item.title: e for e in store.pending_instant(NOW + timedelta(minutes=1))}
        assert set(by_title) == {"North Korean troops in Russia: new figures", "Pyongyang mourns"}
        assert by_title["North Korean troops in Russia: new figures"].item.summary == ""  # the feed's own text
        assert by_title["Pyongyang mourns"].item.summary.endswith(TIE)
        failed = [r.getMessage() for r in caplog.records if r.getMessage().startswith("fulltext_failed")]
        assert len(failed) == 1 and "/news/broken" in failed[0] and "error=" in failed[0]


async def test_an_item_that_hits_no_group_is_never_fetched(
    httpserver: HTTPServer, tmp_path: Path, ruleset: RuleSet
) -> None:
    site = Site(httpserver)
    with open_store(tmp_path, site) as store:
        await first_poll(store, ruleset, policy(site))
        site.add("weather", "Heavy rain expected in Busan", html([TIE] * 3))  # the page would match: never read
        site.add("market", "Oil prices slip", html([TIE] * 3))
        site.add("tie", "Russia's new ambassador arrives", html([*FILLER, TIE]))
        await cycle(store, ruleset, NOW, policy(site))
        assert site.hits["/news/weather"] == 0 and site.hits["/news/market"] == 0
        assert site.hits["/news/tie"] == 1
        assert [e.item.title for e in store.pending_instant(NOW + timedelta(minutes=1))] == [
            "Russia's new ambassador arrives"
        ]


async def test_first_poll_of_a_feed_fetches_no_article(
    httpserver: HTTPServer, tmp_path: Path, ruleset: RuleSet
) -> None:
    site = Site(httpserver)
    for i in range(5):
        site.add(f"b{i}", f"Pyongyang item {i}", html([*FILLER, TIE]))
    with open_store(tmp_path, site) as store:
        await first_poll(store, ruleset, policy(site))
    assert sum(n for path, n in site.hits.items() if path.startswith("/news/")) == 0


async def test_daily_host_quota_bounds_fetches_and_resets_next_day(
    httpserver: HTTPServer, tmp_path: Path, ruleset: RuleSet
) -> None:
    site = Site(httpserver)
    with open_store(tmp_path, site) as store:
        pol = policy(site, per_host_daily=2)
        await first_poll(store, ruleset, pol)
        for i in range(4):
            site.add(f"d1-{i}", f"Pyongyang statement {i}", html([*FILLER, TIE]))
        await cycle(store, ruleset, NOW, pol)
        assert sum(n for p, n in site.hits.items() if p.startswith("/news/d1-")) == 2
        assert len(store.pending_instant(NOW + timedelta(minutes=1))) == 2  # the other two: feed text, no tie
        for i in range(4):
            site.add(f"d1b-{i}", f"Pyongyang statement b{i}", html([*FILLER, TIE]))
        await cycle(store, ruleset, NOW + timedelta(hours=1), pol)  # same UTC day: quota used up
        assert sum(n for p, n in site.hits.items() if p.startswith("/news/d1b-")) == 0
    with Store.open(tmp_path / "bot.sqlite3") as store:  # a restart keeps the day's count
        site.add("d1c", "Pyongyang statement c", html([*FILLER, TIE]))
        await cycle(store, ruleset, NOW + timedelta(hours=2), pol)
        assert site.hits["/news/d1c"] == 0
        site.add("d2", "Pyongyang statement next day", html([*FILLER, TIE]))
        await cycle(store, ruleset, NOW + timedelta(days=1), pol)
        assert site.hits["/news/d2"] == 1


async def test_language_is_detected_per_item_in_a_mixed_feed(
    httpserver: HTTPServer, tmp_path: Path, ruleset: RuleSet
) -> None:
    site = Site(httpserver)
    with open_store(tmp_path, site) as store:
        await first_poll(store, ruleset, policy(site, on=False))
        site.add("ru", "КНДР направила военные в Россия", None)
        site.add("ko", "북한, 러시아에 추가 파병", None)
        site.add("en", "North Korean troops in Russia", None)
        await cycle(store, ruleset, NOW, policy(site, on=False))
        langs = {e.item.title: e.item.lang for e in store.pending_instant(NOW + timedelta(minutes=1))}
        assert langs == {
            "КНДР направила военные в Россия": "ru",
            "북한, 러시아에 추가 파병": "ko",
            "North Korean troops in Russia": "en",
        }


def test_full_text_defaults_on_for_news_search_feeds_only() -> None:
    pol = EnrichPolicy(explicit={"https://news.google.com/rss/search?q=x&off=1": False})
    feed = Feed(1, "https://news.google.com/rss/search?q=KNDR", "G", "ru", 600, initialised=True)
    assert pol.wants_full_text(feed)
    assert pol.wants_full_text(replace(feed, url="https://www.bing.com/news/search?q=x&format=rss"))
    assert not pol.wants_full_text(replace(feed, url="https://tass.ru/rss/v2.xml"))
    assert not pol.wants_full_text(replace(feed, url="https://news.google.com/rss/search?q=x&off=1"))
    assert EnrichPolicy(explicit={"https://tass.ru/rss/v2.xml": True}).wants_full_text(
        replace(feed, url="https://tass.ru/rss/v2.xml")
    )
    # language: detected where the feed names none, and in news-search feeds even when it does
    assert EnrichPolicy.detects_lang(feed)
    assert not EnrichPolicy.detects_lang(replace(feed, url="https://tass.ru/rss/v2.xml"))
    assert EnrichPolicy.detects_lang(replace(feed, url="https://tass.ru/rss/v2.xml", lang=None))


async def test_an_article_that_matches_less_never_loses_the_feeds_match(httpserver: HTTPServer, tmp_path: Path) -> None:
    vetoed = parse_rule_text(
        RULES.replace("  MILITARY:", "  ROUNDUP: {aliases: [headlines]}\n  MILITARY:") + "    none: [ROUNDUP]\n",
        "test.yaml",
    )
    site = Site(httpserver)
    with open_store(tmp_path, site) as store:
        await first_poll(store, vetoed, policy(site))
        # the page around the article lists other headlines: the veto would cancel the title's match
        site.add("roundup", "North Korean troops reach Russia", html(["Morning headlines: " + TIE, *FILLER]))
        site.add("plain", "Pyongyang mourns", html([*FILLER, TIE]))
        await cycle(store, vetoed, NOW, policy(site))
        by_title = {e.item.title: e.item for e in store.pending_instant(NOW + timedelta(minutes=1))}
        assert site.hits["/news/roundup"] == 1
        assert by_title["North Korean troops reach Russia"].summary == ""  # the feed's text, still an alert
        assert by_title["Pyongyang mourns"].summary.endswith(TIE)


async def test_article_fetches_of_one_feed_are_bounded_by_per_feed(
    httpserver: HTTPServer, tmp_path: Path, ruleset: RuleSet
) -> None:
    lock = threading.Lock()
    flight = {"now": 0, "max": 0}

    def counted() -> Response:
        with lock:
            flight["now"] += 1
            flight["max"] = max(flight["max"], flight["now"])
        time.sleep(0.1)
        with lock:
            flight["now"] -= 1
        return html([*FILLER, TIE])()

    site = Site(httpserver)
    with open_store(tmp_path, site) as store:
        pol = replace(policy(site), full_text=FullTextConfig(per_feed=2))
        await first_poll(store, ruleset, pol)
        for i in range(6):
            site.add(f"c{i}", f"Pyongyang note {i}", counted)
        await cycle(store, ruleset, NOW, pol)
    assert sum(n for p, n in site.hits.items() if p.startswith("/news/c")) == 6
    assert flight["max"] == 2  # never more than per_feed at once, and the bound is used
