"""Quiet feeds: the store's history, the pure decision (watchers/silence.py), and the told-once flag.

Only feeds that look healthy are judged: a failing or retired feed already shows its error, and one
never polled successfully has no history. The admins hear of a quiet feed once per episode: the
episode is the instant of the feed's last new item, kept on the feed in the store, so a restart does
not tell them again (nor does a failure in between), and the flag clears as soon as the feed has news.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from core.config import Config
from core.models import Feed
from store import Store
from watchers.silence import HISTORY, Silence, describe, quiet

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class QuietFeed:
    feed: Feed
    silence: Silence

    def line(self) -> str:
        return describe(self.silence)


def quiet_feeds(store: Store, config: Config, now: datetime) -> list[QuietFeed]:
    """Every enabled, healthy feed that is quiet now, in feed order."""
    own = {f.url: f.quiet_after for f in config.feeds}
    retired = {f.url for f in store.retired_feeds()}
    last_seen = store.last_seen_times()
    out = []
    for feed in store.all_feeds(enabled_only=True):
        if feed.url in retired or feed.failures or not feed.initialised or feed.id not in last_seen:
            continue
        after = own.get(feed.url)
        floor = timedelta(seconds=config.polling.quiet_after if after is None else after)
        if floor <= timedelta(0) or now - last_seen[feed.id] <= floor:
            continue  # cannot be quiet yet: no need to read its history (the common case, one query for all)
        silence = quiet(store.seen_times(feed.id, HISTORY + 1), now, factor=config.polling.quiet_factor, floor=floor)
        if silence is not None:
            out.append(QuietFeed(feed, silence))
    return out


def quiet_notices(store: Store, config: Config, now: datetime) -> list[str]:
    """The admin notices owed now (each quiet episode once), with the store's flags brought up to date."""
    flags = store.quiet_flags()
    notices = []
    current = {q.feed.id: q for q in quiet_feeds(store, config, now)}
    for feed_id, q in current.items():
        if flags.get(feed_id) == q.silence.last_new:
            continue
        store.set_quiet_flag(feed_id, q.silence.last_new)
        log.warning(
            "feed_quiet url=%s silent_for=%s usual_gap=%s", q.feed.url, q.silence.silent_for, q.silence.usual_gap
        )
        notices.append(quiet_notice(q))
    for feed_id in flags.keys() - current.keys():
        latest = store.seen_times(feed_id, 1)
        if not latest or latest[0] != flags[feed_id]:  # news again: the episode is over, a new one may follow
            store.set_quiet_flag(feed_id, None)
    return notices


def quiet_notice(q: QuietFeed) -> str:
    """What admins are told of a quiet feed (plain text)."""
    return (
        f"Feed quiet: {q.feed.name} ({q.feed.url}) still answers, but has had nothing new: {q.line()}. "
        "It may have moved or stopped publishing; check its site. You will not be told again until it has news."
    )
