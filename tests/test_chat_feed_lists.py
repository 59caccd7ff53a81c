"""The rules an imported feed URL is judged by, without fetching it, and the chat's import reply."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from chat.feed_lists import ImportReport, export_opml, import_feeds, normalise_url, report_text, url_problem
from core.config import load_config
from core.opml import parse_opml
from store import Store


@pytest.mark.parametrize(
    ("a", "b"),
    [
        pytest.param("http://TASS.ru/rss/v2.xml", "https://tass.ru/rss/v2.xml", id="scheme-and-host-case"),
        pytest.param("https://a.example:443/feed/", "https://a.example/feed", id="default-port-trailing-slash"),
        pytest.param("https://a.example/feed#top", "https://a.example/feed", id="fragment"),
    ],
)
def test_one_feed_spelt_two_ways_is_one_key(a: str, b: str) -> None:
    assert normalise_url(a) == normalise_url(b)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        pytest.param("https://a.example/Feed", "https://a.example/feed", id="path-case"),
        pytest.param("https://a.example/rss?lang=ru", "https://a.example/rss?lang=en", id="query"),
        pytest.param("https://a.example:8443/rss", "https://a.example/rss", id="other-port"),
    ],
)
def test_different_feeds_keep_different_keys(a: str, b: str) -> None:
    assert normalise_url(a) != normalise_url(b)


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        pytest.param("https://tass.ru/rss/v2.xml", None, id="public-host"),
        pytest.param("https://8.8.8.8/rss", None, id="public-ip"),
        pytest.param("file:///etc/passwd", "is not an http(s) URL", id="file"),
        pytest.param("javascript:alert(1)", "is not an http(s) URL", id="javascript"),
        pytest.param("https://a.example:99999/", "has a bad port", id="bad-port"),
        pytest.param("http://10.0.0.5/rss", "private or local address", id="private-ip"),
        pytest.param("http://[::1]:8080/rss", "private or local address", id="ipv6-loopback"),
        pytest.param("http://169.254.169.254/latest/meta-data", "private or local address", id="cloud-metadata"),
        pytest.param("http://localhost:8080/rss", "local host name", id="localhost"),
        pytest.param("http://printer.local/rss", "local host name", id="mdns"),
        pytest.param("http://intranet/rss", "local host name", id="single-label"),
    ],
)
def test_url_rules_without_fetching(url: str, problem: str | None) -> None:
    found = url_problem(url, allow_private=False)
    assert found is None if problem is None else (found is not None and problem in found)


def test_private_urls_pass_when_the_config_allows_them() -> None:
    assert url_problem("http://127.0.0.1:8080/rss", allow_private=True) is None
    assert url_problem("file:///tmp/feed.xml", allow_private=True) is not None  # /feed_add takes http(s) only


def test_the_chat_reply_caps_the_error_list_and_escapes_it() -> None:
    report = ImportReport(added=["A"], errors=[f"outline {i} (line {i}): no xmlUrl <x>" for i in range(1, 41)])
    text = report_text(report, limit=15)
    assert text.startswith("⚠️ OPML import: added 1, skipped 0 duplicates, 40 errors.")
    assert text.count("• outline") == 15 and "… and 25 more." in text
    assert "&lt;x&gt;" in text and "<x>" not in text


async def test_export_lists_a_channel_by_its_preview_and_leaves_pages_out_and_import_makes_it_a_channel(
    tmp_path: Path,
) -> None:
    now = datetime(2026, 11, 30, tzinfo=UTC)
    web = "http://127.0.0.1:9/tme"  # where this bot reads previews; the export still says t.me
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "a.yaml").write_text("version: 1\n", encoding="utf-8")
    (tmp_path / "config.yaml").write_text(
        f"polling: {{telegram_web: '{web}'}}\nfeeds:\n  - {{telegram: '@kursk_front', lang: ru}}\n"
        "  - {page: 'https://mil.example.ru/news', item: li, title: a, link: a}\n  - https://example.org/rss\n",
        encoding="utf-8",
    )
    config = load_config(tmp_path / "config.yaml")
    with Store.open(tmp_path / "a.sqlite3") as store:
        store.sync_feeds(config.feeds, now)
        document, count = export_opml(store, config, now)
    assert count == 2
    feeds = parse_opml(document).feeds
    assert [(f.url, f.category) for f in feeds] == [
        ("https://t.me/s/kursk_front", "telegram"),
        ("https://example.org/rss", None),
    ]
    assert b'category="telegram"' in document and b"mil.example.ru" not in document
    bare = replace(config, feeds=())
    with Store.open(tmp_path / "b.sqlite3") as other:
        report = await import_feeds(other, bare, feeds, "import:test", now)
        assert report.added == ["@kursk_front", "example.org"]
        channel = other.feed_by_url(f"{web}/s/kursk_front")
        assert channel is not None and (channel.kind, channel.spec) == ("telegram", '{"channel": "kursk_front"}')
        again = await import_feeds(other, bare, feeds, "import:test", now)
        assert again.added == [] and len(again.duplicates) == 2
