"""Fetching over real HTTP on 127.0.0.1: validators, caps, redirects, timeouts, failures."""

from __future__ import annotations

import gzip
import socket
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from watchers.fetch import PollSettings, check_url_allowed, fetch, make_client, parse_retry_after

RSS = (Path(__file__).parent / "fixtures" / "feeds" / "rss_entities.xml").read_bytes()
SETTINGS = PollSettings(timeout=2.0, max_bytes=200_000, max_redirects=3, allow_private_urls=True)


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with make_client(SETTINGS) as c:
        yield c


def conditional(etag: str | None = None, last_modified: str | None = None):  # type: ignore[no-untyped-def]
    def handler(request: Request) -> Response:
        if etag and request.headers.get("If-None-Match") == etag:
            return Response(status=304)
        if last_modified and request.headers.get("If-Modified-Since") == last_modified:
            return Response(status=304)
        headers = {}
        if etag:
            headers["ETag"] = etag
        if last_modified:
            headers["Last-Modified"] = last_modified
        return Response(RSS, content_type="application/rss+xml", headers=headers)

    return handler


async def test_etag_round_trip_gives_304(httpserver: HTTPServer, client: httpx.AsyncClient) -> None:
    httpserver.expect_request("/feed").respond_with_handler(conditional(etag='"v1"'))
    first = await fetch(client, httpserver.url_for("/feed"), SETTINGS)
    assert first.outcome == "ok" and first.etag == '"v1"' and first.body == RSS
    second = await fetch(client, httpserver.url_for("/feed"), SETTINGS, etag=first.etag)
    assert second.outcome == "not_modified" and second.body == b""
    assert second.etag == '"v1"'


async def test_last_modified_round_trip_gives_304(httpserver: HTTPServer, client: httpx.AsyncClient) -> None:
    stamp = "Tue, 05 Nov 2024 10:00:00 GMT"
    httpserver.expect_request("/feed").respond_with_handler(conditional(last_modified=stamp))
    first = await fetch(client, httpserver.url_for("/feed"), SETTINGS)
    second = await fetch(client, httpserver.url_for("/feed"), SETTINGS, last_modified=first.last_modified)
    assert (first.last_modified, second.outcome) == (stamp, "not_modified")


@pytest.mark.parametrize(
    ("status", "headers", "error", "gone", "retry_after"),
    [
        ("404", {}, "HTTP 404", False, None),
        ("410", {}, "HTTP 410 Gone", True, None),
        ("429", {"Retry-After": "120"}, "HTTP 429", False, 120),
        ("503", {"Retry-After": "30"}, "HTTP 503", False, 30),
        ("500", {}, "HTTP 500", False, None),
    ],
)
async def test_http_errors(
    httpserver: HTTPServer,
    client: httpx.AsyncClient,
    status: str,
    headers: dict[str, str],
    error: str,
    gone: bool,
    retry_after: int | None,
) -> None:
    httpserver.expect_request("/feed").respond_with_data("no", status=int(status), headers=headers)
    result = await fetch(client, httpserver.url_for("/feed"), SETTINGS)
    assert result.outcome == "error"
    assert result.error and result.error.startswith(error)
    assert (result.gone, result.retry_after) == (gone, retry_after)


async def test_size_cap_by_content_length_and_by_stream(httpserver: HTTPServer, client: httpx.AsyncClient) -> None:
    big = b"x" * (SETTINGS.max_bytes + 1)
    httpserver.expect_request("/declared").respond_with_data(big)
    result = await fetch(client, httpserver.url_for("/declared"), SETTINGS)
    assert result.error and "Content-Length" in result.error

    def chunked(_: Request) -> Response:
        return Response((b"y" * 10_000 for _ in range(30)), content_type="application/xml")  # no length

    httpserver.expect_request("/streamed").respond_with_handler(chunked)
    result = await fetch(client, httpserver.url_for("/streamed"), SETTINGS)
    assert result.error == f"body over {SETTINGS.max_bytes} bytes"


async def test_gzip_body_is_decoded_and_gzip_bomb_refused(httpserver: HTTPServer, client: httpx.AsyncClient) -> None:
    httpserver.expect_request("/gz").respond_with_data(gzip.compress(RSS), headers={"Content-Encoding": "gzip"})
    result = await fetch(client, httpserver.url_for("/gz"), SETTINGS)
    assert result.outcome == "ok" and result.body == RSS
    bomb = gzip.compress(b"\0" * 20_000_000)  # ~20 KB on the wire, 20 MB decoded
    assert len(bomb) < SETTINGS.max_bytes
    httpserver.expect_request("/bomb").respond_with_data(bomb, headers={"Content-Encoding": "gzip"})
    result = await fetch(client, httpserver.url_for("/bomb"), SETTINGS)
    assert result.error == f"body over {SETTINGS.max_bytes} bytes"


async def test_redirects_followed_and_bounded(httpserver: HTTPServer, client: httpx.AsyncClient) -> None:
    httpserver.expect_request("/old").respond_with_data("", status=301, headers={"Location": "/new"})
    httpserver.expect_request("/new").respond_with_data(RSS)
    result = await fetch(client, httpserver.url_for("/old"), SETTINGS)
    assert result.outcome == "ok" and result.final_url == httpserver.url_for("/new")

    httpserver.expect_request("/a").respond_with_data("", status=302, headers={"Location": "/b"})
    httpserver.expect_request("/b").respond_with_data("", status=302, headers={"Location": "/a"})
    assert (await fetch(client, httpserver.url_for("/a"), SETTINGS)).error == "redirect loop"

    for i in range(6):
        httpserver.expect_request(f"/hop{i}").respond_with_data("", status=302, headers={"Location": f"/hop{i + 1}"})
    result = await fetch(client, httpserver.url_for("/hop0"), SETTINGS)
    assert result.error == "more than 3 redirects"

    httpserver.expect_request("/ftp").respond_with_data("", status=302, headers={"Location": "ftp://x.example/f"})
    result = await fetch(client, httpserver.url_for("/ftp"), SETTINGS)
    assert result.error == "redirect to unsupported scheme 'ftp' refused"


@pytest.fixture
def raw_server() -> Iterator[tuple[str, dict[str, str]]]:
    """A socket server for what HTTP libraries will not do: drip a body slowly, reset the connection."""
    behaviour = {"mode": "drip"}
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    sock.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except TimeoutError:
                continue
            with conn:
                try:
                    conn.recv(65536)
                    if behaviour["mode"] == "reset":
                        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                        continue
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\n\r\n<rss>")
                    for _ in range(50):  # each byte arrives before the read timeout, the whole never does
                        if stop.is_set():
                            break
                        time.sleep(0.5)
                        conn.sendall(b" ")
                except OSError:
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{sock.getsockname()[1]}/feed", behaviour
    stop.set()
    thread.join(timeout=5)
    sock.close()


async def test_slow_drip_body_hits_the_whole_fetch_deadline(raw_server: tuple[str, dict[str, str]]) -> None:
    url, _ = raw_server
    settings = PollSettings(timeout=1.0, allow_private_urls=True)
    async with make_client(settings) as c:
        started = time.monotonic()
        result = await fetch(c, url, settings)
    assert result.error == "timed out after 1s"
    assert time.monotonic() - started < 4


async def test_connection_reset_is_a_clear_error(
    raw_server: tuple[str, dict[str, str]], client: httpx.AsyncClient
) -> None:
    url, behaviour = raw_server
    behaviour["mode"] = "reset"
    result = await fetch(client, url, SETTINGS)
    assert result.outcome == "error" and result.error and result.error.startswith("connection failed")


async def test_file_url_and_not_modified_by_mtime(tmp_path: Path, client: httpx.AsyncClient) -> None:
    path = tmp_path / "feed.xml"
    path.write_bytes(RSS)
    first = await fetch(client, path.as_uri(), SETTINGS)
    assert first.outcome == "ok" and first.body == RSS
    second = await fetch(client, path.as_uri(), SETTINGS, last_modified=first.last_modified)
    assert second.outcome == "not_modified"
    refused = await fetch(client, path.as_uri(), PollSettings(allow_private_urls=False))
    assert refused.error and "file:// feeds are not allowed" in refused.error


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("http://127.0.0.1/feed", False),
        ("http://10.1.2.3/feed", False),
        ("http://169.254.169.254/latest/meta-data", False),
        ("http://[::1]/feed", False),
        ("http://localhost/feed", False),
        ("http://93.184.216.34/feed", True),
        ("gopher://example.org/", False),
    ],
)
async def test_private_addresses_refused_unless_allowed(url: str, allowed: bool) -> None:
    assert (await check_url_allowed(url, allow_private=False) is None) == allowed
    if url.startswith("http"):
        assert await check_url_allowed(url, allow_private=True) is None


def test_retry_after_forms() -> None:
    assert parse_retry_after("120") == 120
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0  # in the past
    assert parse_retry_after("soon") is None


async def test_a_name_that_rebinds_to_a_private_address_is_refused_at_connect(
    httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DNS rebinding: the name looked public when checked, then connects to 127.0.0.1. The connection's
    real peer address is checked too, so nothing is fetched."""
    httpserver.expect_request("/feed").respond_with_data(RSS, content_type="application/rss+xml")
    url = httpserver.url_for("/feed").replace("localhost", "127.0.0.1")

    async def looks_public(url: str, allow_private: bool) -> None:
        return None

    monkeypatch.setattr(sys.modules["watchers.fetch"], "check_url_allowed", looks_public)
    guarded = PollSettings(timeout=2.0, allow_private_urls=False)
    async with make_client(guarded) as c:
        result = await fetch(c, url, guarded)
    assert result.outcome == "error"
    assert result.error is not None and "private or local address (127.0.0.1); refused" in result.error
    assert httpserver.log == [], "the request never reached the server"
    async with make_client(SETTINGS) as c:  # allowed in config (tests, the demo): fetched as usual
        assert (await fetch(c, url, SETTINGS)).outcome == "ok"
