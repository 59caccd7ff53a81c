"""The code stays ruff- and mypy-clean: CI runs the linters as part of the suite."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "command",
    [
        ["ruff", "check", "."],
        ["ruff", "format", "--check", "."],
        [sys.executable, "-m", "mypy"],
    ],
    ids=["ruff-check", "ruff-format", "mypy-strict"],
)
def test_linters_pass(command: list[str]) -> None:
    if command[0] == "ruff" and shutil.which("ruff") is None:
        pytest.skip("ruff is not installed (pip install -e '.[test]')")
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


# The packages of the running bot and its stages, none of which may import the command line (cli/, bot.py):
# what a command shares with the running bot lives below both (e.g. store/export.py, core/durations.py).
BELOW_CLI = ("core", "watchers", "rules", "store", "delivery", "chat", "service")


def _imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names


def test_nothing_below_the_command_line_imports_it() -> None:
    offenders = [
        f"{path.relative_to(REPO)} imports {name}"
        for package in BELOW_CLI
        for path in sorted((REPO / package).rglob("*.py"))
        for name in sorted(_imported(path) & {"cli", "bot"})
    ]
    assert offenders == [], "imports must point down (bot.py → cli → service → stages):\n" + "\n".join(offenders)
