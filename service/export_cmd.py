"""``bot.py export --since 30d [--rule R] [--all] [--format csv|jsonl] [-o FILE]`` and the file ``/export``
sends: the stored items an analyst wants in a spreadsheet, with why each matched.

Columns (store/search.py ``EXPORT_COLUMNS``): item id, title, link, source (feed name) and its URL,
language, published, seen, rules, why, score (when the matches carry one), story id (when stories are
recorded), 👍 and 👎 counts. CSV is UTF-8 *with a byte-order mark*: without it Excel reads UTF-8 as the
local code page and Cyrillic and Hangul come out as mojibake; LibreOffice and Python's ``csv`` (with
``encoding="utf-8-sig"``) read it either way. JSON Lines is one object a line, for scripts.

Rows are streamed from one query straight to the file (store/search.py ``export_rows``), so 100,000 items
never sit in memory; ``bench/search.py`` measures the time and peak memory.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any, Literal

from service.checks import load_config_or_report, open_store_or_report
from service.labels_cmd import parse_since
from store import Store
from store.backend import Connection
from store.search import EXPORT_COLUMNS, export_rows

EXIT_OK, EXIT_PROBLEM = 0, 1
Format = Literal["csv", "jsonl"]
FORMATS: tuple[Format, ...] = ("csv", "jsonl")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def write_rows(rows: Iterable[dict[str, Any]], out: IO[bytes], fmt: Format) -> int:
    """Write ``rows`` to the binary stream ``out`` as CSV (UTF-8 with BOM) or JSON Lines; returns the count."""
    n = 0
    if fmt == "csv":
        text = io.TextIOWrapper(out, encoding="utf-8-sig", newline="", write_through=True)
        try:
            writer = csv.writer(text)
            writer.writerow(EXPORT_COLUMNS)
            for row in rows:
                writer.writerow([_cell(row[c]) for c in EXPORT_COLUMNS])
                n += 1
            text.flush()
        finally:
            text.detach()  # leave ``out`` open: the caller owns it
        return n
    for row in rows:
        out.write(json.dumps(row, ensure_ascii=False).encode("utf-8") + b"\n")
        n += 1
    return n


def export(
    conn: Connection,
    out: IO[bytes],
    fmt: Format,
    *,
    since: datetime | None,
    rule: str | None = None,
    matched_only: bool = True,
) -> int:
    return write_rows(export_rows(conn, since=since, rule=rule, matched_only=matched_only), out, fmt)


def export_file(
    store_target: Path | str, target: Path, fmt: Format, *, since: datetime | None, rule: str | None = None
) -> int:
    """Export to ``target`` through a store connection of its own (``/export`` runs this in a worker
    thread beside the running bot, which keeps using its own connection): ``store.target`` of either
    backend. The export only reads; the store is opened without the one-process lock."""
    with Store.open(store_target) as store, target.open("wb") as out:
        return export(store.conn, out, fmt, since=since, rule=rule)


def run_export(
    config_path: str,
    *,
    since: str | None,
    rule: str | None,
    fmt: str,
    output: str | None,
    include_all: bool = False,
    now: datetime | None = None,
    out: IO[bytes] | None = None,
    errors: IO[str] | None = None,
) -> int:
    errors = errors or sys.stderr
    if fmt not in FORMATS:
        print(f"error: --format must be one of {', '.join(FORMATS)}, got {fmt!r}", file=errors)
        return EXIT_PROBLEM
    try:
        period: timedelta | None = parse_since(since) if since else None
    except ValueError as exc:
        print(f"error: --since: {exc}", file=errors)
        return EXIT_PROBLEM
    config = load_config_or_report(config_path, errors)
    if config is None:
        return EXIT_PROBLEM
    store = open_store_or_report(config, errors)
    if store is None:
        return EXIT_PROBLEM
    start = (now or datetime.now(UTC)) - period if period else None
    try:
        if output:
            try:
                with Path(output).open("wb") as f:
                    n = export(store.conn, f, fmt, since=start, rule=rule, matched_only=not include_all)
            except OSError as exc:
                print(f"error: cannot write {output}: {exc.strerror}", file=errors)
                return EXIT_PROBLEM
        else:
            target = out or sys.stdout.buffer
            n = export(store.conn, target, fmt, since=start, rule=rule, matched_only=not include_all)
            target.flush()
    finally:
        store.close()
    what = "items" if include_all else "matched items" if rule is None else f"items matched by {rule}"
    print(f"export: {n} {what}" + (f" written to {output}" if output else ""), file=errors)
    return EXIT_OK
