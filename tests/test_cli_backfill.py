"""`bot.py backfill`: every enabled feed polled once now through the pipeline, against real local feeds."""

from __future__ import annotations

import io
import os
import sqlite3
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape

from pytest_httpserver import HTTPServer

from cli.backfill import run_backfill
from rules import load_rules
from service.pipeline import Pipeline
from store import Store
from watchers import FeedPoll, PollSettings, make_client

REPO = Path(__file__).resolve().parents[1]
MATCHING = (
    (
        "North Korea ships more missiles to Russia, intelligence says",
        "Pyongyang has delivered ballistic missiles and artillery shells to Russian forces.",
    ),
    (
        "Северокорейские военные прибыли в Курскую область",
        "Войска КНДР направлены на помощь российской армии, сообщила разведка.",
    ),
)
NEAR_MISS = ("Сборная России по хоккею выиграла товарищеский матч", "Матч прошёл в Москве.")


def rss(tag: str) -> bytes:
    """Three items (two about DPRK–Russia military ties, newest first, and one near miss), ids unique per tag."""
    now = datetime.now(UTC)
    entries = "".join(
        f"<item><title>{escape(title)}</title><description>{escape(summary)}</description>"
        f"<link>https://news.example/{tag}/{n}</link><guid>{tag}-{n}</guid>"
        f"<pubDate>{format_datetime(now - timedelta(hours=n))}</pubDate></item>"
        for n, (title, summary) in enumerate((*MATCHING, NEAR_MISS))
    )
    head = '<?xml version="1.0" encoding="utf-8"?><rss version="2.0">'
    return f"{head}<channel><title>{tag}</title>{entries}</channel></rss>".encode()


def write_config(tmp_path: Path, *urls: str) -> Path:
    feeds = "".join(f"  - {{url: '{url}', name: 'Feed {n}', lang: ru, interval: 3600}}\n" for n, url in enumerate(urls))
    path = tmp_path / "config.yaml"
    path.write_text(
        textwrap.dedent(
            f"""\
            storage: {{path: '{tmp_path / "bot.sqlite3"}'}}
            rules: {{files: ['{REPO / "rules"}/*.yaml']}}
            polling: {{allow_private_urls: true, timeout: 5, backlog: {{max_items: 1, max_age: null}}}}
            subscriptions:
              - {{chat: 101, mode: digest}}
            feeds:
            """
        )
        + feeds,
        encoding="utf-8",
    )
    return path


def counts(tmp_path: Path) -> tuple[int, int]:
    """(items stored, outbox rows) in the bot's SQLite file."""
    with sqlite3.connect(tmp_path / "bot.sqlite3") as conn:
        items = conn.execute("SELECT COUNT(*) FROM items").fetchone()[0]
        outbox = conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
    return int(items), int(outbox)


def backfill(config: Path, *, progress: bool = True, errors: io.StringIO | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), errors if errors is not None else io.StringIO()
    code = run_backfill(str(config), progress=progress, out=out, errors=err)
    return code, out.getvalue(), err.getvalue()


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_backfill_polls_every_feed_even_when_none_is_due_and_never_stores_twice(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    # /a answers 304 to its own ETag; /b has no validators, so its second body is all seen items.
    httpserver.expect_request("/a.xml", headers={"If-None-Match": '"a1"'}).respond_with_data("", status=304)
    httpserver.expect_request("/a.xml").respond_with_data(
        rss("a"), content_type="application/rss+xml", headers={"ETag": '"a1"'}
    )
    httpserver.expect_request("/b.xml").respond_with_data(rss("b"), content_type="application/rss+xml")
    config = write_config(tmp_path, httpserver.url_for("/a.xml"), httpserver.url_for("/b.xml"))

    code, out, err = backfill(config)
    # backlog max_items 1: each new feed's newest item (a match) is queued, the rest only marked seen
    assert (code, out, err) == (
        0,
        "polled 2 feeds: 2 ok, 0 not modified, 0 failed; 6 new items, 4 matched, 2 queued\n",
        "",
    )
    assert counts(tmp_path) == (6, 2)
    with Store.open(tmp_path / "bot.sqlite3") as store:
        assert store.due_feeds(datetime.now(UTC)) == []  # the bot would not poll them for an hour
        sub = store.subscription(101)
        assert sub is not None
        queued = store.digest_entries(sub.id, datetime.now(UTC) + timedelta(seconds=1))
        assert sorted(e.item.uid for e in queued) == ["a-0", "b-0"]  # waiting for `run`: nothing was sent

    requests = len(httpserver.log)
    code, out, err = backfill(config)
    assert len(httpserver.log) == requests + 2  # polled again although neither feed is due
    assert (code, out, err) == (
        0,
        "polled 2 feeds: 1 ok, 1 not modified, 0 failed; 0 new items, 0 matched, 0 queued\n",
        "",
    )
    assert counts(tmp_path) == (6, 2)


def test_a_failing_feed_is_named_and_exits_1_while_the_others_are_stored(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    httpserver.expect_request("/ok.xml").respond_with_data(rss("ok"), content_type="application/rss+xml")
    httpserver.expect_request("/broken.xml").respond_with_data("oops", status=500)
    httpserver.expect_request("/page.xml").respond_with_data("<html><body>hi</body></html>", content_type="text/html")
    httpserver.expect_request("/gone.xml").respond_with_data("gone for good", status=410)
    ok, broken, page, gone = (httpserver.url_for(p) for p in ("/ok.xml", "/broken.xml", "/page.xml", "/gone.xml"))
    config = write_config(tmp_path, ok, broken, page, gone)

    code, out, err = backfill(config)
    assert code == 1
    assert out == "polled 4 feeds: 1 ok, 0 not modified, 3 failed; 3 new items, 2 matched, 1 queued\n"
    failures = err.splitlines()
    assert sorted(line.split(": ")[1] for line in failures) == sorted([broken, page, gone])
    assert f"failed: {broken}: HTTP 500" in failures
    assert counts(tmp_path) == (3, 1)

    # the 410 feed is retired, so the next backfill skips it (as the bot does) and says so
    code, out, err = backfill(config)
    assert code == 1
    assert out == "polled 3 feeds: 1 ok, 0 not modified, 2 failed; 0 new items, 0 matched, 0 queued\n"
    assert "skipped 1 retired feed(s)" in err and gone not in err


async def test_the_progress_callback_hears_each_feed_once_and_due_only_stays_the_default(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    httpserver.expect_request("/a.xml").respond_with_data(rss("a"), content_type="application/rss+xml")
    httpserver.expect_request("/b.xml").respond_with_data(rss("b"), content_type="application/rss+xml")
    httpserver.expect_request("/bad.xml").respond_with_data("oops", status=503)
    now = datetime.now(UTC)
    urls = [httpserver.url_for(p) for p in ("/a.xml", "/b.xml", "/bad.xml")]
    ruleset = load_rules(sorted((REPO / "rules").glob("*.yaml")))
    config = write_config(tmp_path, *urls)
    from core.config import load_config

    polling = load_config(str(config)).polling
    with Store.open(tmp_path / "bot.sqlite3") as store:
        store.sync_feeds(load_config(str(config)).feeds, now)
        async with make_client(PollSettings.from_config(polling)) as client:
            pipeline = Pipeline(store, client, lambda: ruleset, polling)
            heard: list[FeedPoll] = []
            report = await pipeline.run_cycle(now, on_feed_done=heard.append)  # all three are new, so due
            assert sorted(p.feed.url for p in heard) == sorted(urls)
            assert {p.feed.url: p.outcome for p in heard}[urls[2]] == "error"
            assert (report.feeds_due, report.feeds_ok, report.feeds_failed) == (3, 2, 1)

            heard.clear()
            later = now + timedelta(minutes=1)
            assert (await pipeline.run_cycle(later, on_feed_done=heard.append)).feeds_due == 0
            assert heard == []  # nothing is due: without feeds= only due feeds are polled

            report = await pipeline.run_cycle(later, feeds=store.all_feeds(), on_feed_done=heard.append)
            assert sorted(p.feed.url for p in heard) == sorted(urls)
            assert (report.feeds_due, report.new_items) == (3, 0)


def test_the_bar_is_drawn_on_a_terminal_only_and_stdout_is_the_summary(httpserver: HTTPServer, tmp_path: Path) -> None:
    httpserver.expect_request("/a.xml").respond_with_data(rss("a"), content_type="application/rss+xml")
    httpserver.expect_request("/bad.xml").respond_with_data("oops", status=500)
    config = write_config(tmp_path, httpserver.url_for("/a.xml"), httpserver.url_for("/bad.xml"))
    summary = "polled 2 feeds: 1 ok, 0 not modified, 1 failed; 3 new items, 2 matched, 1 queued\n"
    failure = f"failed: {httpserver.url_for('/bad.xml')}: HTTP 500\n"

    tty = Tty()
    code, out, err = backfill(config, errors=tty)
    assert (code, out) == (1, summary)
    assert "backfill" in err and "2/2" in err and "failed=1" in err and "\r" in err
    assert err.endswith(failure)

    code, out, err = backfill(config)  # stderr is not a terminal: only the failing feed there
    assert (code, err) == (1, failure)
    assert out == "polled 2 feeds: 1 ok, 0 not modified, 1 failed; 0 new items, 0 matched, 0 queued\n"

    code, out, err = backfill(config, progress=False, errors=Tty())  # --no-progress on a terminal
    assert err == failure


def test_cli_backfill_prints_the_summary_and_stays_quiet_on_stderr(httpserver: HTTPServer, tmp_path: Path) -> None:
    httpserver.expect_request("/a.xml").respond_with_data(rss("a"), content_type="application/rss+xml")
    config = write_config(tmp_path, httpserver.url_for("/a.xml"))
    env = {k: v for k, v in os.environ.items() if k != "TELEGRAM_BOT_TOKEN"}
    result = subprocess.run(
        [sys.executable, str(REPO / "bot.py"), "--config", str(config), "backfill"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "polled 1 feed: 1 ok, 0 not modified, 0 failed; 3 new items, 2 matched, 1 queued\n"
    assert result.stderr == ""

    (tmp_path / "broken.yaml").write_text("polling: {interval: soon}\n", encoding="utf-8")
    result = subprocess.run(
        [sys.executable, str(REPO / "bot.py"), "--config", str(tmp_path / "broken.yaml"), "backfill", "--no-progress"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env=env,
    )
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.startswith("configuration: ")
