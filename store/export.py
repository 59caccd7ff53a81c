"""The export file of ``bot.py export`` (cli/export.py) and of ``/export`` (chat/handlers.py): the stored items
an analyst wants in a spreadsheet, with why each matched.

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
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import IO, Any, Literal

from store import Store
from store.backend import Connection
from store.search import EXPORT_COLUMNS, export_rows

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
