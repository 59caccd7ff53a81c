"""``bot.py search QUERY [--days N] [--limit N]``: the archive search of ``/search`` on the command line.

Same query language and index as the chat command (store/search.py); results newest first, one block
each: date, source, title, link, and the rules that matched with why. Exit 1 with a clear message for a
query that cannot be searched (e.g. only ``-exclusions``) or a store that cannot be opened.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from typing import IO

from cli.checks import configured_store_or_report
from store.search import QueryError, parse_query, search

EXIT_OK, EXIT_PROBLEM = 0, 1


def run_search(
    config_path: str,
    text: str,
    *,
    days: int | None = None,
    limit: int = 20,
    now: datetime | None = None,
    out: IO[str] | None = None,
    errors: IO[str] | None = None,
) -> int:
    out, errors = out or sys.stdout, errors or sys.stderr
    try:
        query = parse_query(text)
    except QueryError as exc:
        print(f"error: query: {exc}", file=errors)
        return EXIT_PROBLEM
    if days is not None and days <= 0:
        print(f"error: --days must be at least 1, got {days}", file=errors)
        return EXIT_PROBLEM
    if limit <= 0:
        print(f"error: --limit must be at least 1, got {limit}", file=errors)
        return EXIT_PROBLEM
    store = configured_store_or_report(config_path, errors)
    if store is None:
        return EXIT_PROBLEM
    since = (now or datetime.now(UTC)) - timedelta(days=days) if days else None
    try:
        found, more = search(store.conn, query, since=since, limit=limit)
    finally:
        store.close()
    for f in found:
        when = (f.item.published or f.seen_at).strftime("%Y-%m-%d %H:%M")
        print(f"{when}  {f.item.feed_name or f.item.feed_url}  {f.item.title}", file=out)
        if f.item.link:
            print(f"    {f.item.link}", file=out)
        for m in f.matches:
            print(f"    {m.rule}: {m.why_text()}", file=out)
        if not f.matches:
            print("    (no rule matched)", file=out)
    period = f" in the last {days} days" if days else ""
    shown = f"{len(found)} result{'' if len(found) == 1 else 's'}{period}"
    print(f"search: {shown}" + (f" (more: raise --limit above {limit})" if more else ""), file=errors)
    return EXIT_OK
