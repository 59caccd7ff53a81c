"""One polling pass over due feeds: concurrent (bounded), isolated, never raising.

Each feed gets its own deadline and its own error handling, so a slow or broken feed never delays or
breaks the others. Back-off is a pure function of the feed's failure count. A body is parsed in the CPU
pool (:mod:`core.workers`; a process worker with ``polling.cpu_pool: process``), off the event loop, and
each feed's result is handed on as soon as it is ready (:func:`iter_polls`): nothing waits for, or
holds, the whole cycle.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
import zlib
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from core.models import Feed, Item
from core.workers import CpuPool
from watchers.fetch import FeedClient, FetchResult, PollSettings, fetch
from watchers.parse import parse_feed
from watchers.sources import read_source

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class FeedPoll:
    feed: Feed
    outcome: Literal["ok", "not_modified", "error"]
    items: tuple[Item, ...] = ()
    etag: str | None = None
    last_modified: str | None = None
    http_status: int | None = None
    error: str | None = None
    gone: bool = False
    retry_after: int | None = None
    elapsed: float = 0.0
    skipped_entries: int = 0
    state: str | None = None  # a non-RSS source's new state (watchers/sources.py); None keeps the old


def next_poll_at(feed: Feed, now: datetime, *, ok: bool, retry_after: int | None, backoff_max: int) -> datetime:
    """When to poll ``feed`` next.

    Healthy: ``interval`` after now. Failing (``feed.failures`` already counts this failure):
    ``interval × 2^(failures-1)``, capped at ``backoff_max`` (but never below the interval), with up to
    10 % deterministic jitter per feed so many failing feeds do not retry in lock-step; never earlier
    than the server's Retry-After.
    """
    if ok:
        delay = float(feed.interval)
    else:
        exponent = min(max(feed.failures - 1, 0), 20)
        delay = min(feed.interval * (2**exponent), max(backoff_max, feed.interval))
        jitter = (zlib.crc32(feed.url.encode()) % 1000) / 10000  # 0–10 %, stable per feed
        delay *= 1 + jitter
    if retry_after:
        delay = max(delay, float(retry_after))
    return now + timedelta(seconds=delay)


async def poll_one(client: FeedClient, feed: Feed, settings: PollSettings, pool: CpuPool | None = None) -> FeedPoll:
    """Fetch and parse one feed (the parse in ``pool``, else on the loop); never raises."""
    started = time.perf_counter()
    try:
        if feed.kind != "rss":  # telegram channels and pages: watchers/sources.py, through the same fetch
            read = await read_source(client, feed, settings)
            return FeedPoll(
                feed,
                read.outcome,
                items=read.items,
                etag=read.etag,
                last_modified=read.last_modified,
                http_status=read.http_status,
                error=read.error,
                gone=read.gone,
                retry_after=read.retry_after,
                elapsed=time.perf_counter() - started,
                skipped_entries=read.skipped,
                state=read.state,
            )
        result: FetchResult = await fetch(client, feed.url, settings, etag=feed.etag, last_modified=feed.last_modified)
        if result.outcome != "ok":
            return FeedPoll(
                feed,
                result.outcome,
                etag=result.etag,
                last_modified=result.last_modified,
                http_status=result.http_status,
                error=result.error,
                gone=result.gone,
                retry_after=result.retry_after,
                elapsed=time.perf_counter() - started,
            )
        parse = functools.partial(
            parse_feed,
            result.body,
            feed_url=feed.url,
            feed_name=feed.name,
            lang=feed.lang,
            content_type=result.content_type,
            ignore_params=feed.ignore_params,
        )
        parsed = parse() if pool is None else await pool.run_portable(parse)  # a process worker, if so configured
        if parsed.error:
            return FeedPoll(
                feed, "error", http_status=result.http_status, error=parsed.error, elapsed=time.perf_counter() - started
            )
        return FeedPoll(
            feed,
            "ok",
            items=parsed.items,
            etag=result.etag,
            last_modified=result.last_modified,
            http_status=result.http_status,
            elapsed=time.perf_counter() - started,
            skipped_entries=parsed.skipped,
        )
    except Exception as exc:  # the last line of isolation: one feed never breaks the cycle
        log.exception("feed_poll_crashed url=%s", feed.url)
        return FeedPoll(
            feed, "error", error=f"internal error: {type(exc).__name__}", elapsed=time.perf_counter() - started
        )


async def iter_polls(
    client: FeedClient, feeds: Sequence[Feed], settings: PollSettings, pool: CpuPool | None = None
) -> AsyncIterator[FeedPoll]:
    """Poll ``feeds`` with at most ``settings.concurrency`` in flight, yielding each result as it is ready.

    Back-pressure: a finished feed waits for the consumer before its worker takes the next feed, so at
    most ``concurrency`` results are held however many feeds there are and however slow the consumer.
    """
    async for _, poll in _indexed_polls(client, feeds, settings, pool):
        yield poll


async def _indexed_polls(
    client: FeedClient, feeds: Sequence[Feed], settings: PollSettings, pool: CpuPool | None
) -> AsyncIterator[tuple[int, FeedPoll]]:
    pending = iter(enumerate(feeds))
    ready: asyncio.Queue[tuple[int, FeedPoll] | None] = asyncio.Queue(maxsize=max(settings.concurrency, 1))

    async def worker() -> None:
        try:
            for index, feed in pending:  # shared iterator: each feed is taken by exactly one worker
                await ready.put((index, await poll_one(client, feed, settings, pool)))
        finally:
            await ready.put(None)

    workers = [asyncio.create_task(worker()) for _ in range(min(max(settings.concurrency, 1), len(feeds)))]
    running = len(workers)
    try:
        while running:
            poll = await ready.get()
            if poll is None:
                running -= 1
            else:
                yield poll
    finally:
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)


async def poll_feeds(
    client: FeedClient,
    feeds: Sequence[Feed],
    settings: PollSettings,
    now: datetime | None = None,
    *,
    on_done: Callable[[FeedPoll], object] | None = None,
    pool: CpuPool | None = None,
) -> list[FeedPoll]:
    """Poll ``feeds`` with at most ``settings.concurrency`` in flight; results in input order.

    ``on_done`` hears each feed's result as soon as that feed finishes (a progress bar's tick).
    """
    results: list[FeedPoll | None] = [None] * len(feeds)
    async for index, poll in _indexed_polls(client, feeds, settings, pool):
        if on_done is not None:
            on_done(poll)
        results[index] = poll
    return [poll for poll in results if poll is not None]
