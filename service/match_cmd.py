"""``bot.py match --input FILE``: match items from a JSON Lines file or an RSS/Atom/RDF feed file.

Output contract: one JSON object per item on stdout,
``{"id": …, "rules": [names], "priority": "instant"|"digest"|null, "why": {rule: {group: [texts]}}}``.
Exit 0 when the input was processed (even if nothing matched); exit 2 with a one-line error on stderr
for an unreadable or malformed input. A malformed JSONL line is reported with its number and skipped.
When stderr is a terminal, a progress bar is drawn there (stdout stays pure JSON Lines).
"""

from __future__ import annotations

import json
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

    result = parse_feed(data, feed_url=source, feed_name=Path(source).name)
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


def run_match(
    input_path: str,
    *,
    rule_paths: Sequence[str] | None,
    config_path: str,
    out: IO[str] | None = None,
    errors: IO[str] | None = None,
) -> int:
    out = out or sys.stdout
    errors = errors or sys.stderr
    try:
        # parsed rule files are cached on disk: a short run does not pay rule parsing every time
        paths = [Path(p) for p in rule_paths] if rule_paths else load_config(config_path).rule_files
        ruleset: RuleSet = load_rules(paths, cache=default_folder())
    except ProblemError as exc:
        print(
            f"cannot load rules: {exc.problems[0]}"
            + (f" (+{len(exc.problems) - 1} more; run `bot.py check`)" if len(exc.problems) > 1 else ""),
            file=errors,
        )
        return EXIT_PROBLEM
    try:
        with tqdm(file=errors, disable=not errors.isatty(), unit="item", desc="match", leave=False) as bar:
            for item_id, item in iter_input(input_path, errors, lambda n: bar.reset(total=n)):
                out.write(json.dumps(result_record(item_id, ruleset.match(item)), ensure_ascii=False) + "\n")
                bar.update()
    except BadInput as exc:
        print(f"error: {exc}", file=errors)
        return EXIT_BAD_INPUT
    out.flush()
    return EXIT_OK
