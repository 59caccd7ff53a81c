"""Source kinds beyond RSS: a public Telegram channel and a web page with selectors, read into Items.

watchers/poll.py hands a source to :func:`read_source` by its ``kind``; RSS/Atom stays with
watchers/parse.py. Every kind goes through the same :func:`watchers.fetch.fetch` (one client, the size
cap, redirect limit, private-address guard, conditional GET, timeouts), so a fetch failure, a 429's
Retry-After or a 410 is the same :class:`SourceRead` for every kind, and the poll's back-off and
``/status`` work unchanged. What is particular to a kind:

- **telegram**: the preview's URL is the source's URL (``{polling.telegram_web}/s/NAME``). A redirect
  away from ``/s/`` (t.me sends a private or unknown channel to its contact page), a page without the
  channel header and without posts, a channel whose posts belong to another username (renamed) and a
  channel with no posts are per-source errors, each saying which. After downtime the gap is filled by
  paging backwards with ``?before=<oldest id on the page>`` until the last message id seen (kept in
  the source's state), at most :data:`MAX_BACKFILL_PAGES` pages; a failed backfill page ends the
  backfill but keeps what was read.
- **page**: zero elements matching the item selector is an error, and after a poll that matched some it
  says so: "layout changed? selector 'article.news' matched 0 elements, matched 12 last time". The
  count is kept in the source's state.

The state is JSON kept with the source and written in the same transaction as the poll's items.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from core.models import Feed, Item
from watchers.fetch import FeedClient, FetchResult, PollSettings, fetch
from watchers.page import PageSpec, parse_page
from watchers.tme import ChannelPage, parse_channel

log = logging.getLogger(__name__)
MAX_BACKFILL_PAGES = 5  # ≈ 100 posts: a day's downtime of a busy channel, without hammering t.me


@dataclass(frozen=True, slots=True)
class SourceRead:
    outcome: Literal["ok", "not_modified", "error"]
    items: tuple[Item, ...] = ()
    etag: str | None = None
    last_modified: str | None = None
    http_status: int | None = None
    error: str | None = None
    gone: bool = False
    retry_after: int | None = None
    skipped: int = 0
    state: str | None = None  # the new JSON state on success; None keeps the old
    fetches: int = 0  # HTTP requests made (backfill pages included)


def _failed(result: FetchResult, fetches: int = 1) -> SourceRead:
    return SourceRead(
        result.outcome,
        etag=result.etag,
        last_modified=result.last_modified,
        http_status=result.http_status,
        error=result.error,
        gone=result.gone,
        retry_after=result.retry_after,
        fetches=fetches,
    )


def _state(feed: Feed) -> dict[str, int]:
    try:
        value = json.loads(feed.state) if feed.state else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


async def read_source(client: FeedClient, feed: Feed, settings: PollSettings) -> SourceRead:
    """Fetch and parse one non-RSS source; never raises for bad input (poll_one isolates the rest)."""
    if feed.kind == "telegram":
        return await _read_channel(client, feed, settings)
    if feed.kind == "page":
        return await _read_page(client, feed, settings)
    return SourceRead("error", error=f"unknown source kind {feed.kind!r}")


def _channel_error(page: ChannelPage, channel: str, url: str, result: FetchResult) -> str | None:
    final = urlsplit(result.final_url or url)
    if (result.final_url or url) != url and not final.path.startswith("/s/"):
        return (
            f"@{channel} is not a public channel: t.me/s/{channel} redirected to {final.path} "
            "(private, renamed or deleted)"
        )
    if not page.is_preview:
        return f"@{channel} has no public preview (no channel header and no posts on t.me/s/{channel})"
    if page.authors and channel.lower() not in page.authors:
        others = ", ".join(f"@{a}" for a in sorted(page.authors))
        return f"@{channel} was renamed? the posts on t.me/s/{channel} belong to {others}"
    if not page.ids:
        return f"@{channel} has no posts (empty channel)"
    return None


async def _read_channel(client: FeedClient, feed: Feed, settings: PollSettings) -> SourceRead:
    channel = str(json.loads(feed.spec)["channel"])
    state = _state(feed)
    last_id = state.get("last_id")
    result = await fetch(client, feed.url, settings, etag=feed.etag, last_modified=feed.last_modified)
    if result.outcome != "ok":
        return _failed(result)
    page = parse_channel(result.body, channel=channel, feed_url=feed.url, feed_name=feed.name, lang=feed.lang)
    error = _channel_error(page, channel, feed.url, result)
    if error:
        return SourceRead("error", http_status=result.http_status, error=error, fetches=1)
    items, skipped, fetches = list(page.items), page.skipped, 1
    oldest = page.oldest_id
    # a gap since the last poll: page backwards until the last id seen (never on the first poll)
    while isinstance(last_id, int) and oldest is not None and oldest > last_id + 1 and fetches <= MAX_BACKFILL_PAGES:
        older = await fetch(client, f"{feed.url}?before={oldest}", settings)
        fetches += 1
        if older.outcome != "ok":
            log.warning("channel_backfill_failed url=%s before=%d error=%r", feed.url, oldest, older.error)
            break
        earlier = parse_channel(older.body, channel=channel, feed_url=feed.url, feed_name=feed.name, lang=feed.lang)
        if not earlier.ids or earlier.oldest_id is None or earlier.oldest_id >= oldest:
            break  # the start of the channel (or a page that does not go back)
        items = [i for i in earlier.items if int(i.uid.rsplit("/", 1)[1]) < oldest] + items
        skipped += earlier.skipped
        oldest = earlier.oldest_id
    if isinstance(last_id, int) and oldest is not None and oldest > last_id + 1:
        log.warning("channel_gap_left url=%s last_seen=%d oldest_read=%d", feed.url, last_id, oldest)
    newest = max(page.newest_id or 0, last_id if isinstance(last_id, int) else 0)
    return SourceRead(
        "ok",
        items=tuple(items),
        etag=result.etag,
        last_modified=result.last_modified,
        http_status=result.http_status,
        skipped=skipped,
        state=json.dumps({"last_id": newest}),
        fetches=fetches,
    )


async def _read_page(client: FeedClient, feed: Feed, settings: PollSettings) -> SourceRead:
    spec = PageSpec.from_json(feed.spec)
    result = await fetch(client, feed.url, settings, etag=feed.etag, last_modified=feed.last_modified)
    if result.outcome != "ok":
        return _failed(result)
    parsed = parse_page(
        result.body,
        spec,
        page_url=feed.url,
        content_type=result.content_type,
        feed_name=feed.name,
        lang=feed.lang,
    )
    last = _state(feed).get("matched")
    error = page_error(spec, parsed.matched, len(parsed.items), last if isinstance(last, int) else None)
    if error:
        return SourceRead("error", http_status=result.http_status, error=error, fetches=1)
    return SourceRead(
        "ok",
        items=parsed.items,
        etag=result.etag,
        last_modified=result.last_modified,
        http_status=result.http_status,
        skipped=parsed.skipped,
        state=json.dumps({"matched": parsed.matched}),
        fetches=1,
    )


def page_error(spec: PageSpec, matched: int, usable: int, last_matched: int | None) -> str | None:
    """Why a page poll that fetched fine is still a failure, or None."""
    if matched == 0 and last_matched:
        return f"layout changed? selector {spec.item!r} matched 0 elements, matched {last_matched} last time"
    if matched == 0:
        return f"selector {spec.item!r} matched 0 elements on the page"
    if usable == 0:
        return (
            f"selector {spec.item!r} matched {matched} elements but none had both a title ({spec.title!r}) "
            f"and a link ({spec.link!r})"
        )
    return None
