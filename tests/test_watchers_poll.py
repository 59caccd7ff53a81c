"""Polling many feeds: isolation, concurrency and back-off."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from core.models import Feed
from watchers import PollSettings, make_client, next_poll_at, poll_feeds

RSS = (Path(__file__).parent / "fixtures" / "feeds" / "rss_entities.xml").read_bytes()
NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def feed(url: str, failures: int = 0, interval: int = 600) -> Feed:
    return Feed(id=1, url=url, name="f", lang=None, interval=interval, failures=failures)


@pytest.fixture
def silent_server() -> Iterator[str]:
    """Accepts connections and never answers: a feed that hangs. Its own socket, because
    pytest-httpserver serves one request at a time and a sleeping handler would stall every test."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    sock.settimeout(0.2)
    stop = threading.Event()
    held: list[socket.socket] = []

    def accept() -> None:
        while not stop.is_set():
            try:
                held.append(sock.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{sock.getsockname()[1]}/slow"
    stop.set()
    thread.join(timeout=5)
    for conn in held:
        conn.close()
    sock.close()


async def test_broken_and_slow_feeds_do_not_break_or_delay_the_others(
    httpserver: HTTPServer, silent_server: str
) -> None:
    httpserver.expect_request("/good").respond_with_data(RSS, content_type="application/rss+xml")
    httpserver.expect_request("/html").respond_with_data("<html><body>hi</body></html>", content_type="text/html")
    httpserver.expect_request("/500").respond_with_data("boom", status=500)
    settings = PollSettings(timeout=1.0, concurrency=4, allow_private_urls=True)
    feeds = [feed(httpserver.url_for(p)) for p in ("/good", "/html", "/500")] + [feed(silent_server)]
    async with make_client(settings) as client:
        started = time.monotonic()
        polls = await poll_feeds(client, feeds, settings, NOW)
        elapsed = time.monotonic() - started
    good, html, failed, slow_poll = polls
    assert good.outcome == "ok" and len(good.items) == 3
    assert html.outcome == "error" and html.error and "not a feed" in html.error
    assert failed.error == "HTTP 500"
    assert slow_poll.error == "timed out after 1s"
    assert good.elapsed < 1.0, "the good feed was not held up by the hanging one"
    assert elapsed < 4.0, "the hanging feed was cut at its deadline"


@pytest.mark.parametrize(
    ("name", "failures", "retry_after", "low", "high"),
    [
        ("healthy", 0, None, 600, 600),
        ("first failure waits one interval", 1, None, 600, 660),
        ("doubles", 3, None, 2400, 2640),
        ("capped at backoff_max", 12, None, 3600, 3960),
        ("Retry-After wins when longer", 1, 5000, 5000, 5000),
    ],
)
def test_backoff(name: str, failures: int, retry_after: int | None, low: int, high: int) -> None:
    when = next_poll_at(
        feed("https://x.example/rss", failures), NOW, ok=failures == 0, retry_after=retry_after, backoff_max=3600
    )
    assert timedelta(seconds=low) <= when - NOW <= timedelta(seconds=high), name


def test_backoff_jitter_differs_between_feeds() -> None:
    a = next_poll_at(feed("https://a.example/rss", 4), NOW, ok=False, retry_after=None, backoff_max=86400)
    b = next_poll_at(feed("https://b.example/rss", 4), NOW, ok=False, retry_after=None, backoff_max=86400)
    assert a != b


async def test_results_stream_with_back_pressure_never_the_whole_cycle_held(
    httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A slow consumer (matching, commits) holds at most ~2 × concurrency finished feeds, not all of them."""
    import asyncio

    import watchers.poll
    from watchers import iter_polls

    httpserver.expect_request("/f").respond_with_data(RSS, content_type="application/rss+xml")
    done = {"fetched": 0}
    real = watchers.poll.poll_one

    async def counting(*args: object, **kwargs: object) -> object:
        poll = await real(*args, **kwargs)  # type: ignore[arg-type]
        done["fetched"] += 1
        return poll

    monkeypatch.setattr(watchers.poll, "poll_one", counting)
    settings = PollSettings(timeout=2.0, concurrency=2, allow_private_urls=True)
    feeds = [feed(httpserver.url_for("/f") + f"?n={n}") for n in range(12)]
    held, consumed = [], 0
    async with make_client(settings) as client:
        async for poll in iter_polls(client, feeds, settings):
            assert poll.outcome == "ok"
            consumed += 1
            held.append(done["fetched"] - consumed + 1)
            await asyncio.sleep(0.05)  # a slow consumer
    assert consumed == 12
    assert max(held) <= 2 * settings.concurrency + 1, held
