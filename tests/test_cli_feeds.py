"""`bot.py feeds import FILE.opml` and `bot.py feeds export`, against a real store file."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cli.feeds import run_import
from core.config import FeedConfig, load_config
from core.opml import OpmlFeed, parse_opml
from store import Store

REPO = Path(__file__).resolve().parents[1]
NOW = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
RSS = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>T</title><language>ko</language>
<item><title>One</title><link>https://a.example/1</link><guid>1</guid></item></channel></rss>"""


def opml(*outlines: str) -> bytes:
    return (
        '<?xml version="1.0"?>\n<opml version="2.0"><head/><body>\n' + "\n".join(outlines) + "\n</body></opml>\n"
    ).encode()


def write_config(tmp_path: Path, *, allow_private: bool = False) -> Path:
    config = tmp_path / "config.yaml"
    config.write_text(
        f"storage: {{path: '{tmp_path / 'bot.sqlite3'}'}}\nrules: {{files: ['{REPO / 'rules'}/*.yaml']}}\n"
        f"polling: {{allow_private_urls: {str(allow_private).lower()}, timeout: 5}}\n"
        "feeds:\n  - {url: 'https://tass.ru/rss/v2.xml', name: TASS, lang: ru}\n",
        encoding="utf-8",
    )
    return config


def stored(tmp_path: Path) -> dict[str, tuple[str, str | None]]:
    with Store.open(tmp_path / "bot.sqlite3") as store:
        return {f.url: (f.name, f.lang) for f in store.all_feeds(enabled_only=True)}


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_import_adds_new_feeds_skips_duplicates_and_names_bad_outlines(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    file = tmp_path / "feeds.opml"
    file.write_bytes(
        opml(
            '<outline text="Yonhap" type="rss" xmlUrl="https://en.yna.co.kr/RSS/news.xml" language="en"/>',
            '<outline text="TASS again" xmlUrl="http://TASS.ru/rss/v2.xml/"/>',  # the config's, spelt otherwise
            '<outline text="Local" type="rss" xmlUrl="http://127.0.0.1:8080/feed"/>',
            '<outline text="Intranet" type="rss" xmlUrl="http://localhost/feed"/>',
            '<outline text="FTP" type="rss" xmlUrl="ftp://files.example/feed"/>',
            '<outline text="Nothing"/>',
            '<outline text="Yonhap twice" xmlUrl="https://en.yna.co.kr/RSS/news.xml"/>',
        )
    )
    out, err = io.StringIO(), io.StringIO()
    assert run_import(str(config), str(file), out=out, errors=err) == 1
    assert out.getvalue() == "added 1, skipped 2 duplicates, 4 errors\n"
    assert err.getvalue().splitlines() == [
        f"{file}: outline 3 (line 5): 127.0.0.1 is a private or local address; refused (polling.allow_private_urls)",
        f"{file}: outline 4 (line 6): localhost is a local host name; refused (polling.allow_private_urls)",
        f"{file}: outline 5 (line 7): 'ftp://files.example/feed' is not an http(s) URL",
        f"{file}: outline 6 (line 8): no xmlUrl",
    ]
    assert stored(tmp_path) == {"https://en.yna.co.kr/RSS/news.xml": ("Yonhap", "en")}
    # a second import of the same file adds nothing
    out = io.StringIO()
    run_import(str(config), str(file), out=out, errors=io.StringIO())
    assert out.getvalue().startswith("added 0, skipped 3 duplicates")


def test_a_clean_import_exits_zero_and_private_urls_pass_when_allowed(tmp_path: Path) -> None:
    config = write_config(tmp_path, allow_private=True)
    file = tmp_path / "feeds.opml"
    file.write_bytes(opml('<outline text="Local" type="rss" xmlUrl="http://127.0.0.1:8080/feed"/>'))
    out = io.StringIO()
    assert run_import(str(config), str(file), out=out, errors=io.StringIO()) == 0
    assert out.getvalue() == "added 1, skipped 0 duplicates, 0 errors\n"
    assert "http://127.0.0.1:8080/feed" in stored(tmp_path)


def test_a_bad_file_is_one_error_and_changes_nothing(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    file = tmp_path / "feeds.opml"
    file.write_bytes(b'<?xml version="1.0"?><rss version="2.0"><channel/></rss>')
    out, err = io.StringIO(), io.StringIO()
    assert run_import(str(config), str(file), out=out, errors=err) == 1
    assert "not an OPML document" in err.getvalue() and out.getvalue() == "added 0, skipped 0 duplicates, 1 error\n"
    assert stored(tmp_path) == {}
    assert run_import(str(config), str(tmp_path / "missing.opml"), out=out, errors=err) == 1
    assert "missing.opml: no such file" in err.getvalue()


def test_check_fetches_each_new_feed_once(tmp_path: Path, httpserver: Any) -> None:
    httpserver.expect_request("/ok.xml").respond_with_data(RSS, content_type="application/rss+xml")
    httpserver.expect_request("/page").respond_with_data("<html><body>hi</body></html>", content_type="text/html")
    httpserver.expect_request("/gone.xml").respond_with_data("", status=404)
    config = write_config(tmp_path, allow_private=True)
    file = tmp_path / "feeds.opml"
    file.write_bytes(
        opml(
            f'<outline text="OK" xmlUrl="{httpserver.url_for("/ok.xml")}"/>',
            f'<outline text="Page" xmlUrl="{httpserver.url_for("/page")}"/>',
            f'<outline text="Gone" xmlUrl="{httpserver.url_for("/gone.xml")}"/>',
        )
    )
    out, err = io.StringIO(), io.StringIO()
    assert run_import(str(config), str(file), check=True, out=out, errors=err) == 1
    assert out.getvalue() == "added 1, skipped 0 duplicates, 2 errors\n"
    errors = err.getvalue().splitlines()
    assert "outline 2 (line 4): not a feed" in errors[0] and "outline 3 (line 5): HTTP 404" in errors[1]
    # the language comes from the feed when the OPML does not say
    assert stored(tmp_path) == {httpserver.url_for("/ok.xml"): ("OK", "ko")}


def test_progress_bar_only_on_a_terminal(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    file = tmp_path / "feeds.opml"
    file.write_bytes(opml(*(f'<outline text="F{i}" xmlUrl="https://f{i}.example/rss"/>' for i in range(30))))
    tty = Tty()
    assert run_import(str(config), str(file), out=io.StringIO(), errors=tty) == 0
    assert "30/30" in tty.getvalue() and "feed" in tty.getvalue()
    (tmp_path / "bot.sqlite3").unlink()
    tty = Tty()
    run_import(str(config), str(file), progress=False, out=io.StringIO(), errors=tty)
    assert tty.getvalue() == ""
    pipe = io.StringIO()
    run_import(str(config), str(file), out=io.StringIO(), errors=pipe)
    assert pipe.getvalue() == ""


def bot(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(REPO / "bot.py"), *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env={**os.environ},
    )


def test_cli_import_then_export_lists_config_and_imported_feeds(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    file = tmp_path / "in.opml"
    file.write_bytes(opml('<outline text="NK &amp; News" xmlUrl="https://www.nknews.org/feed/" language="en"/>'))
    result = bot("--config", str(config), "feeds", "import", str(file))
    assert result.returncode == 0, result.stderr
    assert result.stdout == "added 1, skipped 0 duplicates, 0 errors\n" and result.stderr == ""

    result = bot("--config", str(config), "feeds", "export")
    assert result.returncode == 0, result.stderr
    assert parse_opml(result.stdout.encode()).feeds == [
        OpmlFeed("https://tass.ru/rss/v2.xml", "TASS", "ru"),
        OpmlFeed("https://www.nknews.org/feed/", "NK & News", "en"),
    ]
    out = tmp_path / "out.opml"
    result = bot("--config", str(config), "feeds", "export", "-o", str(out))
    assert result.returncode == 0 and result.stdout == "" and "2 feeds written" in result.stderr
    assert len(parse_opml(out.read_bytes()).feeds) == 2


def retire(store: Store, url: str) -> None:
    feed = store.feed_by_url(url)
    assert feed is not None
    store.commit_poll(
        feed.id, NOW, ok=False, etag=None, last_modified=None, error="HTTP 410 Gone", next_poll_at=NOW, gone=True
    )


def test_import_revives_a_retired_feed_however_the_file_spells_it(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    with Store.open(tmp_path / "bot.sqlite3") as store:
        store.sync_feeds([FeedConfig("https://tass.ru/rss/v2.xml", "TASS", "ru", 600)], NOW)
        store.add_feed("https://kcnawatch.org/feed/", "KCNA Watch", "en", 600, "chat:42", NOW)
        retire(store, "https://tass.ru/rss/v2.xml")
        retire(store, "https://kcnawatch.org/feed/")
    file = tmp_path / "feeds.opml"
    file.write_bytes(
        opml(
            '<outline text="TASS" type="rss" xmlUrl="http://tass.ru/rss/v2.xml"/>',  # the config's, retired
            '<outline text="KCNA" type="rss" xmlUrl="https://kcnawatch.org/feed"/>',
        )
    )
    out = io.StringIO()
    assert run_import(str(config), str(file), out=out, errors=io.StringIO()) == 0
    assert out.getvalue() == "added 0, revived 2, skipped 0 duplicates, 0 errors\n"
    with Store.open(tmp_path / "bot.sqlite3") as store:
        assert store.retired_feeds() == []
        due = {f.url: f.failures for f in store.due_feeds(NOW)}
        assert due == {"https://tass.ru/rss/v2.xml": 0, "https://kcnawatch.org/feed/": 0}, "same rows, polled again"
    out = io.StringIO()
    run_import(str(config), str(file), out=out, errors=io.StringIO())
    assert out.getvalue() == "added 0, skipped 2 duplicates, 0 errors\n", "once revived, a duplicate"


def test_import_keeps_a_feed_the_config_no_longer_lists(tmp_path: Path) -> None:
    config = write_config(tmp_path)  # lists TASS only
    old = FeedConfig("https://en.yna.co.kr/RSS/news.xml", "Yonhap", "en", 600)
    with Store.open(tmp_path / "bot.sqlite3") as store:
        store.sync_feeds([old], NOW)  # an older config.yaml listed Yonhap; the bot has not restarted since
    file = tmp_path / "feeds.opml"
    file.write_bytes(opml('<outline text="Yonhap" type="rss" xmlUrl="https://en.yna.co.kr/RSS/news.xml"/>'))
    out = io.StringIO()
    assert run_import(str(config), str(file), out=out, errors=io.StringIO()) == 0
    assert out.getvalue() == "added 1, skipped 0 duplicates, 0 errors\n"
    with Store.open(tmp_path / "bot.sqlite3") as store:
        store.sync_feeds(load_config(config).feeds, NOW)  # the next start
        assert set(stored(tmp_path)) == {"https://tass.ru/rss/v2.xml", "https://en.yna.co.kr/RSS/news.xml"}
        assert store.feed_sources()["https://en.yna.co.kr/RSS/news.xml"] == "import"
