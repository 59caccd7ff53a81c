"""The step between fetching a feed and matching its new items: each item's language, and for thin
feeds the article's full text.

    new items of a feed → language per item (core/lang.py, where the feed mixes languages)
      → items whose title/summary hit a rule group (RuleSet.hits_any_group), if the feed wants full text
      → one article fetch each (watchers/fulltext.py), under a per-feed concurrency bound and a per-host
        daily quota kept in the store → the item's summary becomes the article text when the rules see
        at least as much in it, else the feed's text stays

Why only items that already hit a group: a news-search feed yields ~100 items a poll, and an article
fetch costs a request to a stranger's server and ~10 ms of extraction; a title that names neither
country nor any military word will not become a match because of its second paragraph often enough to
pay for that. Why the quota is per host and per day: Google News items all go through news.google.com,
and a story many outlets carry must not turn into a crawl of one site; counting in the store keeps the
bound across restarts.

Why "at least as much": the article replaces the feed's text only when it matches some rule, or when
the feed's text did not match either. An article whose boilerplate trips a ``none`` veto (a list of
other headlines) therefore never loses a match the feed's own text had. When the article is used, the
stored summary is the article text, so the hits' offsets, the alert's excerpt and later back-tests all
refer to the same text.

A failure (HTTP error, timeout, size cap, no text extracted, the quota used up, a store error) falls
back to the feed's own text and is logged (``fulltext_failed url=… error=…``); it never fails the feed
or the other items. The first poll of a new feed fetches nothing: its backlog is only marked seen.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from urllib.parse import urlsplit

from core.config import Config, FullTextConfig, is_news_search
from core.lang import detect_lang
from core.models import Feed, Item, cap_text
from rules import RuleSet
from store import Store
from watchers import FeedPoll, PollSettings
from watchers.fetch import FeedClient
from watchers.fulltext import fetch_article

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class EnrichPolicy:
    """Which feeds get full text and per-item language, and the full-text bounds."""

    full_text: FullTextConfig = field(default_factory=FullTextConfig)
    explicit: Mapping[str, bool] = field(default_factory=dict)  # feed url → its `full_text:` in config.yaml

    @classmethod
    def from_config(cls, config: Config) -> EnrichPolicy:
        return cls(config.full_text, {f.url: f.full_text for f in config.feeds if f.full_text is not None})

    def wants_full_text(self, feed: Feed) -> bool:
        """The feed's own `full_text:`, else on for news-search feeds (their items are title-only)."""
        explicit = self.explicit.get(feed.url)
        return explicit if explicit is not None else is_news_search(feed.url)

    @staticmethod
    def detects_lang(feed: Feed) -> bool:
        """A feed that names no language (or `lang: auto`), or a news-search feed (mixed outlets)."""
        return feed.lang is None or is_news_search(feed.url)


@dataclass(slots=True)
class EnrichStats:
    """What one cycle's step did (logged as ``fulltext_cycle``)."""

    fetched: int = 0  # article requests made
    used: int = 0  # items whose summary became the article text
    failed: int = 0  # fetches that fell back to the feed text
    over_quota: int = 0  # items not fetched because their host's daily quota was used up


class Enricher:
    """Runs the step for each poll of a cycle; holds the per-cycle bound on article fetches."""

    def __init__(
        self, store: Store, client: FeedClient, settings: PollSettings, policy: EnrichPolicy | None = None
    ) -> None:
        self.store = store
        self.client = client
        self.policy = policy or EnrichPolicy()
        ft = self.policy.full_text
        self.settings = replace(settings, timeout=ft.timeout, max_bytes=ft.max_bytes)
        self.stats = EnrichStats()

    async def enrich(self, polls: Sequence[FeedPoll], ruleset: RuleSet, now: datetime) -> list[FeedPoll]:
        """Each successful poll with its new items' language set and, where wanted, their full text."""
        bound = asyncio.Semaphore(self.settings.concurrency)  # all feeds' article fetches together
        self.stats = EnrichStats()
        out = list(await asyncio.gather(*(self._poll(p, ruleset, now, bound) for p in polls)))
        st = self.stats
        if st.fetched or st.over_quota:
            log.info(
                "fulltext_cycle fetched=%d used=%d failed=%d over_quota=%d",
                st.fetched,
                st.used,
                st.failed,
                st.over_quota,
            )
        return out

    async def _poll(self, poll: FeedPoll, ruleset: RuleSet, now: datetime, bound: asyncio.Semaphore) -> FeedPoll:
        feed = poll.feed
        detect = self.policy.detects_lang(feed)
        full = self.policy.wants_full_text(feed) and feed.initialised and self.policy.full_text.per_host_daily > 0
        if poll.outcome != "ok" or not poll.items or not (detect or full):
            return poll
        try:
            unseen = self.store.unseen_uids(feed.id, [item.uid for item in poll.items])
        except Exception:  # the commit that follows reports a broken store; this step just steps aside
            log.exception("enrich_skipped url=%s", feed.url)
            return poll
        items = [
            _with_lang(it, detect_lang(it.title, it.summary)) if detect and it.uid in unseen else it
            for it in poll.items
        ]
        if full:
            per_feed = asyncio.Semaphore(self.policy.full_text.per_feed)
            wanted = [
                i
                for i, it in enumerate(items)
                if it.uid in unseen and it.link and ruleset.hits_any_group(it.title, it.summary)
            ]
            done = await asyncio.gather(
                *(self._full_text(items[i], ruleset, now, detect, per_feed, bound) for i in wanted)
            )
            for i, item in zip(wanted, done, strict=True):
                items[i] = item
        return replace(poll, items=tuple(items))

    async def _full_text(
        self,
        item: Item,
        ruleset: RuleSet,
        now: datetime,
        detect: bool,
        per_feed: asyncio.Semaphore,
        bound: asyncio.Semaphore,
    ) -> Item:
        url = item.link or ""
        host = (urlsplit(url).hostname or "").lower()
        quota = self.policy.full_text.per_host_daily
        async with per_feed, bound:
            try:
                allowed = self.store.take_daily_quota(f"fulltext:{host}", now.date(), quota)
            except Exception as exc:  # a store error costs this item its article, nothing more
                log.warning("fulltext_failed url=%s error=%r", url, f"quota not readable: {type(exc).__name__}")
                self.stats.failed += 1
                return item
            if not allowed:
                self.stats.over_quota += 1
                log.info("fulltext_skipped url=%s reason=daily_quota host=%s", url, host)
                return item
            self.stats.fetched += 1
            result = await fetch_article(self.client, url, self.settings)
        if result.article is None:
            self.stats.failed += 1
            log.warning("fulltext_failed url=%s error=%r", url, result.error)
            return item
        text = cap_text(result.article.text)
        richer = replace(item, summary=text, lang=detect_lang(item.title, text) if detect else item.lang)
        if ruleset.match(richer) or not ruleset.match(item):
            self.stats.used += 1
            log.info("fulltext_used url=%s chars=%d seconds=%.3f", url, len(text), result.seconds)
            return richer
        log.info("fulltext_kept_feed_text url=%s reason=article_matches_less", url)
        return item


def _with_lang(item: Item, lang: str | None) -> Item:
    return item if item.lang == lang else replace(item, lang=lang)
