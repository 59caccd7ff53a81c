"""Watchers: fetch due feeds (aiohttp, conditional GET, caps) and parse them (lxml, feedparser) into Items.

    poll_feeds(client, feeds, settings) -> [FeedPoll]      one pass, bounded concurrency, never raises
      fetch(client, url, settings, etag=, last_modified=)  one GET: validators, redirects, size caps
      parse_feed(body, feed_url=, ...) -> ParseResult      feedparser → Item (plain text, UTC, stable uid)
    next_poll_at(feed, now, ok=, retry_after=, backoff_max=)  healthy interval or exponential back-off
      read_source(client, feed, settings) -> SourceRead   telegram channels (tme.py) and pages (page.py),
                                                           through the same fetch; poll_one dispatches by kind

The watchers know nothing of rules, the store or Telegram: the pipeline joins them.
"""

from watchers.fetch import (
    FeedClient,
    FetchResult,
    PollSettings,
    check_url_allowed,
    fetch,
    is_private_address,
    make_client,
)
from watchers.parse import ParseResult, canonical_link, parse_feed, plain_text
from watchers.poll import FeedPoll, iter_polls, next_poll_at, poll_feeds, poll_one

__all__ = [
    "FeedClient",
    "FeedPoll",
    "FetchResult",
    "ParseResult",
    "PollSettings",
    "canonical_link",
    "check_url_allowed",
    "fetch",
    "is_private_address",
    "iter_polls",
    "make_client",
    "next_poll_at",
    "parse_feed",
    "plain_text",
    "poll_feeds",
    "poll_one",
]
