"""``bot.py labels export [-o FILE] [--since 30d]``: analysts' 👍/👎 votes as labelled JSON Lines.

The format is that of the labelled sets ``bot.py eval`` and ``bot.py train`` read (and of
``shared/data/real_dev.jsonl``): one JSON object a line with ``id``, ``lang``, ``title``, ``summary``,
``label`` (1 = 👍 on topic, 0 = 👎 not), ``source`` (the feed's name), ``published`` and ``link``. The
text is the item's as it was when voted on. Each item appears once, labelled by the majority of its
users' latest votes; an item with as many 👍 as 👎 is left out (the summary on stderr counts them).
``id`` is a stable 12-hex-digit hash of the feed URL and the item's id in the feed, so exports taken
at different times can be merged without duplicates.
"""

from __future__ import annotations

import hashlib
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from chat.feedback import Label, item_labels
from cli.checks import configured_store_or_report
from core.durations import parse_since

EXIT_OK, EXIT_PROBLEM = 0, 1


def label_record(label: Label) -> dict[str, object]:
    item = label.item
    key = hashlib.sha256(f"{item.feed_url}\n{item.uid}".encode()).hexdigest()[:12]
    return {
        "id": key,
        "lang": item.lang,
        "title": item.title,
        "summary": item.summary,
        "label": label.label,
        "source": item.feed_name or item.feed_url,
        "published": item.published.strftime("%Y-%m-%dT%H:%M:%S") if item.published else None,
        "link": item.link,
    }


def run_export(
    config_path: str,
    output: str | None,
    since: str | None,
    *,
    now: datetime | None = None,
    out: IO[str] | None = None,
    errors: IO[str] | None = None,
) -> int:
    out, errors = out or sys.stdout, errors or sys.stderr
    try:
        period = parse_since(since) if since else None
    except ValueError as exc:
        print(f"error: --since: {exc}", file=errors)
        return EXIT_PROBLEM
    store = configured_store_or_report(config_path, errors)
    if store is None:
        return EXIT_PROBLEM
    try:
        start = (now or datetime.now(UTC)) - period if period else None
        labels, ties = item_labels(store.votes(start))
    finally:
        store.close()
    lines = "".join(json.dumps(label_record(lab), ensure_ascii=False) + "\n" for lab in labels)
    if output:
        try:
            Path(output).write_text(lines, encoding="utf-8")
        except OSError as exc:
            print(f"error: cannot write {output}: {exc.strerror}", file=errors)
            return EXIT_PROBLEM
    else:
        out.write(lines)
    up = sum(1 for lab in labels if lab.label == 1)
    print(
        f"labels: {len(labels)} items ({up} 👍, {len(labels) - up} 👎)"
        + (f" written to {output}" if output else "")
        + f"; {ties} tied items left out",
        file=errors,
    )
    return EXIT_OK
