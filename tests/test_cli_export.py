"""`bot.py export` as a user runs it: a CSV a spreadsheet opens with Cyrillic and Hangul intact, JSONL."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import ClassVar

import pytest

from core.config import FeedConfig
from core.models import Hit, Item, Match
from store import ProcessedItem, Store
from store.export import write_rows
from store.search import EXPORT_COLUMNS

REPO = Path(__file__).resolve().parents[1]
URL = "https://news.example/rss"
RULES = "version: 1\ngroups:\n  DPRK: {aliases: [КНДР]}\nrules:\n  - name: military\n    all: [DPRK]\n"
MILITARY = Match("military", "instant", (Hit("DPRK", "title", 0, 4, "КНДР"),))
KOREAN = Match("korean", "digest", (Hit("DPRK", "title", 0, 2, "북한"),))


def seed(tmp_path: Path) -> Path:
    (tmp_path / "rules.yaml").write_text(RULES, encoding="utf-8")
    cfg = tmp_path / "config.yaml"
    cfg.write_text(
        f"rules: {{files: [rules.yaml]}}\nstorage: {{path: bot.sqlite3}}\nfeeds: [{URL}]\n", encoding="utf-8"
    )
    now = datetime.now(UTC)
    with Store.open(tmp_path / "bot.sqlite3") as store:
        store.sync_feeds([FeedConfig(URL, "Новости", None, 600)], now)
        feed = store.feed_by_url(URL)
        assert feed is not None
        rows = [
            (Item(URL, "old", "КНДР давно", "", None, None, "ru", "Новости"), (MILITARY,), now - timedelta(days=40)),
            (Item(URL, "ru", "КНДР и Россия", "", "https://news.example/ru", now, "ru", "Новости"), (MILITARY,), now),
            (Item(URL, "ko", "북한의 파병", "", "https://news.example/ko", now, "ko", "Новости"), (KOREAN,), now),
            (Item(URL, "none", "Погода", "", None, None, "ru", "Новости"), (), now),
        ]
        for it, matches, at in rows:
            store.commit_poll(
                feed.id,
                at,
                ok=True,
                etag=None,
                last_modified=None,
                error=None,
                next_poll_at=at,
                items=[ProcessedItem(it, matches, True)],
            )
        item_id = store.conn.execute("SELECT id FROM items WHERE uid = 'ru'").fetchone()[0]
        found = store.item_with_matches(item_id)
        assert found is not None
        store.record_vote(item_id, 1, "1", 1, found[0], [], now)
        store.record_vote(item_id, 2, "1", 0, found[0], [], now)
        store.record_vote(item_id, 3, "1", 1, found[0], [], now)
    return cfg


def bot(cfg: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, str(REPO / "bot.py"), "--config", str(cfg), "export", *args],
        capture_output=True,
        timeout=60,
        cwd=REPO,
        env={**os.environ},
    )


def test_csv_opens_with_bom_cyrillic_hangul_and_the_columns(tmp_path: Path) -> None:
    cfg = seed(tmp_path)
    out = tmp_path / "out.csv"
    result = bot(cfg, "--since", "30d", "-o", str(out))
    assert result.returncode == 0, result.stderr.decode()
    assert out.read_bytes().startswith(b"\xef\xbb\xbf"), "a BOM, so Excel reads UTF-8"
    with out.open(encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == list(EXPORT_COLUMNS)
    assert [(r["title"], r["rules"]) for r in rows] == [("КНДР и Россия", "military"), ("북한의 파병", "korean")]
    ru = rows[0]
    assert (ru["source"], ru["source_url"], ru["language"]) == ("Новости", URL, "ru")
    assert (ru["votes_up"], ru["votes_down"], ru["score"], ru["story_id"]) == ("2", "1", "", "")
    assert ru["why"] == "military: DPRK: «КНДР»" and ru["link"] == "https://news.example/ru"
    assert "export: 2 matched items" in result.stderr.decode()


def test_jsonl_rule_filter_and_all(tmp_path: Path) -> None:
    cfg = seed(tmp_path)
    result = bot(cfg, "--format", "jsonl", "--rule", "korean")
    assert result.returncode == 0, result.stderr.decode()
    rows = [json.loads(line) for line in result.stdout.decode().splitlines()]
    assert [(r["title"], r["rules"], r["language"]) for r in rows] == [("북한의 파병", ["korean"], "ko")]
    every = bot(cfg, "--format", "jsonl", "--all")
    assert len(every.stdout.decode().splitlines()) == 4, "--all: matched or not, whatever their age"


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--format", "xlsx"], "--format must be one of csv, jsonl"), (["--since", "soon"], "--since")],
)
def test_bad_arguments_are_clear_errors(tmp_path: Path, args: list[str], message: str) -> None:
    result = bot(seed(tmp_path), *args)
    assert result.returncode == 1 and message in result.stderr.decode() and result.stdout == b""


def test_export_streams_rows_without_holding_them() -> None:
    produced = 0

    def rows() -> object:
        nonlocal produced
        for n in range(5000):
            produced += 1
            yield dict.fromkeys(EXPORT_COLUMNS, f"row {n}")

    class Probe(io.BytesIO):
        lag: ClassVar[list[int]] = []

        def write(self, data: bytes) -> int:  # type: ignore[override]
            self.lag.append(produced)
            return super().write(data)

    out = Probe()
    assert write_rows(rows(), out, "csv") == 5000  # type: ignore[arg-type]
    assert len(Probe.lag) > 100 and Probe.lag[len(Probe.lag) // 2] < 5000, "written while rows still come"
