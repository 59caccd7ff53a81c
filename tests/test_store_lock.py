"""One process per store: a second ``run`` (or ``backfill``) exits 1 with one line naming the first one's
pid; read-only commands still work; two processes opening a fresh store at once both succeed.

Before: two ``bot.py run`` on one store both ran without a warning (every alert sent twice), and on a
fresh store the second died with "table feeds already exists".
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from store import Store, StoreError
from store.lock import lock_path
from tgemu import BotApiEmulator

REPO = Path(__file__).resolve().parents[1]
TOKEN = "31337:LOCK-token"
ENV = {**os.environ, "TELEGRAM_BOT_TOKEN": TOKEN}


@pytest.fixture
def emu() -> Iterator[BotApiEmulator]:
    with BotApiEmulator(TOKEN) as e:
        e.add_chat(100, "private")
        yield e


def write_config(tmp_path: Path, emu: BotApiEmulator) -> Path:
    config = tmp_path / "config.yaml"
    config.write_text(
        f"telegram: {{base_url: '{emu.base_url}'}}\n"
        f"storage: {{path: '{tmp_path / 'bot.sqlite3'}'}}\n"
        f"rules: {{files: ['{REPO / 'rules'}/*.yaml']}}\n"
        "feeds: [{url: 'http://127.0.0.1:9/feed.xml', name: Local}]\n"
        "subscriptions: [{chat: 100, mode: both}]\n",
        encoding="utf-8",
    )
    return config


def bot(config: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(REPO / "bot.py"), "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=ENV,
        cwd=REPO,
    )


def test_a_second_run_on_one_store_exits_1_naming_the_first(tmp_path: Path, emu: BotApiEmulator) -> None:
    config = write_config(tmp_path, emu)
    first = subprocess.Popen(
        [sys.executable, str(REPO / "bot.py"), "--config", str(config), "run"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=ENV,
        cwd=REPO,
    )
    try:
        deadline = time.monotonic() + 60
        while not any(method == "getUpdates" for _, method, _ in list(emu.requests)):  # the first one is running
            assert first.poll() is None, "the first run exited"
            assert time.monotonic() < deadline, "the first run never polled Telegram"
            time.sleep(0.1)
        try:
            second = bot(config, "run", timeout=30)
        except subprocess.TimeoutExpired:
            pytest.fail("a second bot.py run on the same store kept running beside the first")
        assert second.returncode == 1
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1, second.stderr
        assert f"pid {first.pid}" in lines[0] and "bot.sqlite3" in lines[0]
        assert first.poll() is None, "the first one runs on"
    finally:
        first.terminate()
        first.wait(timeout=30)


def test_read_only_commands_work_beside_the_running_bot(tmp_path: Path, emu: BotApiEmulator) -> None:
    config = write_config(tmp_path, emu)
    jsonl = tmp_path / "items.jsonl"
    jsonl.write_text('{"title": "КНДР и Россия подписали военное соглашение", "summary": ""}\n', encoding="utf-8")
    with Store.open(tmp_path / "bot.sqlite3", exclusive=True):  # this test process plays the running bot
        assert lock_path(tmp_path / "bot.sqlite3").read_text().strip() == str(os.getpid())
        for args in (("check",), ("digest", "--chat", "100", "--dry-run"), ("match", "--input", str(jsonl))):
            result = bot(config, *args)
            assert result.returncode == 0, (args, result.stderr)
        backfill = bot(config, "backfill", "--no-progress")
        assert backfill.returncode == 1 and f"pid {os.getpid()}" in backfill.stderr
        with pytest.raises(StoreError, match=f"in use by another bot process \\(pid {os.getpid()}\\)"):
            Store.open(tmp_path / "bot.sqlite3", exclusive=True).close()  # a second holder in one process, too
    Store.open(tmp_path / "bot.sqlite3", exclusive=True).close()  # released on close


def test_processes_opening_a_fresh_store_at_once_all_succeed(tmp_path: Path) -> None:
    errors: list[str] = []
    for n in range(10):
        path = tmp_path / f"fresh{n}.sqlite3"
        barrier = threading.Barrier(4)

        def open_it(path: Path = path, barrier: threading.Barrier = barrier) -> None:
            barrier.wait()
            try:
                Store.open(path).close()
            except StoreError as exc:
                errors.append(str(exc))

        threads = [threading.Thread(target=open_it) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == []
