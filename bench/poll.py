"""Poll benchmark: one cycle over N feeds served from 127.0.0.1 with added latency.

    python bench/poll.py [--feeds 1000] [--latency 0.05] [--concurrency 50] [--naive-sample 100]

Prints the wall time of the first cycle (200s, parsed), the second cycle (304s, nothing parsed), peak
RSS, and a naive sequential ``feedparser.parse(url)`` loop over a sample of the same feeds,
extrapolated to N, with the ratio. The server runs in its own process so it does not share our GIL.
Targets (issue 2): 1,000 feeds ≤ 10 s, a 304 cycle ≤ 3 s, ≤ 150 MB RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import resource
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import feedparser

from core.models import Feed
from watchers import PollSettings, make_client, poll_feeds

WORDS = [
    "КНДР",
    "Россия",
    "военные",
    "переговоры",
    "Пхеньян",
    "делегация",
    "North",
    "Korea",
    "Russia",
    "troops",
    "Kursk",
    "북한",
    "러시아",
    "파병",
    "군사협력",
    "economy",
    "weather",
    "sport",
    "culture",
]


def feed_body(n: int, items: int = 20) -> bytes:
    entries = []
    for i in range(items):
        words = " ".join(WORDS[(n + i + k) % len(WORDS)] for k in range(12))
        entries.append(
            f"<item><guid>feed{n}-item{i}</guid><title>Item {i} of feed {n}: {words}</title>"
            f"<link>https://news{n}.example/{i}</link><pubDate>Tue, 05 Nov 2024 10:{i:02d}:00 +0000</pubDate>"
            f"<description>&lt;p&gt;{words} {words} {words}&lt;/p&gt;</description></item>"
        )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>Feed {n}</title>'
        f"<link>https://news{n}.example/</link><description>bench</description>{''.join(entries)}"
        "</channel></rss>"
    ).encode()


def serve(port_queue: Any, feeds: int, latency: float) -> None:
    bodies = {f"/feed/{n}": feed_body(n) for n in range(feeds)}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            time.sleep(latency)
            body = bodies.get(self.path)
            if body is None:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            etag = f'"{self.path}"'
            if self.headers.get("If-None-Match") == etag:
                self.send_response(304)
                self.send_header("ETag", etag)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/rss+xml; charset=utf-8")
            self.send_header("ETag", etag)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        request_queue_size = 1024  # must be set before listen(): a class attribute

    server = Server(("127.0.0.1", 0), Handler)
    port_queue.put(server.server_address[1])
    server.serve_forever()


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def run(args: argparse.Namespace, base: str) -> None:
    settings = PollSettings(timeout=30, concurrency=args.concurrency, allow_private_urls=True)
    feeds = [Feed(id=n, url=f"{base}/feed/{n}", name=f"feed {n}", lang=None, interval=600) for n in range(args.feeds)]
    async with make_client(settings) as client:
        started = time.perf_counter()
        first = await poll_feeds(client, feeds, settings)
        t1 = time.perf_counter() - started
        ok = sum(p.outcome == "ok" for p in first)
        items = sum(len(p.items) for p in first)
        revisited = [
            Feed(id=f.id, url=f.url, name=f.name, lang=None, interval=600, etag=p.etag)
            for f, p in zip(feeds, first, strict=True)
        ]
        started = time.perf_counter()
        second = await poll_feeds(client, revisited, settings)
        t2 = time.perf_counter() - started
        not_modified = sum(p.outcome == "not_modified" for p in second)
    print(f"first cycle (200, parsed): {t1:6.2f} s  {ok}/{args.feeds} ok, {items} items  (target ≤ 10 s for 1,000)")
    print(f"second cycle (304):        {t2:6.2f} s  {not_modified}/{args.feeds} not modified  (target ≤ 3 s)")
    print(f"peak RSS:                  {peak_rss_mb():6.1f} MB  (target ≤ 150 MB)")
    sample = min(args.naive_sample, args.feeds)
    started = time.perf_counter()
    for n in range(sample):
        feedparser.parse(f"{base}/feed/{n}")
    naive = (time.perf_counter() - started) * args.feeds / sample
    print(
        f"naive sequential feedparser.parse(url): {naive:6.2f} s for {args.feeds} (measured on {sample}, extrapolated)"
    )
    print(f"speed-up over naive:       {naive / t1:6.1f}×")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--feeds", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--naive-sample", type=int, default=100)
    args = parser.parse_args()
    ports: Any = multiprocessing.Queue()
    server = multiprocessing.Process(target=serve, args=(ports, args.feeds, args.latency), daemon=True)
    server.start()
    try:
        base = f"http://127.0.0.1:{ports.get(timeout=30)}"
        print(
            f"{args.feeds} feeds × 20 items, {args.latency * 1000:.0f} ms latency each, "
            f"concurrency {args.concurrency}, server {base}"
        )
        asyncio.run(run(args, base))
    finally:
        server.terminate()
        server.join(5)


if __name__ == "__main__":
    main()
