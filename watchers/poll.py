"""One polling pass over due feeds: concurrent (bounded), isolated, never raising.

Each feed gets its own deadline and its own error handling, so a slow or broken feed never delays or
breaks the others. Back-off is a pure function of the feed's failure count.
"""

from __future__ import annotations

import asyncio
import logging
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

import httpx

from core.models import Feed, Item
from watchers.fetch import FetchResult, PollSettings, fetch
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


async def poll_one(client: httpx.AsyncClient, feed: Feed, settings: PollSettings) -> FeedPoll:
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
        parsed = parse_feed(
            result.body, feed_url=feed.url, feed_name=feed.name, lang=feed.lang, content_type=result.content_type
        )
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


async def poll_feeds(
    client: httpx.AsyncClient,
    feeds: Sequence[Feed],
    settings: PollSettings,
    now: datetime | None = None,
    *,
    on_done: Callable[[FeedPoll], object] | None = None,
) -> list[FeedPoll]:
    """Poll ``feeds`` with at most ``settings.concurrency`` in flight; results in input order.

    ``on_done`` hears each feed's result as soon as that feed finishes (a progress bar's tick).
    """
    semaphore = asyncio.Semaphore(settings.concurrency)

    async def bounded(feed: Feed) -> FeedPoll:
        async with semaphore:
            poll = await poll_one(client, feed, settings)
        if on_done is not None:
            on_done(poll)
        return poll

    return list(await asyncio.gather(*(bounded(f) for f in feeds)))
