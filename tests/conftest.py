"""Shared fixtures. Every server a test starts listens on 127.0.0.1 and stops with the test."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.pgserver import Databases, PgServer, find_bindir

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


# -- PostgreSQL: one throw-away server a session, a fresh database a test (tests/pgserver.py) --------


@pytest.fixture(scope="session")
def pg_databases() -> Iterator[Databases]:
    """Fresh databases on ``TEST_POSTGRES_URL``, else on a server started for this session (and always
    stopped). Without server binaries the PostgreSQL cases are skipped, or fail when ``CI`` is set."""
    url = os.environ.get("TEST_POSTGRES_URL")
    server = None
    if not url:
        bindir = find_bindir()
        if bindir is None:
            reason = "no PostgreSQL server binaries (initdb, pg_ctl) on PATH or in /usr/lib/postgresql/*/bin"
            if os.environ.get("CI"):
                pytest.fail(f"{reason}: .ci/run installs them; CI must run the PostgreSQL cases", pytrace=False)
            pytest.skip(reason)
        server = PgServer(bindir).start()
        url = server.url()
    databases = Databases(url)
    try:
        yield databases
    finally:
        databases.close()
        if server is not None:
            server.stop()


@pytest.fixture
def pg_url(pg_databases: Databases) -> Iterator[str]:
    """A migrated PostgreSQL database holding no rows: one reused database, emptied after each test (or
    replaced by a fresh copy when the test changed its schema; tests/pgserver.py)."""
    yield pg_databases.reused()
    pg_databases.reset()


@pytest.fixture
def pg_empty_url(pg_databases: Databases) -> Iterator[str]:
    """A fresh, empty PostgreSQL database: the store migrates it on open."""
    url = pg_databases.create(migrated=False)
    yield url
    pg_databases.drop(url)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_target(request: pytest.FixtureRequest, tmp_path: Path) -> Path | str:
    """Where a test's store lives, once per backend (the test id shows which): an SQLite file in
    ``tmp_path``, or a fresh PostgreSQL database. ``Store.open(store_target)`` opens it again after a
    "restart" as the same store."""
    if request.param == "sqlite":
        return tmp_path / "bot.sqlite3"
    return str(request.getfixturevalue("pg_url"))


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
