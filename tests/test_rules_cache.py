"""The disk cache of parsed rule files (``bot.py match``'s start-up): reused while nothing changed,
never stale after an edit, and never in the way when broken or unwritable."""

from __future__ import annotations

from pathlib import Path

import pytest

import rules.cache
from core.errors import RuleError
from core.models import Item
from rules import load_rules

REPO = Path(__file__).resolve().parents[1]
RULES = """\
version: 1
groups:
  DPRK: {aliases: [КНДР, Пхеньян]}
  RUSSIA: {aliases: [Россия]}
rules:
  - name: pair
    all: [DPRK, RUSSIA]
"""
ITEM = Item("https://f.example/", "1", "Пхеньяну и России договор", "", None, None, None, "f")


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The files actually parsed (not served from the cache)."""
    seen: list[str] = []
    real = rules.cache.parse_file

    def counting(text: str, file: str) -> object:
        seen.append(file)
        return real(text, file)

    monkeypatch.setattr(rules.cache, "parse_file", counting)
    return seen


def test_a_second_load_is_served_from_the_cache_and_matches_the_same(tmp_path: Path, parses: list[str]) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(RULES, encoding="utf-8")
    first = load_rules([path], cache=tmp_path / "cache")
    second = load_rules([path], cache=tmp_path / "cache")
    assert parses == [str(path)]  # parsed once
    assert [m.rule for m in second.match(ITEM)] == [m.rule for m in first.match(ITEM)] == ["pair"]


def test_the_default_rules_round_trip(tmp_path: Path) -> None:
    files = sorted((REPO / "rules").glob("*.yaml"))
    plain = load_rules(files)
    load_rules(files, cache=tmp_path)
    cached = load_rules(files, cache=tmp_path)
    assert list(tmp_path.glob("*.pickle"))
    assert [r.name for r in cached.rules] == [r.name for r in plain.rules]
    assert cached.match(ITEM) == plain.match(ITEM)


def test_an_edit_is_parsed_again_never_a_stale_entry(tmp_path: Path, parses: list[str]) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(RULES, encoding="utf-8")
    load_rules([path], cache=tmp_path / "cache")
    path.write_text(RULES.replace("all: [DPRK, RUSSIA]", "all: [RUSSIA]"), encoding="utf-8")
    edited = load_rules([path], cache=tmp_path / "cache")
    assert len(parses) == 2
    only_russia = Item("https://f.example/", "2", "Россия сегодня", "", None, None, None, "f")
    assert [m.rule for m in edited.match(only_russia)] == ["pair"]


def test_a_broken_file_is_reported_every_time_not_cached(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(RULES.replace("[DPRK, RUSSIA]", "[DPRK, NOPE]"), encoding="utf-8")
    for _ in range(2):
        with pytest.raises(RuleError, match="NOPE"):
            load_rules([path], cache=tmp_path / "cache")


def test_a_corrupt_entry_is_ignored_and_replaced(tmp_path: Path, parses: list[str]) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(RULES, encoding="utf-8")
    folder = tmp_path / "cache"
    load_rules([path], cache=folder)
    (entry,) = folder.glob("*.pickle")
    entry.write_bytes(b"not a pickle")
    again = load_rules([path], cache=folder)
    assert [m.rule for m in again.match(ITEM)] == ["pair"]
    assert len(parses) == 2 and entry.read_bytes() != b"not a pickle"


def test_an_unwritable_cache_folder_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(RULES, encoding="utf-8")
    blocker = tmp_path / "file"
    blocker.write_text("x")  # a file where the folder should be: mkdir fails
    loaded = load_rules([path], cache=blocker / "cache")
    assert [m.rule for m in loaded.match(ITEM)] == ["pair"]


def test_the_key_changes_with_the_code_and_versions(monkeypatch: pytest.MonkeyPatch) -> None:
    key = rules.cache.cache_key(RULES, "r.yaml")
    assert rules.cache.cache_key(RULES, "other.yaml") != key
    rules.cache._fingerprint.cache_clear()
    monkeypatch.setattr(rules.cache.importlib.metadata, "version", lambda dist: "999")
    try:
        assert rules.cache.cache_key(RULES, "r.yaml") != key  # an upgraded pymorphy3 or dictionary
    finally:
        rules.cache._fingerprint.cache_clear()
