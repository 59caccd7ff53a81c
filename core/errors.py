"""Error types shared by loaders.

    ProblemError          -- one or more problems found while loading a file; carries them all
      ConfigError         -- in config.yaml
      RuleError           -- in a rule file (rules/*.yaml)

A :class:`Problem` names the file, the line (when known) and the dotted path of what was wrong, so
``bot.py check`` can print every problem at once instead of stopping at the first (:func:`print_problems`,
for the commands and the bot's start-up alike).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass
from typing import IO


@dataclass(frozen=True, slots=True)
class Problem:
    file: str
    line: int | None
    path: str  # e.g. "feeds[3].interval" or "rules[dprk_russia].near"
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class ProblemError(Exception):
    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class ConfigError(ProblemError):
    pass


class RuleError(ProblemError):
    pass


def print_problems(what: str, exc: ProblemError, file: IO[str] | None = None) -> None:
    """``what: N problem(s)`` and one indented line per problem (file, line, path, message)."""
    out = file or sys.stderr
    print(f"{what}: {len(exc.problems)} problem(s)", file=out)
    for problem in exc.problems:
        print(f"  {problem}", file=out)
