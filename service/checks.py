"""``bot.py check``: validate everything a run would load, and report every problem at once."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import IO

from core.config import Config, load_config
from core.errors import Problem, ProblemError


def print_problems(what: str, exc: ProblemError, file: IO[str] | None = None) -> None:
    """``what: N problem(s)`` and one indented line per problem (file, line, path, message)."""
    out = file or sys.stderr
    print(f"{what}: {len(exc.problems)} problem(s)", file=out)
    for problem in exc.problems:
        print(f"  {problem}", file=out)


def load_config_or_report(path: str | Path, errors: IO[str] | None = None) -> Config | None:
    """The config at ``path``, or None after printing every problem in it (for the CLI commands)."""
    try:
        return load_config(path)
    except ProblemError as exc:
        print_problems("configuration", exc, errors)
        return None


def storage_problem(path: Path) -> str | None:
    """Why the store cannot be created or written at ``path``, or None when it can."""
    if path.exists():
        if path.is_dir():
            return f"storage path {path} is a directory, not a file"
        if not os.access(path, os.W_OK):
            return f"storage file {path} is not writable"
        from store.db import damage  # corrupt or truncated: the bot would refuse to start

        return damage(path)
    parent = path.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        return f"cannot create {path}: {parent} is not a directory"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"cannot create {path}: {parent} is not writable"
    return None


def check_all(config_path: str | Path) -> int:
    """Print every problem in the config and the rules; 0 when everything is valid."""
    from rules import load_rules

    problems: list[Problem] = []
    config: Config | None = None
    try:
        config = load_config(config_path)
    except ProblemError as exc:
        problems.extend(exc.problems)
    ruleset = None
    if config is not None:
        try:
            ruleset = load_rules(config.rule_files)
        except ProblemError as exc:
            problems.extend(exc.problems)
        message = storage_problem(config.storage_path)
        if message:
            problems.append(Problem(str(config.path), None, "storage.path", message))
    if problems:
        print(f"{len(problems)} problem(s):", file=sys.stderr)
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    assert config is not None and ruleset is not None
    print(
        f"OK: {config.path}: {len(config.feeds)} feeds, {len(config.subscriptions)} configured "
        f"subscriptions; {len(config.rule_files)} rule file(s) with {len(ruleset.rules)} rules and "
        f"{len(ruleset.groups)} groups; store at {config.storage_path}"
    )
    return 0
