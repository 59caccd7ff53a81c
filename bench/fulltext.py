"""Full article text and per-item language: what they cost and what they gain.

    python bench/fulltext.py [--lingua DIR]

1. Cost per matched item: fetch (from a local HTTP server on 127.0.0.1) + extract, for the article
   pages of the labelled title-only set (tests/data/fulltext_titles.jsonl inside the boilerplate page of
   tests/fixtures/articles/template.html, plus the three hand-made ru/en/ko pages); the baseline in
   the same run is matching the feed's text alone.
2. Recall gained on title-only items: the labelled set through real poll cycles (Pipeline, SQLite
   store, local server, default rules), once with full text off and once on.
3. Extra requests a day on the shipped config.yaml: the news-search feeds (full text on by default)
   × an assumed number of new items a day × the share of titles that hit a rule group (measured on
   the real development set's titles, which all concern North Korea as search results do), bounded
   by the per-host daily quota.
4. Language detection on the real development set's titles: accuracy per language and µs an item,
   for the letter-count detector (core/lang.py) and, with ``--lingua DIR`` (a folder where
   lingua-language-detector was installed with ``pip install --target DIR``), for lingua restricted to
   ru/en/ko, with its load time and memory.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import resource
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from core.config import FeedConfig, FullTextConfig, PollingConfig, is_news_search, load_config  # noqa: E402
from core.lang import detect_lang  # noqa: E402
from rules import RuleSet, load_rules  # noqa: E402
from service.enrich import EnrichPolicy  # noqa: E402
from service.pipeline import Pipeline  # noqa: E402
from store import Store  # noqa: E402
from tests.articles import ARTICLES, labelled  # noqa: E402
from watchers import PollSettings, make_client  # noqa: E402
from watchers.fulltext import extract_article, fetch_article  # noqa: E402

REAL_DEV = REPO.parent / "shared" / "data" / "real_dev.jsonl"
NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
NEW_ITEMS_A_DAY = 60  # assumed new items a day in one news-search feed (a narrow query; Google returns ≤ 100)


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Server:
    """Pages by path on 127.0.0.1, threaded; counts requests."""

    def __init__(self, pages: dict[str, tuple[str, bytes]]) -> None:
        self.pages = pages
        self.hits: Counter[str] = Counter()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                # headers and body go out in two writes: without this, Nagle + delayed ACK add ~40 ms
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def do_GET(self) -> None:
                outer.hits[self.path] += 1
                kind, body = outer.pages.get(self.path, ("text/plain", b""))
                self.send_response(200 if self.path in outer.pages else 404)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"


def feed_body(server: Server, slugs: list[tuple[str, str]]) -> bytes:
    items = "".join(
        f"<item><title>{escape(title)}</title><link>{server.url('/a/' + slug)}</link><guid>{slug}</guid>"
        f"<pubDate>{format_datetime(NOW)}</pubDate></item>"
        for slug, title in slugs
    )
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>search</title>{items}</channel></rss>'.encode()


async def cost(server: Server, paths: list[str], ruleset: RuleSet) -> None:
    settings = PollSettings(timeout=10, max_bytes=3_000_000, allow_private_urls=True)
    pages = {p: server.pages[p][1] for p in paths}
    # baseline: matching the feed's text (title only) of the same items
    titles = [a.title for a in labelled()]
    started = time.perf_counter()
    for _ in range(200):
        for t in titles:
            ruleset.match_text(t, "")
    match_us = (time.perf_counter() - started) / (200 * len(titles)) * 1e6
    before = rss_mib()
    started = time.perf_counter()
    extract_article(pages[paths[0]], "https://warm.example/")  # the first call imports trafilatura
    first_ms = (time.perf_counter() - started) * 1000
    imported = rss_mib() - before
    for p in paths:  # warm: trafilatura's and htmldate's lazy set-up is a one-time cost, reported above
        extract_article(pages[p], server.url(p))
    extract_ms = []
    for p in paths:
        started = time.perf_counter()
        extract_article(pages[p], server.url(p))
        extract_ms.append((time.perf_counter() - started) * 1000)
    total_ms = []
    async with make_client(settings) as client:
        for p in paths:
            started = time.perf_counter()
            result = await fetch_article(client, server.url(p), settings)
            assert result.article is not None, (p, result.error)
            total_ms.append((time.perf_counter() - started) * 1000)
    size = statistics.mean(len(b) for b in pages.values()) / 1024
    print(f"1. cost per matched item ({len(paths)} article pages, mean {size:.1f} KiB)")
    print(f"   baseline: matching the feed's title alone       {match_us:8.1f} µs/item")
    print(
        f"   extract only (trafilatura)                      {statistics.mean(extract_ms):8.2f} ms/item "
        f"(median {statistics.median(extract_ms):.2f}, max {max(extract_ms):.2f})"
    )
    print(
        f"   fetch from 127.0.0.1 + extract (off the loop)   {statistics.mean(total_ms):8.2f} ms/item "
        f"(median {statistics.median(total_ms):.2f}, max {max(total_ms):.2f})"
    )
    big = heavy_page()
    started = time.perf_counter()
    for _ in range(5):
        extract_article(big, "https://big.example/")
    big_ms = (time.perf_counter() - started) / 5 * 1000
    print(f"   extract only, a {len(big) // 1024} KiB page (real sites' size: menus, scripts) {big_ms:8.2f} ms/item")
    print(f"   first extraction in a process (imports trafilatura): {first_ms:.0f} ms, +{imported:.0f} MiB max RSS")


def heavy_page() -> bytes:
    """The English fixture grown to a real site's weight: inline scripts, mega-menus, related lists."""
    page = (ARTICLES / "en.html").read_text(encoding="utf-8")
    script = (
        "<script>" + "window.__STATE__.push({id: 1, slot: 'ad', sizes: [[728, 90], [970, 250]]});" * 400 + "</script>"
    )
    menu = "<ul class='mega'>" + "".join(f"<li><a href='/s/{i}'>Section {i}</a></li>" for i in range(600)) + "</ul>"
    related = "<aside>" + "".join(f"<div class='card'><a href='/r/{i}'>Other story {i}</a></div>" for i in range(600))
    page = page.replace("</head>", script * 3 + "</head>").replace("<main>", menu + "<main>")
    return page.replace("</main>", related + "</aside></main>").encode()


async def recall(server: Server, ruleset: RuleSet) -> float:
    items = labelled()
    slugs = [(a.id, a.title) for a in items]
    polling = PollingConfig(allow_private_urls=True, timeout=10.0)
    found: dict[bool, set[str]] = {}
    fetched: dict[bool, int] = {}
    seconds: dict[bool, float] = {}
    for on in (False, True):
        with tempfile.TemporaryDirectory() as tmp, Store.open(Path(tmp) / "b.sqlite3") as store:
            url = server.url(f"/feed-{on}")
            server.pages[f"/feed-{on}"] = ("application/rss+xml", feed_body(server, []))
            store.sync_feeds([FeedConfig(url, "search", None, 600)], NOW)
            policy = EnrichPolicy(FullTextConfig(), {url: on})
            async with make_client(PollSettings.from_config(polling)) as client:
                pipeline = Pipeline(store, client, lambda: ruleset, polling, policy)
                await pipeline.run_cycle(NOW - timedelta(hours=1))  # first poll: an empty feed
                server.pages[f"/feed-{on}"] = ("application/rss+xml", feed_body(server, slugs))
                server.hits.clear()
                started = time.perf_counter()
                await pipeline.run_cycle(NOW)
                seconds[on] = time.perf_counter() - started
            fetched[on] = sum(n for p, n in server.hits.items() if p.startswith("/a/"))
            rows = store.conn.execute("SELECT DISTINCT i.uid FROM items i JOIN matches m ON m.item_id = i.id")
            found[on] = {r[0] for r in rows}
    positives = {a.id for a in items if a.label}
    negatives = {a.id for a in items if not a.label}
    print(f"2. recall on {len(items)} title-only items ({len(positives)} on topic), default rules, real poll cycles")
    for on in (False, True):
        tp = len(found[on] & positives)
        fp = len(found[on] & negatives)
        print(
            f"   full text {'on ' if on else 'off'}: recall {tp / len(positives):.2f} ({tp}/{len(positives)}), "
            f"false alerts {fp}/{len(negatives)}, article requests {fetched[on]}, cycle {seconds[on] * 1000:.0f} ms"
        )
    by_lang = Counter(a.lang for a in items if a.label)
    gained = Counter(a.lang for a in items if a.id in found[True] & positives)
    print("   with full text, per language: " + ", ".join(f"{k} {gained[k]}/{by_lang[k]}" for k in sorted(by_lang)))
    return len(found[True] & positives) / len(positives)


def requests_a_day(ruleset: RuleSet) -> None:
    config = load_config(REPO / "config.yaml")
    search = [f for f in config.feeds if (f.full_text if f.full_text is not None else is_news_search(f.url))]
    rows = [json.loads(line) for line in REAL_DEV.read_text(encoding="utf-8").splitlines()] if REAL_DEV.exists() else []
    share = sum(ruleset.hits_any_group(r["title"], "") for r in rows) / len(rows) if rows else 1.0
    hosts: Counter[str] = Counter()
    for f in search:
        hosts["news.google.com" if "news.google.com" in f.url else "www.bing.com"] += 1
    cap = config.full_text.per_host_daily
    print(
        f"3. extra requests a day on the shipped config.yaml "
        f"({len(search)} of {len(config.feeds)} feeds want full text)"
    )
    print(
        f"   assumption: {NEW_ITEMS_A_DAY} new items a day per news-search feed; "
        f"{share:.0%} of titles hit a rule group (real dev titles, n={len(rows)})"
    )
    total = 0
    for host, n in sorted(hosts.items()):
        wanted = n * NEW_ITEMS_A_DAY * share
        made = min(wanted, cap)
        total += int(made)
        print(f"   {host}: {n} feeds → {wanted:.0f} wanted, {made:.0f} made (quota {cap}/day per host)")
    print(f"   total ≈ {total} article requests a day (the other feeds: 0; their items carry their own text)")


def languages(lingua_dir: str | None) -> None:
    if not REAL_DEV.exists():
        print("4. language detection: the real development set is not here; skipped")
        return
    rows = [json.loads(line) for line in REAL_DEV.read_text(encoding="utf-8").splitlines() if line.strip()]
    total = Counter(r["lang"] for r in rows)

    def report(name: str, guesses: list[str], seconds: float, extra: str = "") -> None:
        right = Counter(r["lang"] for r, g in zip(rows, guesses, strict=True) if g == r["lang"])
        acc = ", ".join(f"{k} {right[k] / total[k]:.3f} ({right[k]}/{total[k]})" for k in ("ru", "en", "ko"))
        print(f"   {name:<28} {acc}; {seconds / len(rows) * 1e6:6.1f} µs/item{extra}")

    print(f"4. language detection on {len(rows)} real titles")
    started = time.perf_counter()
    guesses: list[str] = [detect_lang(r["title"]) for r in rows]
    report("letters (core/lang.py)", guesses, time.perf_counter() - started)
    if lingua_dir:
        sys.path.insert(0, lingua_dir)
        before = rss_mib()
        started = time.perf_counter()
        lingua: Any = importlib.import_module("lingua")  # not a dependency: measured here, not used
        Language, LanguageDetectorBuilder = lingua.Language, lingua.LanguageDetectorBuilder
        detector = (
            LanguageDetectorBuilder.from_languages(Language.RUSSIAN, Language.ENGLISH, Language.KOREAN)
            .with_preloaded_language_models()
            .build()
        )
        load = time.perf_counter() - started
        grown = rss_mib() - before
        names = {Language.RUSSIAN: "ru", Language.ENGLISH: "en", Language.KOREAN: "ko"}
        started = time.perf_counter()
        guesses = [names.get(detector.detect_language_of(r["title"]), "en") for r in rows]
        report("lingua ru/en/ko", guesses, time.perf_counter() - started, f"; load {load:.1f} s, +{grown:.0f} MiB")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--lingua", help="a folder with lingua-language-detector installed (pip --target)")
    args = parser.parse_args()
    ruleset = load_rules([REPO / "rules" / "dprk_russia.yaml"])
    pages = {f"/a/{a.id}": ("text/html; charset=utf-8", a.page()) for a in labelled()}
    for name in ("en", "ru", "ko"):
        pages[f"/a/fixture-{name}"] = ("text/html; charset=utf-8", (ARTICLES / f"{name}.html").read_bytes())
    server = Server(pages)
    await cost(server, list(pages), ruleset)
    await recall(server, ruleset)
    requests_a_day(ruleset)
    languages(args.lingua)


if __name__ == "__main__":
    asyncio.run(main())
