"""Shared fixtures. Every server a test starts listens on 127.0.0.1 and stops with the test."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# As bot.py does: python-telegram-bot 22 warns on int retry_after unless this opt-in is set.
os.environ.setdefault("PTB_TIMEDELTA", "true")

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture
def repo() -> Path:
    return REPO


@pytest.fixture
def seed_article() -> str:
    path = SHARED / "seed-article.txt"
    if not path.is_file():
        pytest.skip("../shared/seed-article.txt is not beside the checkout")
    return path.read_text(encoding="utf-8")
