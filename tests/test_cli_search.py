"""`bot.py search` as a user runs it (a subprocess over a real store): inflections, particles, errors."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core.config import FeedConfig
from core.models import Hit, Item, Match
from store import ProcessedItem, Store

REPO = Path(__file__).resolve().parents[1]
URL = "https://news.example/rss"
RULES = "version: 1\ngroups:\n  DPRK: {aliases: [КНДР]}\nrules:\n  - name: military\n    all: [DPRK]\n"
MATCH = Match("military", "instant", (Hit("DPRK", "title", 0, 4, "КНДР"),))


def seed(tmp_path: Path, items: list[tuple[Item, tuple[Match, ...]]], at: datetime | None = None) -> Path:
    (tmp_path / "rules.yaml").write_text(RULES, encoding="utf-8")
    cfg = tmp_path / "config.yaml"
    cfg.write_text(
        f"rules: {{files: [rules.yaml]}}\nstorage: {{path: bot.sqlite3}}\nfeeds: [{URL}]\n", encoding="utf-8"
    )
    now = at or datetime.now(UTC)
    with Store.open(tmp_path / "bot.sqlite3") as store:
        store.sync_feeds([FeedConfig(URL, "News", None, 600)], now)
        feed = store.feed_by_url(URL)
        assert feed is not None
        store.commit_poll(
            feed.id,
            now,
            ok=True,
            etag=None,
            last_modified=None,
            error=None,
            next_poll_at=now,
            items=[ProcessedItem(i, m, True) for i, m in items],
        )
    return cfg


def item(uid: str, title: str) -> Item:
    return Item(URL, uid, title, "", f"https://news.example/{uid}", None, None, "News")


def bot(cfg: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(REPO / "bot.py"), "--config", str(cfg), "search", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env={**os.environ},
    )


def test_search_finds_inflected_russian_and_korean_with_particles_and_says_why(tmp_path: Path) -> None:
    cfg = seed(
        tmp_path,
        [
            (item("ru", "КНДР: делегация в Пхеньяне"), (MATCH,)),
            (item("ko", "북한의 병력 파병"), ()),
            (item("x", "Погода в Москве"), ()),
        ],
    )
    ru = bot(cfg, "Пхеньян")
    assert ru.returncode == 0, ru.stderr
    assert "КНДР: делегация в Пхеньяне" in ru.stdout and "https://news.example/ru" in ru.stdout
    assert "military: DPRK: «КНДР»" in ru.stdout and "search: 1 result" in ru.stderr
    ko = bot(cfg, "북한")
    assert "북한의 병력 파병" in ko.stdout and "(no rule matched)" in ko.stdout
    assert "Погода" not in ru.stdout + ko.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-футбол"], "only exclusions"),
        (['"Пхеньян'], "not closed"),
        (["Пхеньян", "--days", "0"], "--days must be at least 1"),
    ],
)
def test_search_refuses_what_it_cannot_search_with_a_clear_error(tmp_path: Path, args: list[str], message: str) -> None:
    cfg = seed(tmp_path, [])
    result = bot(cfg, *args)
    assert result.returncode == 1 and message in result.stderr and result.stdout == ""


def test_search_days_and_limit(tmp_path: Path) -> None:
    cfg = seed(tmp_path, [(item("old", "Пхеньян давно"), ())], at=datetime.now(UTC) - timedelta(days=40))
    with Store.open(tmp_path / "bot.sqlite3") as store:
        feed = store.feed_by_url(URL)
        assert feed is not None
        now = datetime.now(UTC)
        store.commit_poll(
            feed.id,
            now,
            ok=True,
            etag=None,
            last_modified=None,
            error=None,
            next_poll_at=now,
            items=[ProcessedItem(item(f"n{i}", f"Пхеньян сегодня {i}"), (), True) for i in range(3)],
        )
    recent = bot(cfg, "Пхеньян", "--days", "30")
    assert "давно" not in recent.stdout and recent.stdout.count("Пхеньян сегодня") == 3
    limited = bot(cfg, "Пхеньян", "--limit", "2")
    assert limited.stdout.splitlines()[0].endswith("Пхеньян сегодня 2"), "newest first"
    assert limited.stdout.count("Пхеньян") == 2 and "more: raise --limit" in limited.stderr


def test_exclusions_and_phrases_from_the_shell(tmp_path: Path) -> None:
    cfg = seed(
        tmp_path,
        [(item("a", "Сборная Пхеньяна проиграла"), ()), (item("b", "Переговоры в Пхеньяне"), ())],
    )
    excluded = bot(cfg, "Пхеньян", "-сборная")
    assert excluded.returncode == 0, excluded.stderr
    assert "Переговоры" in excluded.stdout and "Сборная" not in excluded.stdout
    phrase = bot(cfg, "-сборная пхеньяна", "Пхеньян")  # one argv word with a space: an excluded phrase
    assert "Переговоры" in phrase.stdout and "Сборная" not in phrase.stdout
    assert "Сборная" in bot(cfg, "пхеньяна", "сборная").stdout, "two words: in any order"
    assert "Сборная" not in bot(cfg, "пхеньяна сборная").stdout, "one argv word: a phrase, in its order"
    assert bot(cfg, "--days", "3", "Пхеньян", "--limit", "1").stdout.count("Пхеньян") == 1
