"""`bot.py labels export`: the analysts' votes as labelled JSON Lines, against a real store file."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from chat.feedback import DOWN, SECRET_KEY, UP, cast_vote, sign
from cli.labels import run_export
from core.config import FeedConfig
from core.durations import parse_since
from core.models import Item
from store import ProcessedItem, Store

REPO = Path(__file__).resolve().parents[1]
REAL_DEV = REPO.parent / "shared" / "data" / "real_dev.jsonl"
NOW = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
URL = "https://news.example/rss"
ANALYST, OTHER, THIRD = 7, 9, 11


def voted_store(tmp_path: Path) -> Path:
    """A config whose store holds four voted items: 👎 by two of three, 👍, a tie, and an old 👍."""
    config = tmp_path / "config.yaml"
    config.write_text(
        f"storage: {{path: '{tmp_path / 'bot.sqlite3'}'}}\nrules: {{files: ['{REPO / 'rules'}/*.yaml']}}\n",
        encoding="utf-8",
    )
    with Store.open(tmp_path / "bot.sqlite3") as store:
        store.sync_feeds([FeedConfig(URL, "News", "en", 600)], NOW)
        feed = store.feed_by_url(URL)
        assert feed is not None
        items = [
            Item(URL, uid, title, f"About {uid}.", f"https://news.example/{uid}", NOW, "en", "News")
            for uid, title in [("p", "Parade"), ("t", "Troops"), ("f", "Tie"), ("o", "Old")]
        ]
        store.commit_poll(
            feed.id,
            NOW,
            ok=True,
            etag=None,
            last_modified=None,
            error=None,
            next_poll_at=NOW,
            items=[ProcessedItem(i, (), False) for i in items],
        )
        ids = dict(store.conn.execute("SELECT uid, id FROM items").fetchall())
        secret = store.secret(SECRET_KEY)
        for uid, user, label, when in [
            ("p", ANALYST, DOWN, NOW),
            ("p", OTHER, DOWN, NOW),
            ("p", THIRD, UP, NOW),
            ("t", ANALYST, UP, NOW),
            ("f", ANALYST, UP, NOW),
            ("f", OTHER, DOWN, NOW),
            ("o", ANALYST, UP, NOW - timedelta(days=40)),
        ]:
            assert "recorded" in cast_vote(store, sign(secret, ids[uid], label), user, str(user), when)
    return config


def export(config: Path, *args: str, since: str | None = None) -> tuple[int, list[dict[str, object]], str]:
    out, err = io.StringIO(), io.StringIO()
    code = run_export(str(config), None, since, now=NOW, out=out, errors=err)
    return code, [json.loads(line) for line in out.getvalue().splitlines()], err.getvalue()


def test_export_writes_one_majority_label_per_item_and_says_how_many_ties_it_left_out(tmp_path: Path) -> None:
    code, records, summary = export(voted_store(tmp_path))
    assert code == 0
    assert [(r["title"], r["label"]) for r in records] == [("Parade", 0), ("Troops", 1), ("Old", 1)]
    assert "3 items (2 👍, 1 👎); 1 tied items left out" in summary
    assert len({r["id"] for r in records}) == 3  # stable, distinct ids


def test_since_keeps_only_recent_votes(tmp_path: Path) -> None:
    code, records, _ = export(voted_store(tmp_path), since="30d")
    assert code == 0 and [r["title"] for r in records] == ["Parade", "Troops"]


@pytest.mark.parametrize(("text", "days"), [("30d", 30), ("30", 30), ("12h", 0.5), ("2w", 14)])
def test_since_reads_durations_and_bare_numbers_as_days(text: str, days: float) -> None:
    assert parse_since(text) == timedelta(days=days)


@pytest.mark.parametrize("text", ["0", "yesterday", "-3d", ""])
def test_a_bad_since_is_refused_by_name(text: str, tmp_path: Path) -> None:
    code, records, err = export(voted_store(tmp_path), since=text or " ")
    assert code == 1 and records == [] and "--since" in err


def test_the_export_is_in_the_format_of_the_labelled_sets(tmp_path: Path) -> None:
    _, records, _ = export(voted_store(tmp_path))
    assert set(records[0]) >= {"id", "lang", "title", "summary", "label"}
    assert records[0]["lang"] == "en" and records[0]["summary"] == "About p." and records[0]["link"]
    if REAL_DEV.exists():  # the real development set is the format bot.py eval / train read
        with REAL_DEV.open(encoding="utf-8") as f:
            assert set(json.loads(f.readline())) == set(records[0])


def test_bot_py_labels_export_writes_the_file(tmp_path: Path) -> None:
    config = voted_store(tmp_path)
    target = tmp_path / "labels.jsonl"
    result = subprocess.run(
        [sys.executable, str(REPO / "bot.py"), "--config", str(config), "labels", "export", "-o", str(target)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env=os.environ.copy(),
    )
    assert result.returncode == 0, result.stderr
    assert [json.loads(line)["label"] for line in target.read_text(encoding="utf-8").splitlines()] == [0, 1, 1]
    assert f"written to {target}" in result.stderr
