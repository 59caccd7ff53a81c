"""``bot.py backfill``: poll every enabled feed once now, due or not, without sending anything.

The feeds go through the bot's own poll cycle (``Pipeline.run_cycle`` with ``feeds=``): new items are
stored and matched, alerts are queued in the outbox for ``bot.py run`` to send, a new feed's first poll
applies the backlog policy, and an item seen before is never processed twice. Feeds retired by a 410 Gone
are skipped, as the bot skips them. A progress bar over the feeds is drawn on stderr when it is a
terminal; the summary goes to stdout and each failing feed to stderr. Exit 1 when any feed failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import IO

from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from cli.checks import load_config_or_report
from core.config import PollingConfig
from core.models import Feed
from rules import RuleSet
from service.enrich import EnrichPolicy
from service.pipeline import CycleReport, Pipeline
from store import Store
from watchers import FeedPoll, PollSettings, make_client

EXIT_OK, EXIT_PROBLEM = 0, 1


def backfill_feeds(store: Store) -> list[Feed]:
    """Every feed the bot polls: enabled and not retired, whatever its next-poll time."""
    retired = {f.id for f in store.retired_feeds()}
    return [f for f in store.all_feeds(enabled_only=True) if f.id not in retired]


async def backfill(
    store: Store,
    ruleset: RuleSet,
    polling: PollingConfig,
    feeds: Sequence[Feed],
    now: datetime,
    on_feed_done: Callable[[FeedPoll], object] | None = None,
    enrich: EnrichPolicy | None = None,
) -> CycleReport:
    """One poll cycle over exactly ``feeds`` (due or not), through the bot's pipeline."""
    async with make_client(PollSettings.from_config(polling)) as client:
        pipeline = Pipeline(store, client, lambda: ruleset, polling, enrich)
        return await pipeline.run_cycle(now, feeds=feeds, on_feed_done=on_feed_done)


def summary(report: CycleReport) -> str:
    """``polled 25 feeds: 22 ok, 1 not modified, 2 failed; 340 new items, 12 matched, 12 queued``"""
    feeds = "feed" if report.feeds_due == 1 else "feeds"
    return (
        f"polled {report.feeds_due} {feeds}: {report.feeds_ok} ok, {report.feeds_not_modified} not modified, "
        f"{report.feeds_failed} failed; {report.new_items} new items, {report.matched_items} matched, "
        f"{report.queued} queued"
    )


def run_backfill(
    config_path: str, *, progress: bool = True, out: IO[str] | None = None, errors: IO[str] | None = None
) -> int:
    out, errors = out or sys.stdout, errors or sys.stderr
    config = load_config_or_report(config_path, errors)
    if config is None:
        return EXIT_PROBLEM
    from service.app import prepare  # rules, storage check, store, config feeds and subscriptions synced

    now = datetime.now(UTC)
    state = prepare(config, now, exclusive=True)
    if state is None:
        return EXIT_PROBLEM
    try:
        feeds = backfill_feeds(state.store)
        skipped = len(state.store.retired_feeds())
        show = progress and errors.isatty()
        with (
            tqdm(
                total=len(feeds), file=errors, disable=not show, unit="feed", desc="backfill", postfix={"failed": 0}
            ) as bar,
            logging_redirect_tqdm() if show else contextlib.nullcontext(),
        ):
            failed = 0

            def tick(poll: FeedPoll) -> None:
                nonlocal failed
                if poll.outcome == "error":
                    failed += 1
                    bar.set_postfix(failed=failed, refresh=False)
                bar.update()

            report = asyncio.run(
                backfill(state.store, state.rules, config.polling, feeds, now, tick, EnrichPolicy.from_config(config))
            )
    finally:
        state.store.close()
    for url, error in report.errors:
        print(f"failed: {url}: {error}", file=errors)
    if skipped:
        print(f"skipped {skipped} retired feed(s) (410 Gone; /feed_add revives one)", file=errors)
    print(summary(report), file=out)
    return EXIT_PROBLEM if report.feeds_failed else EXIT_OK
