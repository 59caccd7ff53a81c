"""A disk cache of parsed rule files, so ``bot.py match`` does not pay rule loading on every run.

Why: parsing the default rule file costs ~0.7–1.7 s (YAML composed twice in pure Python, and every
Russian alias's inflected forms generated with pymorphy3), nearly all of a short ``bot.py match`` run
(issue 16); the automaton built from the parsed files costs ~0.08 s and is not cached.

What is cached: the result of :func:`rules.language.parse_file` for one file's text, only when it had no
problem (a broken file is parsed, and reported, every time). The key is a SHA-256 of the file's name and
text, the source of the modules that decide what a rule file parses to (rules/language.py, morph.py,
text.py, this module), and the versions of Python, pymorphy3, its Russian dictionaries, PyStemmer and
PyYAML, so an edit, an upgrade or a new dictionary never reads a stale entry. An unreadable, corrupt
or foreign cache entry is ignored and rewritten; a cache folder that cannot be written is skipped.
Entries are pickles, so the folder must be the user's own (the default is under ``~/.cache``).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import logging
import os
import pickle
import sys
import tempfile
from pathlib import Path

from core.errors import Problem
from rules.language import RuleFile, parse_file

log = logging.getLogger(__name__)
_SOURCES = ("language.py", "morph.py", "text.py", "cache.py")
_DISTRIBUTIONS = ("pymorphy3", "pymorphy3-dicts-ru", "pystemmer", "pyyaml")


def default_folder() -> Path:
    """``$XDG_CACHE_HOME/dprk-ru-monitor/rules``, else ``~/.cache/dprk-ru-monitor/rules``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "dprk-ru-monitor" / "rules"


@functools.cache
def _fingerprint() -> bytes:
    digest = hashlib.sha256(sys.version.encode())
    here = Path(__file__).resolve().parent
    for name in _SOURCES:
        digest.update(name.encode() + b"\0" + (here / name).read_bytes())
    for dist in _DISTRIBUTIONS:
        try:
            version = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            version = "-"
        digest.update(f"{dist}={version}".encode())
    return digest.digest()


def cache_key(text: str, file: str) -> str:
    digest = hashlib.sha256(_fingerprint())
    digest.update(file.encode() + b"\0" + text.encode())
    return digest.hexdigest()


def parse_file_cached(text: str, file: str, folder: Path) -> tuple[RuleFile, list[Problem]]:
    """:func:`parse_file`, served from ``folder`` when this text was parsed before without problems."""
    entry = folder / f"{cache_key(text, file)}.pickle"
    try:
        cached = pickle.loads(entry.read_bytes())
        if isinstance(cached, RuleFile) and cached.file == file:
            return cached, []
    except FileNotFoundError:
        pass
    except Exception:  # corrupt, truncated or from an incompatible version: parse again and replace it
        log.info("rule_cache_unreadable path=%s", entry)
    parsed, problems = parse_file(text, file)
    if not problems:
        _write(entry, pickle.dumps(parsed, protocol=pickle.HIGHEST_PROTOCOL))
    return parsed, problems


def _write(entry: Path, data: bytes) -> None:
    """Atomically (a temporary file renamed into place), so a reader never sees half an entry."""
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=entry.parent, delete=False, suffix=".tmp") as tmp:
            tmp.write(data)
        Path(tmp.name).replace(entry)
    except OSError as exc:
        log.info("rule_cache_not_written path=%s error=%s", entry, exc)
