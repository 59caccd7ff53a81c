"""Shared fixtures. Every server a test starts listens on 127.0.0.1 and stops with the test."""

from __future__ import annotations

import os
from collections.abc import Callable
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


_FIGURES: list[str] = []


@pytest.fixture
def figure() -> Callable[[str], None]:
    """Record a measured figure (a line of text); all of them are printed at the end of the run."""
    return _FIGURES.append


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _FIGURES:
        terminalreporter.section("figures")
        for line in _FIGURES:
            terminalreporter.write_line(line)
