"""Source-kind parsing benchmark: ``python3 bench/sources.py`` (from the repository root) prints figures.

Items per second, parsing the saved pages of tests/fixtures (no network):

1. **t.me/s/ channel pages** with watchers/tme.py (lxml), and the same extraction done with selectolax
   when it happens to be installed (it is not a dependency: the figure that decided for lxml);
2. **pages with selectors** (ru/en/ko news pages, CSS and XPath) with watchers/page.py;
3. **baseline**: watchers/parse.py (feedparser) on an RSS 2.0 body holding the same items (title, link,
   summary, date) — what a feed of that content costs.

``--seconds N`` runs each section about N seconds (default 2).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from core.models import Item  # noqa: E402
from watchers.page import PageSpec, parse_page  # noqa: E402
from watchers.parse import parse_feed  # noqa: E402
from watchers.tme import parse_channel  # noqa: E402

FIXTURES = REPO / "tests" / "fixtures"
CHANNELS = [("kursk_front", "kursk_front"), ("kursk_front_before_4801", "kursk_front"), ("nk_watch", "nk_watch")]
PAGES = [
    ("mil_ru", PageSpec(item="div.newsitem", title="a.title", link="a.title", summary="p.lead", date=".date")),
    ("think_tank_en", PageSpec(item="article.card", title="h2", link="h2 a", summary=".excerpt", date="time, .when")),
    (
        "kcna_ko",
        PageSpec(
            item="//ul[@class='board_list']/li",
            title=".//strong[@class='tit']",
            link="string(./a/@href)",
            summary=".//span[@class='txt']",
            date=".//span[@class='date']",
            xpath=True,
        ),
    ),
]


def rate(run: Callable[[], int], seconds: float) -> tuple[float, float]:
    """(items/s, ms per call) of ``run`` (which returns how many items it made), over ~``seconds``."""
    run()  # warm up: selectors compiled, caches filled
    calls = items = 0
    started = time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds:
        items += run()
        calls += 1
    return items / elapsed, 1000 * elapsed / calls


def rss_of(items: Sequence[Item]) -> bytes:
    entries = "".join(
        f"<item><title>{escape(i.title)}</title><link>{escape(i.link or '')}</link><guid>{escape(i.uid)}</guid>"
        f"<description>{escape(i.summary)}</description>"
        + (f"<pubDate>{format_datetime(i.published)}</pubDate>" if i.published else "")
        + "</item>"
        for i in items
    )
    head = '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>x</title>'
    return f"{head}{entries}</channel></rss>".encode()


def selectolax_channel(body: bytes) -> int:
    """The same post extraction with selectolax (text, date, media counts), for the parser comparison."""
    from selectolax.lexbor import LexborHTMLParser

    tree = LexborHTMLParser(body)
    count = 0
    for widget in tree.css("div.tgme_widget_message[data-post]"):
        classes = (widget.attributes.get("class") or "").split()
        if "service_message" in classes or widget.css_first(".tgme_widget_message_error") is not None:
            continue
        text = widget.css_first(".tgme_widget_message_bubble > .js-message_text")
        body_text = text.text(separator="\n").strip() if text is not None else ""
        media = len(widget.css(".tgme_widget_message_photo_wrap")) + len(
            widget.css(".tgme_widget_message_video_player")
        )
        when = widget.css_first("time[datetime]")
        _ = when.attributes.get("datetime") if when is not None else None
        _ = widget.css_first(".tgme_widget_message_views")
        if body_text or media or widget.css_first(".tgme_widget_message_poll_question") is not None:
            count += 1
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=2.0)
    seconds = parser.parse_args().seconds

    channel_bodies = [((FIXTURES / "tme" / f"{name}.html").read_bytes(), channel) for name, channel in CHANNELS]
    page_bodies = [((FIXTURES / "pages" / f"{name}.html").read_bytes(), spec) for name, spec in PAGES]

    def channels() -> int:
        return sum(
            len(parse_channel(body, channel=channel, feed_url="https://t.me/s/x").items)
            for body, channel in channel_bodies
        )

    def pages() -> int:
        return sum(len(parse_page(body, spec, page_url="https://x.example/news/").items) for body, spec in page_bodies)

    channel_items = [
        i for body, channel in channel_bodies for i in parse_channel(body, channel=channel, feed_url="x").items
    ]
    page_items = [i for body, spec in page_bodies for i in parse_page(body, spec, page_url="https://x.example/").items]
    channel_rss, page_rss = rss_of(channel_items), rss_of(page_items)

    def feed(body: bytes) -> Callable[[], int]:
        return lambda: len(parse_feed(body, feed_url="x").items)

    kb = sum(len(b) for b, _ in channel_bodies) / 1024
    print(f"t.me/s/ pages: {len(channel_bodies)} pages, {len(channel_items)} posts, {kb:.0f} KiB")
    tme_rate, tme_ms = rate(channels, seconds)
    rss_rate, _ = rate(feed(channel_rss), seconds)
    print(f"  watchers/tme.py (lxml)       {tme_rate:9,.0f} items/s  {tme_ms / len(channel_bodies):6.2f} ms a page")
    try:
        import selectolax  # noqa: F401

        lax_rate, lax_ms = rate(lambda: sum(selectolax_channel(b) for b, _ in channel_bodies), seconds)
        print(f"  selectolax (same extraction) {lax_rate:9,.0f} items/s  {lax_ms / len(channel_bodies):6.2f} ms a page")
    except ImportError:
        print("  selectolax                   not installed (not a dependency; pip install selectolax to compare)")
    print(f"  baseline: feedparser, same items as RSS ({len(channel_rss) / 1024:.0f} KiB) {rss_rate:9,.0f} items/s")
    print(f"  → t.me/s/ parsing is {tme_rate / rss_rate:.1f}× feedparser's rate on the same items")

    kb = sum(len(b) for b, _ in page_bodies) / 1024
    print(
        f"pages with selectors: {len(page_bodies)} pages (ru CSS, en CSS, ko XPath), "
        f"{len(page_items)} items, {kb:.0f} KiB"
    )
    page_rate, page_ms = rate(pages, seconds)
    rss_rate, _ = rate(feed(page_rss), seconds)
    print(f"  watchers/page.py (lxml)      {page_rate:9,.0f} items/s  {page_ms / len(page_bodies):6.2f} ms a page")
    print(f"  baseline: feedparser, same items as RSS ({len(page_rss) / 1024:.0f} KiB) {rss_rate:9,.0f} items/s")
    print(f"  → page parsing is {page_rate / rss_rate:.1f}× feedparser's rate on the same items")


if __name__ == "__main__":
    main()
