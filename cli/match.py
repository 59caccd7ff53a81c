"""``bot.py match --input FILE|DIR``: match items from a JSON Lines file or an RSS/Atom/RDF feed file,
or from every file of a directory.

Output contract: one JSON object per item on stdout,
``{"id": …, "rules": [names], "priority": "instant"|"digest"|null, "why": {rule: {group: [texts]}}}``.
Exit 0 when the input was processed (even if nothing matched); exit 2 with a one-line error on stderr
for an unreadable or malformed input. A malformed JSONL line is reported with its number and skipped.
When stderr is a terminal, a progress bar is drawn there (stdout stays pure JSON Lines).

A directory is its files in name order, exactly as if each were given in turn; a bad file is reported
and the others are still matched (exit 2 at the end). Its files are spread over a process pool
(``--workers``, default the cores): parsing and matching are pure Python under one GIL, so threads
would not add a core (measured, ``python3 bench/match.py --startup``). The workers are forked with the
compiled rules in memory (spawned, they loaded them again from the parsed-rule cache, ~0.4 s of a core
each; spawned still when another thread runs), and each returns a whole file's output lines;
results are written in file order, so the output is byte-identical for any number of workers.
"""

from __future__ import annotations

import itertools
import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO

from tqdm import tqdm

from core.config import load_config
from core.errors import ProblemError
from core.models import Item, Match
from rules import RuleSet, load_rules
from rules.cache import default_folder

EXIT_OK, EXIT_PROBLEM, EXIT_BAD_INPUT = 0, 1, 2


class BadInput(Exception):
    pass


def result_record(item_id: str, matches: Sequence[Match]) -> dict[str, object]:
    priority = None
    if matches:
        priority = "instant" if any(m.priority == "instant" for m in matches) else "digest"
    return {
        "id": item_id,
        "rules": [m.rule for m in matches],
        "priority": priority,
        "why": {m.rule: m.why() for m in matches},
    }


def _jsonl_items(lines: Iterator[str], source: str, errors: IO[str]) -> Iterator[tuple[str, Item]]:
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            print(f"{source}:{number}: skipped: malformed JSON: {exc.msg}", file=errors)
            continue
        if not isinstance(obj, dict):
            print(f"{source}:{number}: skipped: expected a JSON object", file=errors)
            continue
        title, summary = obj.get("title", ""), obj.get("summary", "")
        if not isinstance(title, str) or not isinstance(summary, str) or not (title or summary):
            print(f"{source}:{number}: skipped: needs a string 'title' and/or 'summary'", file=errors)
            continue
        item_id = obj.get("id", number)
        lang = obj.get("lang") if isinstance(obj.get("lang"), str) else None
        yield str(item_id), Item(feed_url=source, uid=str(item_id), title=title, summary=summary, lang=lang)


def _feed_items(data: bytes, source: str, on_total: Callable[[int], object]) -> Iterator[tuple[str, Item]]:
    from watchers.parse import parse_feed

    result = parse_feed(data, feed_url=source, feed_name=Path(source).name, keys=False)  # the uid is all it needs
    if result.error:
        raise BadInput(f"{source}: {result.error}")
    on_total(len(result.items))
    for item in result.items:
        yield item.uid, item


def _read(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise BadInput(f"{path}: no such file") from None
    except IsADirectoryError:
        raise BadInput(f"{path}: is a directory") from None
    except OSError as exc:
        raise BadInput(f"{path}: cannot read: {exc.strerror}") from None


def iter_input(
    path: str, errors: IO[str], on_total: Callable[[int], object] = lambda n: None
) -> Iterator[tuple[str, Item]]:
    """The file's items; ``on_total`` hears how many to expect (lines or entries) once the file is read."""
    data = _read(path)
    head = data.lstrip()[:1]
    if head == b"<":
        yield from _feed_items(data, path, on_total)
        return
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BadInput(f"{path}: not UTF-8 JSON Lines and not a feed (byte {exc.start})") from None
    if head and head not in (b"{", b"["):
        raise BadInput(f"{path}: neither JSON Lines (one object per line) nor an RSS/Atom/RDF feed")
    lines = text.splitlines()
    on_total(sum(1 for line in lines if line.strip()))
    yield from _jsonl_items(iter(lines), path, errors)


def _load(rule_paths: Sequence[str] | None, config_path: str) -> RuleSet:
    # parsed rule files are cached on disk: a short run (or a pool worker) does not pay rule parsing each time
    paths = [Path(p) for p in rule_paths] if rule_paths else load_config(config_path).rule_files
    return load_rules(paths, cache=default_folder())


def _match_lines(ruleset: RuleSet, path: str, errors: IO[str], on_total: Callable[[int], object]) -> Iterator[str]:
    for item_id, item in iter_input(path, errors, on_total):
        yield json.dumps(result_record(item_id, ruleset.match(item)), ensure_ascii=False) + "\n"


def input_files(folder: Path) -> list[str]:
    """A directory's input files in name order (hidden files and sub-directories left out)."""
    return sorted(str(p) for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))


_WORKER_RULES: RuleSet | None = None


def _worker_init(rule_paths: Sequence[str] | None, config_path: str) -> None:
    global _WORKER_RULES
    _WORKER_RULES = _load(rule_paths, config_path)


def _worker_init_with(ruleset: RuleSet) -> None:
    global _WORKER_RULES
    _WORKER_RULES = ruleset


def _worker_file(path: str) -> tuple[str, str, str | None]:
    """One file in a pool worker: (output text, diagnostics, the file's error or None)."""
    import io

    assert _WORKER_RULES is not None
    notes = io.StringIO()
    try:
        return "".join(_match_lines(_WORKER_RULES, path, notes, lambda n: None)), notes.getvalue(), None
    except BadInput as exc:
        return "", notes.getvalue(), str(exc)


def _file_results(
    files: Sequence[str], workers: int, rule_paths: Sequence[str] | None, config_path: str, ruleset: RuleSet
) -> Iterator[tuple[str, str, str | None]]:
    if workers <= 1 or len(files) <= 1:
        _worker_init_with(ruleset)
        yield from map(_worker_file, files)
        return
    import concurrent.futures
    import functools
    import multiprocessing
    import threading

    # fork while this process runs no other thread (no tqdm monitor, no SQLite here): the workers start with
    # the compiled rules in memory, where spawned ones each import the bot and load the rules again (~0.4 s
    # of a core each, bench/match.py --startup); spawn otherwise, as core/workers.py does
    fork = threading.active_count() == 1 and "fork" in multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if fork else "spawn")
    init: Callable[[], None] = (
        functools.partial(_worker_init_with, ruleset)
        if fork
        else functools.partial(_worker_init, rule_paths, config_path)
    )
    with concurrent.futures.ProcessPoolExecutor(min(workers, len(files)), mp_context=context, initializer=init) as pool:
        yield from pool.map(_worker_file, files)


def run_match(
    input_path: str,
    *,
    rule_paths: Sequence[str] | None,
    config_path: str,
    out: IO[str] | None = None,
    errors: IO[str] | None = None,
    workers: int | None = None,
) -> int:
    out = out or sys.stdout
    errors = errors or sys.stderr
    try:
        ruleset: RuleSet = _load(rule_paths, config_path)
    except ProblemError as exc:
        print(
            f"cannot load rules: {exc.problems[0]}"
            + (f" (+{len(exc.problems) - 1} more; run `bot.py check`)" if len(exc.problems) > 1 else ""),
            file=errors,
        )
        return EXIT_PROBLEM
    if input_path != "-" and Path(input_path).is_dir():
        return _run_folder(Path(input_path), ruleset, rule_paths, config_path, out, errors, workers)
    try:
        with tqdm(file=errors, disable=not errors.isatty(), unit="item", desc="match", leave=False) as bar:
            for line in _match_lines(ruleset, input_path, errors, lambda n: bar.reset(total=n)):
                out.write(line)
                bar.update()
    except BadInput as exc:
        print(f"error: {exc}", file=errors)
        return EXIT_BAD_INPUT
    out.flush()
    return EXIT_OK


def _run_folder(
    folder: Path,
    ruleset: RuleSet,
    rule_paths: Sequence[str] | None,
    config_path: str,
    out: IO[str],
    errors: IO[str],
    workers: int | None,
) -> int:
    files = input_files(folder)
    if not files:
        print(f"error: {folder}: no input files in this directory", file=errors)
        return EXIT_BAD_INPUT
    code = EXIT_OK
    results = _file_results(files, workers or os.cpu_count() or 1, rule_paths, config_path, ruleset)
    # the first file's result before the progress bar: the pool forks before tqdm's monitor thread exists
    results = itertools.chain([next(results)], results)
    with tqdm(files, file=errors, disable=not errors.isatty(), unit="file", desc="match", leave=False) as bar:
        for text, notes, error in results:
            errors.write(notes)
            if error is not None:
                print(f"error: {error}", file=errors)
                code = EXIT_BAD_INPUT
            out.write(text)
            bar.update()
    out.flush()
    return code
