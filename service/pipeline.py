"""One poll cycle, reading like the pipeline it runs:

    due feeds (store) → fetch + parse (watchers) → only unseen items → match (rules)
      → commit per feed in one transaction: feed state, items seen, matches, outbox rows (store)

Only new items travel past the store check, and a feed's results are committed together, so a crash
between feeds loses nothing and never queues an item twice. A failing feed is recorded with its back-off
and never stops the others. The first successful poll of a new feed applies the backlog policy: all its
items are marked seen, but only the newest few recent *matching* ones may be delivered.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

import httpx

from core.config import PollingConfig
from core.models import Feed, Item, Match
from rules import RuleSet
from store import ProcessedItem, Store
from watchers import FeedPoll, PollSettings, next_poll_at, poll_feeds

log = logging.getLogger(__name__)


@dataclass(slots=True)
class CycleReport:
    feeds_due: int = 0
    feeds_ok: int = 0
    feeds_not_modified: int = 0
    feeds_failed: int = 0
    new_items: int = 0
    matched_items: int = 0
    queued: int = 0
    instant_outbox_ids: list[int] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)  # (feed url, error)
    retired: list[tuple[str, str]] = field(default_factory=list)  # (feed url, name): 410 Gone, no longer polled
    matches_by_rule: Counter[str] = field(default_factory=Counter)  # rule name → new items it matched
    seconds: float = 0.0

    def summary(self) -> str:
        return (
            f"feeds_due={self.feeds_due} ok={self.feeds_ok} not_modified={self.feeds_not_modified} "
            f"failed={self.feeds_failed} new_items={self.new_items} matched={self.matched_items} "
            f"queued={self.queued} seconds={self.seconds:.2f}"
        )


class Pipeline:
    """Runs poll cycles. ``rules`` is a callable so a rule edit takes effect on the next cycle."""

    def __init__(
        self,
        store: Store,
        client: httpx.AsyncClient,
        rules: Callable[[], RuleSet],
        polling: PollingConfig,
    ) -> None:
        self.store = store
        self.client = client
        self.rules = rules
        self.polling = polling
        self.settings = PollSettings.from_config(polling)

    async def run_cycle(
        self,
        now: datetime,
        *,
        feeds: Sequence[Feed] | None = None,
        on_feed_done: Callable[[FeedPoll], object] | None = None,
    ) -> CycleReport:
        """Poll the due feeds (or exactly ``feeds``, due or not); ``on_feed_done`` hears each fetch finish."""
        started = time.perf_counter()
        report = CycleReport()
        due = self.store.due_feeds(now) if feeds is None else list(feeds)
        report.feeds_due = len(due)
        if due:
            polls = await poll_feeds(self.client, due, self.settings, now, on_done=on_feed_done)
            ruleset = self.rules()  # one rule set for the whole cycle, even if an edit lands meanwhile
            for poll in polls:
                try:
                    self._commit(poll, ruleset, now, report)
                except Exception:  # one feed's bad data must not stop the others
                    log.exception("feed_commit_failed url=%s", poll.feed.url)
                    report.feeds_failed += 1
                    report.errors.append((poll.feed.url, "internal error while storing results"))
        report.seconds = time.perf_counter() - started
        log.info("poll_cycle %s", report.summary())
        return report

    def _commit(self, poll: FeedPoll, ruleset: RuleSet, now: datetime, report: CycleReport) -> None:
        feed = poll.feed
        if poll.outcome == "error":
            report.feeds_failed += 1
            report.errors.append((feed.url, poll.error or "unknown error"))
            failed = _with_failures(feed, feed.failures + 1)
            self.store.commit_poll(
                feed.id,
                now,
                ok=False,
                etag=feed.etag,
                last_modified=feed.last_modified,
                error=poll.error,
                gone=poll.gone,
                next_poll_at=next_poll_at(
                    failed, now, ok=False, retry_after=poll.retry_after, backoff_max=self.polling.backoff_max
                ),
            )
            log.warning("feed_failed url=%s failures=%d error=%r", feed.url, feed.failures + 1, poll.error)
            if poll.gone:
                report.retired.append((feed.url, feed.name))
                log.warning("feed_retired url=%s name=%r", feed.url, feed.name)
            return
        next_at = next_poll_at(feed, now, ok=True, retry_after=poll.retry_after, backoff_max=self.polling.backoff_max)
        if poll.outcome == "not_modified":
            report.feeds_not_modified += 1
            self.store.commit_poll(
                feed.id,
                now,
                ok=True,
                etag=poll.etag or feed.etag,
                last_modified=poll.last_modified or feed.last_modified,
                error=None,
                next_poll_at=next_at,
            )
            return
        report.feeds_ok += 1
        unseen = self.store.unseen_uids(feed.id, [item.uid for item in poll.items])
        new_items = _dedupe([item for item in poll.items if item.uid in unseen])
        matched: list[tuple[Item, tuple[Match, ...]]] = [(item, tuple(ruleset.match(item))) for item in new_items]
        for _, matches in matched:
            if matches:
                report.matched_items += 1
                report.matches_by_rule.update(m.rule for m in matches)
        # the backlog policy counts only what matched: "the newest N matching items", not the newest N
        deliverable = (
            {item.uid for item in new_items}
            if feed.initialised
            else self.polling.backlog.select([item for item, matches in matched if matches], now)
        )
        processed = [ProcessedItem(item, matches, item.uid in deliverable) for item, matches in matched]
        result = self.store.commit_poll(
            feed.id,
            now,
            ok=True,
            etag=poll.etag,
            last_modified=poll.last_modified,
            error=None,
            next_poll_at=next_at,
            items=processed,
            source_state=poll.state,
        )
        report.new_items += len(new_items)
        report.queued += result.outbox_rows
        report.instant_outbox_ids.extend(result.instant_outbox_ids)


def _dedupe(items: list[Item]) -> list[Item]:
    """A feed that repeats an entry in one body yields it once."""
    seen: set[str] = set()
    out = []
    for item in items:
        if item.uid not in seen:
            seen.add(item.uid)
            out.append(item)
    return out


def _with_failures(feed: Feed, failures: int) -> Feed:
    return replace(feed, failures=failures)
