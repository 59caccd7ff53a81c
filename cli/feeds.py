"""``bot.py feeds import FILE.opml`` and ``bot.py feeds export [-o FILE]``: the feed list as OPML.

Import adds the file's feeds to the store and revives those retired by 410 Gone (as /feed_add does,
without fetching unless ``--check``), prints one line per unusable outline on stderr and the summary
on stdout; exit 1 when anything was an error. Export writes every enabled feed (config and added ones)
as OPML to stdout or a file.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from tqdm import tqdm

from chat.feed_lists import ImportReport, export_opml, import_feeds
from cli.checks import load_config_or_report, open_store_or_report
from core.config import Config
from core.opml import MAX_OPML_BYTES, OpmlResult, parse_opml
from store import Store
from watchers import PollSettings, make_client

EXIT_OK, EXIT_PROBLEM = 0, 1


def _read(path: str) -> bytes | str:
    """The file's bytes, or why it cannot be read."""
    if path == "-":
        return sys.stdin.buffer.read(MAX_OPML_BYTES + 1)
    try:
        with open(path, "rb") as f:
            return f.read(MAX_OPML_BYTES + 1)  # one byte more than allowed, so "too big" is seen
    except FileNotFoundError:
        return f"{path}: no such file"
    except IsADirectoryError:
        return f"{path}: is a directory"
    except OSError as exc:
        return f"{path}: cannot read: {exc.strerror}"


async def _import(
    config: Config, store: Store, parsed: OpmlResult, check: bool, tick: Callable[[], object]
) -> ImportReport:
    report = ImportReport(errors=list(parsed.problems))
    now = datetime.now(UTC)
    if not check:
        return await import_feeds(store, config, parsed.feeds, "import", now, tick=tick, report=report)
    async with make_client(PollSettings.from_config(config.polling)) as client:
        return await import_feeds(store, config, parsed.feeds, "import", now, client=client, tick=tick, report=report)


def run_import(
    config_path: str,
    path: str,
    *,
    check: bool = False,
    progress: bool = True,
    out: IO[str] | None = None,
    errors: IO[str] | None = None,
) -> int:
    out, errors = out or sys.stdout, errors or sys.stderr
    config = load_config_or_report(config_path, errors)
    if config is None:
        return EXIT_PROBLEM
    data = _read(path)
    if isinstance(data, str):
        print(f"error: {data}", file=errors)
        return EXIT_PROBLEM
    store = open_store_or_report(config, errors)
    if store is None:
        return EXIT_PROBLEM
    parsed = parse_opml(data)
    show = progress and errors.isatty()
    try:
        with tqdm(total=len(parsed.feeds), file=errors, disable=not show, unit="feed", desc="import") as bar:
            report = asyncio.run(_import(config, store, parsed, check, bar.update))
    finally:
        store.close()
    for line in report.errors:
        print(f"{path}: {line}", file=errors)
    print(report.summary(), file=out)
    return EXIT_PROBLEM if report.errors else EXIT_OK


def run_export(
    config_path: str, output: str | None, *, out: IO[str] | None = None, errors: IO[str] | None = None
) -> int:
    out, errors = out or sys.stdout, errors or sys.stderr
    config = load_config_or_report(config_path, errors)
    if config is None:
        return EXIT_PROBLEM
    store = open_store_or_report(config, errors)
    if store is None:
        return EXIT_PROBLEM
    try:
        data, count = export_opml(store, config, datetime.now(UTC))
    finally:
        store.close()
    if output is None or output == "-":
        out.write(data.decode("utf-8"))
        out.flush()
        return EXIT_OK
    try:
        Path(output).write_bytes(data)
    except OSError as exc:
        print(f"error: cannot write {output}: {exc.strerror}", file=errors)
        return EXIT_PROBLEM
    print(f"{count} feeds written to {output}", file=errors)
    return EXIT_OK
