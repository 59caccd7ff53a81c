"""Per-item language from the letters of its text."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from core.lang import detect_lang

REAL_DEV = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real_dev.jsonl"


@pytest.mark.parametrize(
    ("name", "title", "summary", "lang"),
    [
        ("Russian", "КНДР направила в Россию военных строителей", "", "ru"),
        ("Korean", "북한, 러시아에 공병 추가 파병", "", "ko"),
        ("English", "North Korean troops in Kursk", "", "en"),
        ("Russian title with English names", "Docker Hub и GitHub перестали работать в России", "", "ru"),
        ("Korean quoting Russian", "북한 매체 «КНДР» 표기 논란에 대해 정부가 설명했다", "", "ko"),
        ("Latin title, Russian summary", "Breaking: Kim–Putin", "Пхеньян и Москва подписали договор", "ru"),
        ("Latin title, Korean summary", "KCNA", "조선중앙통신은 러시아 대표단 방문을 보도했다", "ko"),
        ("Ukrainian counts as Cyrillic", "Війська КНДР у Курській області", "", "ru"),
        ("digits only", "2026-05-01", "", "en"),
        ("empty", "", "", "en"),
    ],
)
def test_detect_lang(name: str, title: str, summary: str, lang: str) -> None:
    assert detect_lang(title, summary) == lang


def test_a_long_summary_is_read_only_at_its_start() -> None:
    assert detect_lang("Title", "Russia and North Korea " * 100 + "КНДР " * 5000) == "en"


@pytest.mark.skipif(not REAL_DEV.exists(), reason="the real development set is not here")
def test_real_titles_are_assigned_their_labelled_language() -> None:
    rows = [json.loads(line) for line in REAL_DEV.read_text(encoding="utf-8").splitlines() if line.strip()]
    total: Counter[str] = Counter(r["lang"] for r in rows)
    right: Counter[str] = Counter(r["lang"] for r in rows if detect_lang(r["title"]) == r["lang"])
    for lang in ("ru", "en", "ko"):
        assert right[lang] / total[lang] >= 0.99, (lang, right[lang], total[lang])
