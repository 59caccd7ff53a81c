"""Feeds served over real HTTP on 127.0.0.1 from a thread, for the long-running suites."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from datetime import datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from xml.sax.saxutils import escape

Response = tuple[int, dict[str, str], bytes]  # status, headers, body


def rss(channel: str, link: str, entries: Iterable[tuple[str, str, str, datetime]]) -> bytes:
    """An RSS 2.0 document; each entry is (title, link, summary, published); the link is also the guid."""
    items = "".join(
        f"<item><title>{escape(title)}</title><link>{url}</link><guid>{url}</guid>"
        f"<description>{escape(summary)}</description><pubDate>{format_datetime(published)}</pubDate></item>"
        for title, url, summary, published in entries
    )
    return (
        f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>{escape(channel)}</title>'
        f"<link>{link}</link>{items}</channel></rss>"
    ).encode()


def ok(body: bytes, **headers: str) -> Response:
    return 200, {"Content-Type": "application/rss+xml; charset=utf-8", **headers}, body


class FeedServer:
    """A threaded HTTP/1.1 server (keep-alive, as real servers) on 127.0.0.1; subclasses answer GETs in
    :meth:`respond` (request header names lowercased). Use it as a context manager: it stops with the block."""

    def respond(self, path: str, headers: dict[str, str]) -> Response:
        raise NotImplementedError

    def __init__(self) -> None:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                status, headers, body = server.respond(self.path, {k.lower(): v for k, v in self.headers.items()})
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> FeedServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
