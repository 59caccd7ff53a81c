"""``bot.py export --since 30d [--rule R] [--all] [--format csv|jsonl] [-o FILE]``: the stored items an
analyst wants in a spreadsheet, with why each matched.

The file itself (columns, CSV with a byte-order mark for Excel, JSON Lines, rows streamed from one
query) is store/export.py's, shared with the chat's ``/export``; this module is the command around it.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO

from cli.checks import configured_store_or_report
from core.durations import parse_since
from store.export import FORMATS, export

EXIT_OK, EXIT_PROBLEM = 0, 1


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
    store = configured_store_or_report(config_path, errors)
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
