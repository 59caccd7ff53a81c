"""Telegram channels and pages through the real watchers, pipeline and SQLite, served from 127.0.0.1.

The saved t.me/s/ pages and news pages (tests/fixtures) are served by pytest-httpserver; polling uses
``polling.telegram_web`` pointed at it. Each case checks what an operator or reader would see: the items
stored and queued, the backfill after downtime, and a clear per-source error in ``/status``.
"""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Response

from chat.commands import status
from core.config import BacklogPolicy, FeedConfig, PollingConfig, page_spec, telegram_spec, telegram_url
from rules import RuleSet, parse_rule_text
from service.pipeline import CycleReport, Pipeline
from store import Store
from tests.test_faults_http import CASES, HEALTHY_TITLE, RawServer, Servers, rss
from tests.test_faults_http import raw_server as raw_server
from tests.test_faults_http import unaccepting_port as unaccepting_port
from watchers import PollSettings, make_client
from watchers.sources import MAX_BACKFILL_PAGES

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"
NOW = datetime(2026, 11, 30, 14, 0, tzinfo=UTC)
RULES = textwrap.dedent(
    """\
    version: 1
    groups:
      DPRK: {aliases: [КНДР, северокорейских, North Korea, 북한]}
      RUSSIA: {aliases: [Россия, России, российскими, Russia, 러시아]}
    rules:
      - name: pair
        priority: instant
        all: [DPRK, RUSSIA]
    """
)
POLLING = PollingConfig(allow_private_urls=True, timeout=1.0, backlog=BacklogPolicy(max_items=100, max_age=None))
RU_PAGE = {"item": "div.newsitem", "title": "a.title", "link": "a.title", "summary": "p.lead", "date": ".date"}


def tme(name: str) -> bytes:
    return (FIXTURES / "tme" / f"{name}.html").read_bytes()


def page(name: str) -> bytes:
    return (FIXTURES / "pages" / f"{name}.html").read_bytes()


def channel(server: HTTPServer, name: str, lang: str = "ru") -> FeedConfig:
    web = server.url_for("").rstrip("/")
    return FeedConfig(telegram_url(name, web), f"@{name}", lang, 600, kind="telegram", spec=telegram_spec(name))


def page_source(url: str, selectors: dict[str, str], *, xpath: bool = False) -> FeedConfig:
    return FeedConfig(url, "page", "ru", 600, kind="page", spec=page_spec(selectors, xpath))


@pytest.fixture
def ruleset() -> RuleSet:
    return parse_rule_text(RULES, "test.yaml")


async def cycle(store: Store, ruleset: RuleSet, now: datetime) -> CycleReport:
    async with make_client(PollSettings.from_config(POLLING)) as client:
        return await Pipeline(store, client, lambda: ruleset, POLLING).run_cycle(now)


def queued(store: Store, now: datetime) -> list[str]:
    return [entry.item.link or "" for entry in store.pending_instant(now + timedelta(days=1))]


async def test_a_channel_post_about_a_tie_is_queued_and_others_are_only_seen(
    httpserver: HTTPServer, ruleset: RuleSet, tmp_path: Path
) -> None:
    httpserver.expect_request("/s/kursk_front").respond_with_data(tme("kursk_front"), content_type="text/html")
    with Store.open(tmp_path / "bot.sqlite3") as store:
        store.sync_feeds([channel(httpserver, "kursk_front")], NOW)
        store.upsert_subscription(1, NOW, mode="instant")
        report = await cycle(store, ruleset, NOW)
        assert (report.feeds_ok, report.new_items) == (1, 7)
        assert sorted(queued(store, NOW)) == ["https://t.me/kursk_front/4803", "https://t.me/kursk_front/4807"]
        feed = store.all_feeds()[0]
        assert (feed.kind, feed.failures, feed.state) == ("telegram", 0, '{"last_id": 4811}')
        again = await cycle(store, ruleset, NOW + timedelta(hours=1))
        assert again.new_items == 0, "the same posts are never new twice"


async def test_after_downtime_the_gap_is_filled_by_paging_back_with_before(
    httpserver: HTTPServer, ruleset: RuleSet, tmp_path: Path
) -> None:
    httpserver.expect_request("/s/kursk_front", query_string="before=4801").respond_with_data(
        tme("kursk_front_before_4801"), content_type="text/html"
    )
    httpserver.expect_request("/s/kursk_front", query_string="").respond_with_data(
        tme("kursk_front"), content_type="text/html"
    )
    with Store.open(tmp_path / "bot.sqlite3") as store:
        store.sync_feeds([channel(httpserver, "kursk_front")], NOW)
        store.upsert_subscription(1, NOW, mode="instant")
        feed = store.all_feeds()[0]
        # the bot last saw post 4796 before it went down: 4797..4811 are the gap
        store.commit_poll(
            feed.id,
            NOW,
            ok=True,
            etag=None,
            last_modified=None,
            error=None,
            next_poll_at=NOW,
            source_state='{"last_id": 4796}',
        )
        report = await cycle(store, ruleset, NOW)
        stored = {item.uid for item in store.recent_items(NOW - timedelta(days=1))}
        assert store.all_feeds()[0].state == '{"last_id": 4811}'
    assert [r.query_string.decode() for r, _ in httpserver.log] == ["", "before=4801"]
    assert {"t.me/kursk_front/4798", "t.me/kursk_front/4799", "t.me/kursk_front/4800"} <= stored, "the gap is filled"
    assert report.new_items == 7 + 5  # the page's 7 posts and the older page's 5 (its service message skipped)


async def test_backfill_is_bounded(httpserver: HTTPServer, ruleset: RuleSet, tmp_path: Path) -> None:
    httpserver.expect_request("/s/kursk_front").respond_with_data(tme("kursk_front"), content_type="text/html")
    with Store.open(tmp_path / "bot.sqlite3") as store:
        store.sync_feeds([channel(httpserver, "kursk_front")], NOW)
        feed = store.all_feeds()[0]
        store.commit_poll(
            feed.id,
            NOW,
            ok=True,
            etag=None,
            last_modified=None,
            error=None,
            next_poll_at=NOW,
            source_state='{"last_id": 10}',
        )
        # every before= page answers with the same page: the loop must stop, not spin
        report = await cycle(store, ruleset, NOW)
        assert report.feeds_ok == 1
        assert len(httpserver.log) <= 1 + MAX_BACKFILL_PAGES
        assert store.all_feeds()[0].state == '{"last_id": 4811}'


CHANNEL_ERRORS = {
    "private: t.me/s/ redirects to the contact page": (
        "secret_unit",
        "@secret_unit is not a public channel: t.me/s/secret_unit redirected to /secret_unit",
    ),
    "renamed: the posts belong to another username": ("old_front", "@old_front was renamed? the posts"),
    "empty channel": ("quiet_channel", "@quiet_channel has no posts (empty channel)"),
    "not a preview at all": ("plain_page", "@plain_page has no public preview"),
}


@pytest.mark.parametrize("case", list(CHANNEL_ERRORS.values()), ids=list(CHANNEL_ERRORS))
async def test_a_channel_that_cannot_be_read_is_a_clear_per_source_error_beside_a_healthy_one(
    case: tuple[str, str], httpserver: HTTPServer, ruleset: RuleSet, tmp_path: Path
) -> None:
    name, error = case
    httpserver.expect_request("/s/secret_unit").respond_with_data("", status=302, headers={"Location": "/secret_unit"})
    httpserver.expect_request("/secret_unit").respond_with_data(tme("private_contact_page"), content_type="text/html")
    httpserver.expect_request("/s/old_front").respond_with_data(tme("renamed"), content_type="text/html")
    httpserver.expect_request("/s/quiet_channel").respond_with_data(tme("empty"), content_type="text/html")
    httpserver.expect_request("/s/plain_page").respond_with_data(
        "<html><body>hi</body></html>", content_type="text/html"
    )
    httpserver.expect_request("/s/nk_watch").respond_with_data(tme("nk_watch"), content_type="text/html")
    with Store.open(tmp_path / "bot.sqlite3") as store:
        store.sync_feeds([channel(httpserver, name), channel(httpserver, "nk_watch", "en")], NOW)
        store.upsert_subscription(1, NOW, mode="instant")
        report = await cycle(store, ruleset, NOW)
        assert (report.feeds_ok, report.feeds_failed) == (1, 1)
        broken = next(f for f in store.all_feeds() if f.name == f"@{name}")
        assert broken.failures == 1 and broken.last_error is not None and broken.last_error.startswith(error)
        assert f"@{name}" in status(store, NOW)
        assert "https://t.me/nk_watch/1201" in queued(store, NOW)


async def test_a_page_that_changes_layout_is_an_error_naming_the_selector_and_the_last_count(
    httpserver: HTTPServer, ruleset: RuleSet, tmp_path: Path
) -> None:
    bodies = [page("mil_ru"), page("mil_ru_changed")]
    httpserver.expect_request("/news").respond_with_handler(lambda _: Response(bodies[0], content_type="text/html"))
    url = httpserver.url_for("/news")
    with Store.open(tmp_path / "bot.sqlite3") as store:
        store.sync_feeds([page_source(url, RU_PAGE)], NOW)
        store.upsert_subscription(1, NOW, mode="instant")
        first = await cycle(store, ruleset, NOW)
        assert (first.feeds_ok, first.new_items) == (1, 3)
        assert queued(store, NOW) == [f"{httpserver.url_for('/news/more.htm')}?id=12539871@egNews"]
        bodies.pop(0)  # the site is redesigned
        later = NOW + timedelta(hours=1)
        second = await cycle(store, ruleset, later)
        assert second.feeds_failed == 1
        feed = store.all_feeds()[0]
        assert feed.last_error == "layout changed? selector 'div.newsitem' matched 0 elements, matched 4 last time"
        assert "layout changed?" in status(store, later)
        third = await cycle(store, ruleset, feed.next_poll_at or later)
        assert third.feeds_failed == 1 and store.all_feeds()[0].failures == 2, "it stays an error, not an empty feed"


async def test_a_page_source_that_never_matched_says_so(
    httpserver: HTTPServer, ruleset: RuleSet, tmp_path: Path
) -> None:
    httpserver.expect_request("/ko").respond_with_data(page("kcna_ko"), content_type="text/html")
    with Store.open(tmp_path / "bot.sqlite3") as store:
        store.sync_feeds([page_source(httpserver.url_for("/ko"), RU_PAGE)], NOW)
        await cycle(store, ruleset, NOW)
        assert store.all_feeds()[0].last_error == "selector 'div.newsitem' matched 0 elements on the page"


async def test_pages_in_three_languages_with_css_and_xpath(
    httpserver: HTTPServer, ruleset: RuleSet, tmp_path: Path
) -> None:
    httpserver.expect_request("/ru").respond_with_data(page("mil_ru"), content_type="text/html")
    httpserver.expect_request("/en").respond_with_data(page("think_tank_en"), content_type="text/html; charset=utf-8")
    httpserver.expect_request("/ko").respond_with_data(page("kcna_ko"), content_type="text/html")
    sources = [
        page_source(httpserver.url_for("/ru"), RU_PAGE),
        page_source(
            httpserver.url_for("/en"), {"item": "article.card", "title": "h2", "link": "h2 a", "summary": ".excerpt"}
        ),
        page_source(
            httpserver.url_for("/ko"),
            {"item": "//li", "title": ".//strong", "link": "string(./a/@href)", "summary": ".//span[@class='txt']"},
            xpath=True,
        ),
    ]
    with Store.open(tmp_path / "bot.sqlite3") as store:
        store.sync_feeds(sources, NOW)
        store.upsert_subscription(1, NOW, mode="instant")
        report = await cycle(store, ruleset, NOW)
        assert (report.feeds_ok, report.new_items) == (3, 9)
        links = queued(store, NOW)
    assert "https://kdr.example.org/analysis/2026/12/pyongyang-moscow-shells" in links
    assert f"{httpserver.url_for('/news/view.do')}?seq=88101" in links


# -- the HTTP fault matrix, for each new kind -------------------------------------------------------------

FAULTS = [
    "connect-timeout",
    "read-timeout-slow-drip",
    "read-timeout-no-answer",
    "connection-reset",
    "404",
    "410-gone",
    "429-retry-after-seconds",
    "503-retry-after-date",
    "redirect-loop",
    "redirect-to-file",
    "50MB-declared",
    "50MB-chunked",
    "gzip-bomb",
    "empty-200",
    "html-full-of-scripts",
]
SCRIPTS = (
    "<html><head>"
    + "<script>var w = '<div class=\\'tgme_widget_message\\' data-post=\\'x/1\\'>';</script>" * 20000
    + "</head><body><div id='app'></div></body></html>"
).encode()
KIND_ERRORS = {  # what a fetched-fine body that is not a source says, per kind
    ("telegram", "empty-200"): "@faulty_chan has no public preview",
    ("telegram", "html-full-of-scripts"): "@faulty_chan has no public preview",
    ("page", "empty-200"): "selector 'div.newsitem' matched 0 elements",
    ("page", "html-full-of-scripts"): "selector 'div.newsitem' matched 0 elements",
}


def fault_url(name: str, servers: Servers) -> str:
    if name == "html-full-of-scripts":
        servers.http.expect_request("/scripts").respond_with_data(SCRIPTS, content_type="text/html")
        return servers.http.url_for("/scripts")
    if name == "empty-200":
        servers.http.expect_request("/empty").respond_with_data(b"", content_type="text/html")
        return servers.http.url_for("/empty")
    return CASES[name].setup(servers)


@pytest.mark.parametrize("kind", ["telegram", "page"])
@pytest.mark.parametrize("fault", FAULTS)
async def test_http_faults_hit_only_the_faulty_source(
    kind: str,
    fault: str,
    httpserver: HTTPServer,
    raw_server: RawServer,
    unaccepting_port: int,
    ruleset: RuleSet,
    tmp_path: Path,
) -> None:
    httpserver.expect_request("/healthy").respond_with_data(
        rss("h1", HEALTHY_TITLE), content_type="application/rss+xml"
    )
    url = fault_url(fault, Servers(httpserver, raw_server, unaccepting_port))
    spec = telegram_spec("faulty_chan") if kind == "telegram" else page_spec(RU_PAGE, False)
    faulty = FeedConfig(url, "Faulty", "ru", 600, kind=kind, spec=spec)  # type: ignore[arg-type]
    case = CASES.get(fault)
    expected = KIND_ERRORS.get((kind, fault)) or (case.error if case else None)
    assert expected
    with Store.open(tmp_path / "bot.sqlite3") as store:
        store.sync_feeds([FeedConfig(httpserver.url_for("/healthy"), "Healthy", "en", 600), faulty], NOW)
        store.upsert_subscription(1, NOW, mode="instant")
        report = await cycle(store, ruleset, NOW)
        assert [e.item.title for e in store.pending_instant(NOW)] == [HEALTHY_TITLE]
        assert (report.feeds_ok, report.feeds_failed) == (1, 1)
        feed = store.feed_by_url(url)
        assert feed is not None and feed.failures == 1 and feed.next_poll_at is not None
        assert feed.last_error is not None and expected in feed.last_error
        wait = max(600, case.retry_after if case else 0)
        assert feed.next_poll_at >= NOW + timedelta(seconds=wait), "backed off, never before Retry-After"
        assert "Faulty" in status(store, NOW)
        if case is not None and case.gone:
            assert url not in [f.url for f in store.due_feeds(NOW + timedelta(days=2))], "410: retired"


# -- end to end: config and chat, through the running bot and the Bot API emulator ----------------------

TOKEN = "5353:SOURCES-token"
ADMIN, READER = 42, 100


async def test_a_channel_post_about_a_tie_becomes_an_alert_and_admins_add_sources_from_chat(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    from service.app import run_poll
    from tests.running import running_app
    from tests.test_chat_handlers import say
    from tgemu import BotApiEmulator

    httpserver.expect_request("/s/kursk_front").respond_with_data(tme("kursk_front"), content_type="text/html")
    httpserver.expect_request("/s/nk_watch").respond_with_data(tme("nk_watch"), content_type="text/html")
    httpserver.expect_request("/s/secret_unit").respond_with_data("", status=302, headers={"Location": "/secret_unit"})
    httpserver.expect_request("/secret_unit").respond_with_data(tme("private_contact_page"), content_type="text/html")
    httpserver.expect_request("/ko").respond_with_data(page("kcna_ko"), content_type="text/html")
    with BotApiEmulator(TOKEN) as emu:
        for chat in (ADMIN, READER):
            emu.add_chat(chat, "private")
        config = tmp_path / "config.yaml"
        config.write_text(
            f"telegram: {{base_url: '{emu.base_url}'}}\nadmins: [{ADMIN}]\n"
            f"storage: {{path: '{tmp_path / 'bot.sqlite3'}'}}\nrules: {{files: ['{REPO / 'rules'}/*.yaml']}}\n"
            "polling: {allow_private_urls: true, timeout: 5, backlog: {max_items: 10, max_age: null}, "
            f"telegram_web: '{httpserver.url_for('').rstrip('/')}'}}\n"
            "feeds:\n  - {telegram: '@kursk_front', lang: ru}\n"
            f"subscriptions:\n  - {{chat: {READER}, mode: instant}}\n",
            encoding="utf-8",
        )
        async with running_app(config, TOKEN, NOW) as (app, state):
            await run_poll(app)
            alerts = [m.text for m in emu.sent(READER)]
            assert any("Военнослужащие КНДР продолжают работу в Курской области" in a for a in alerts), alerts
            assert any('href="https://t.me/kursk_front/4803"' in a for a in alerts), "the alert links to the post"
            assert "Added <b>@nk_watch</b> (3 items now)" in await say(emu, ADMIN, ADMIN, "/feed_add @nk_watch")
            refused = await say(emu, ADMIN, ADMIN, "/feed_add t.me/secret_unit")
            assert "Not added: @secret_unit is not a public channel" in refused
            ko = httpserver.url_for("/ko")
            bad = await say(emu, ADMIN, ADMIN, f"/feed_add {ko} item=li title=strong")
            assert "link selector missing" in bad or "link: missing" in bad
            added = await say(emu, ADMIN, ADMIN, f'/feed_add {ko} item="ul.board_list > li" title=strong link=a 국방부')
            assert "Added <b>국방부</b> (3 items now)" in added
            (source,) = [f for f in state.store.all_feeds(enabled_only=True) if f.kind == "page"]
            assert '"item": "ul.board_list > li"' in source.spec
            listed = await say(emu, ADMIN, ADMIN, "/feeds")
            assert "@nk_watch" in listed and "국방부" in listed


async def test_a_page_with_validators_costs_a_304_on_the_next_poll(
    httpserver: HTTPServer, ruleset: RuleSet, tmp_path: Path
) -> None:
    def answer(request: object) -> Response:
        if getattr(request, "headers", {}).get("If-None-Match") == '"v1"':
            return Response(status=304, headers={"ETag": '"v1"'})
        return Response(page("mil_ru"), content_type="text/html", headers={"ETag": '"v1"'})

    httpserver.expect_request("/news").respond_with_handler(answer)
    with Store.open(tmp_path / "bot.sqlite3") as store:
        store.sync_feeds([page_source(httpserver.url_for("/news"), RU_PAGE)], NOW)
        assert (await cycle(store, ruleset, NOW)).feeds_ok == 1
        later = await cycle(store, ruleset, NOW + timedelta(hours=1))
        assert (later.feeds_not_modified, later.feeds_failed) == (1, 0)
        assert store.all_feeds()[0].state == '{"matched": 4}', "a 304 keeps the last count"


async def test_the_private_address_guard_covers_channels_and_pages(httpserver: HTTPServer, tmp_path: Path) -> None:
    httpserver.expect_request("/s/kursk_front").respond_with_data(tme("kursk_front"), content_type="text/html")
    guarded = PollingConfig(timeout=1.0)  # allow_private_urls off: 127.0.0.1 is refused before connecting
    with Store.open(tmp_path / "bot.sqlite3") as store:
        store.sync_feeds([channel(httpserver, "kursk_front"), page_source(httpserver.url_for("/news"), RU_PAGE)], NOW)
        async with make_client(PollSettings.from_config(guarded)) as client:
            rules = parse_rule_text(RULES, "t.yaml")
            report = await Pipeline(store, client, lambda: rules, guarded).run_cycle(NOW)
        assert report.feeds_failed == 2 and not httpserver.log
        assert all("private or local address" in (f.last_error or "") for f in store.all_feeds())
