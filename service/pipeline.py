"""One poll cycle, reading like the pipeline it runs:

    due feeds (store) → fetch + parse (watchers) → language per item, full article text for thin feeds
      (service/enrich.py) → identity: only new items (core.identity) → match (rules)
      → story of each matched item (delivery.cluster: candidate buckets in the store, embeddings of
        matched items only) → commit per feed in one transaction: feed state, items seen, updates and
        second sources of known items, the feed's GUID stability, matches, story ids, outbox rows (store)

Each feed goes through the rest of the pipeline as soon as its fetch and parse finish (no whole-cycle
buffering), and parsing and matching run in the CPU pool (:mod:`core.workers`), so the event loop only
does I/O and awaits between feeds: a command is answered while a cycle runs.

Only new items travel past the identity check (an edited or re-published item, or one another feed
brought first, is known: recorded, never alerted again), and a feed's results are committed together, so a crash
between feeds loses nothing and never queues an item twice. A failing feed is recorded with its back-off
and never stops the others. The first successful poll of a new feed applies the backlog policy: all its
items are marked seen, but only the newest few recent *matching* ones may be delivered.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from core import identity
from core.config import PollingConfig
from core.models import Feed, Item, Match
from core.workers import CpuPool, default_pool, refreeze_if_changed
from delivery import cluster as stories
from delivery.encoder import Encoder, from_blob, shared_encoder, story_text, to_blob
from rules import RuleSet
from rules.engine import match_items
from service.enrich import Enricher, EnrichPolicy
from store import ItemUpdate, ProcessedItem, Store, StoryDecision, StoryMember, search
from store.claims import Worker
from watchers import FeedPoll, PollSettings, iter_polls, next_poll_at
from watchers.fetch import FeedClient

log = logging.getLogger(__name__)


@dataclass(slots=True)
class CycleReport:
    feeds_due: int = 0
    feeds_ok: int = 0
    feeds_not_modified: int = 0
    feeds_failed: int = 0
    new_items: int = 0
    updated_items: int = 0  # known items seen again with an edited title or summary (never re-alerted)
    other_source_items: int = 0  # items another feed brought first (stored once, this feed recorded)
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
        client: FeedClient,
        rules: Callable[[], RuleSet],
        polling: PollingConfig,
        enrich: EnrichPolicy | None = None,
        *,
        pool: CpuPool | None = None,
        encoder: Encoder | None = None,
    ) -> None:
        self.store = store
        self.client = client
        self.rules = rules
        self.polling = polling
        self.settings = PollSettings.from_config(polling)
        self.pool = pool or default_pool(polling.cpu_pool)  # polling.cpu_pool: thread, process or inline
        self.encoder = encoder if encoder is not None else shared_encoder()
        self.enricher = Enricher(store, client, self.settings, enrich)
        self.candidate_features = CandidateFeatures()

    async def run_cycle(
        self,
        now: datetime,
        *,
        feeds: Sequence[Feed] | None = None,
        on_feed_done: Callable[[FeedPoll], object] | None = None,
        worker: Worker | None = None,
    ) -> CycleReport:
        """Poll the due feeds (or exactly ``feeds``, due or not); ``on_feed_done`` hears each fetch finish.
        With ``worker`` (several workers on one store), the due feeds are claimed in batches of a few times
        ``polling.concurrency`` (store/claims.py), so each is polled by one worker only."""
        started = time.perf_counter()
        report = CycleReport()
        if worker is not None and feeds is None:
            batch = max(self.polling.concurrency * 4, 1)
            while claimed := self.store.claim_due_feeds(worker.id, now, worker.lease, batch):
                report.feeds_due += len(claimed)
                await self._poll(claimed, now, report, on_feed_done)
        else:
            due = self.store.due_feeds(now) if feeds is None else list(feeds)
            report.feeds_due = len(due)
            await self._poll(due, now, report, on_feed_done)
        report.seconds = time.perf_counter() - started
        log.info("poll_cycle %s", report.summary())
        return report

    async def _poll(
        self,
        due: Sequence[Feed],
        now: datetime,
        report: CycleReport,
        on_feed_done: Callable[[FeedPoll], object] | None,
    ) -> None:
        if due:
            ruleset = self.rules()  # one rule set for the whole batch, even if an edit lands meanwhile
            if refreeze_if_changed(ruleset):  # a rule swap: the old set's heap freed, the new one frozen
                log.info("gc_refrozen objects=%d", gc.get_freeze_count())
            async for fetched in iter_polls(self.client, due, self.settings, self.pool):
                if on_feed_done is not None:
                    on_feed_done(fetched)
                (poll,) = await self.enricher.enrich([fetched], ruleset, now)
                try:
                    await self._commit(poll, ruleset, now, report)
                except Exception:  # one feed's bad data must not stop the others
                    log.exception("feed_commit_failed url=%s", poll.feed.url)
                    report.feeds_failed += 1
                    report.errors.append((poll.feed.url, "internal error while storing results"))

    async def _commit(self, poll: FeedPoll, ruleset: RuleSet, now: datetime, report: CycleReport) -> None:
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
        known = self.store.known_items(feed.id, identity.lookup(poll.items))
        decided = identity.decide(feed.id, poll.items, known, guids_unstable=feed.guids_unstable)
        new_items = [_labelled(d.item, feed) for d in decided.of("new")]
        if decided.guids_unstable and not feed.guids_unstable:
            log.warning("feed_guids_unstable url=%s: items are known by link or fingerprint from now on", feed.url)
        known_again = [d for d in (*decided.of("update"), *decided.of("source")) if d.twin is not None]
        to_match = [*new_items, *(_labelled(d.item, feed) for d in known_again)]
        # in a process worker that keeps the compiled rules by digest (core/workers.py), or in a thread
        found = await self.pool.run_keyed(ruleset, match_items, to_match) if to_match else []
        matched: list[tuple[Item, tuple[Match, ...]]] = [
            (item, tuple(matches)) for item, matches in zip(new_items, found, strict=False)
        ]
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
        for d, again in zip(known_again, found[len(new_items) :], strict=True):
            # an edit or another feed's copy may match where the stored text did not: the store alerts it
            # then, once, unless the item matched before (see Store.commit_poll)
            if again:
                processed.append(ProcessedItem(d.item, tuple(again), feed.initialised, stored_id=d.twin))
        texts = [story_text(p.item.title, p.item.summary) for p in processed if p.matches]
        vectors: list[Any] | None = None
        if texts:
            try:  # the encoder's work runs in the CPU pool; the store's candidates are read here
                embedded = await self.pool.run(self.encoder.embed, texts)
                vectors = None if embedded is None else list(embedded)
            except Exception:  # never lose a poll over the story signal
                log.exception("story_embed_failed url=%s", feed.url)
        if texts:
            processed = await assign_stories_off_loop(
                self.store, self.pool, processed, vectors, known=self.candidate_features
            )
        updates = [ItemUpdate(d.twin, d.item.title, d.item.summary) for d in decided.of("update") if d.twin]
        fields = [(p.item.title, p.item.summary) for p in processed if p.stored_id is None]
        fields += [(u.title, u.summary) for u in updates]
        if fields:  # the search index's keys, made off the loop (the store's trigger takes them)
            await self.pool.run(search.prepare_keys, fields)
        result = self.store.commit_poll(
            feed.id,
            now,
            ok=True,
            etag=poll.etag,
            last_modified=poll.last_modified,
            error=None,
            next_poll_at=next_at,
            items=processed,
            updates=updates,
            sources=[(d.twin, d.item.uid) for d in decided.of("source") if d.twin],
            guids_unstable=decided.guids_unstable,
            source_state=poll.state,
        )
        report.new_items += len(new_items)
        report.updated_items += len(decided.of("update"))
        report.other_source_items += len(decided.of("source"))
        report.queued += result.outbox_rows
        report.instant_outbox_ids.extend(result.instant_outbox_ids)


def _labelled(item: Item, feed: Feed) -> Item:
    """The item with its feed's labels (``feeds[].labels``), which rules may require or exclude."""
    return replace(item, labels=feed.labels) if feed.labels and item.labels != feed.labels else item


def assign_stories(
    store: Store,
    encoder: Encoder,
    processed: Sequence[ProcessedItem],
    *,
    vectors: Sequence[Any] | None = None,
    embedded: bool = False,
    known: CandidateFeatures | None = None,
) -> list[ProcessedItem]:
    """Each matched item's story: an earlier one (found through shared buckets in the store, or earlier in
    this poll), else a new one. Only matched items are embedded, in one batch (``vectors``, when the caller
    already embedded them — ``embedded`` — in the CPU pool); a failure here never stops the commit (the
    item becomes a story of its own). :func:`assign_stories_off_loop` does the same work with the CPU
    parts in a pool."""
    matched = [n for n, p in enumerate(processed) if p.matches]
    if not matched:
        return list(processed)
    if not embedded:
        vectors = _embed(encoder, [processed[n] for n in matched])
    own = _own_features([processed[n] for n in matched], vectors)
    out = list(processed)
    earlier: list[tuple[int, stories.Features]] = []  # (position, features) of this poll's matched items
    known = CandidateFeatures() if known is None else known
    for (f, keys, blob), n in zip(own, matched, strict=True):
        decision = StoryDecision(keys=tuple(keys), embedding=blob)
        try:
            found = _candidates(store, f, keys)
            decision = _decide(decision, f, found, earlier, known)
        except Exception:
            log.exception("story_assign_failed uid=%s", processed[n].item.uid)
        earlier.append((n, f))
        out[n] = replace(processed[n], story=decision)
    return out


async def assign_stories_off_loop(
    store: Store,
    pool: CpuPool,
    processed: Sequence[ProcessedItem],
    vectors: Sequence[Any] | None,
    *,
    known: CandidateFeatures | None = None,
) -> list[ProcessedItem]:
    """:func:`assign_stories` (with ``vectors`` already embedded) as the cycle runs it: the features run in
    ``pool``, the store is read on the loop, and the loop gets control at every item of a big feed, not
    once after all of them (issue 16: a 20-item feed whose items all match held it ~0.5–1 s). An item's
    comparison with its candidates runs in ``pool`` when some candidate's features must be computed, else
    on the loop: with every feature kept (:class:`CandidateFeatures`) it is ~0.3 ms, less than the
    hand-off to a pool thread costs the loop (it waits for the GIL back). Same decisions as
    :func:`assign_stories`."""
    matched = [n for n, p in enumerate(processed) if p.matches]
    if not matched:
        return list(processed)
    own = await pool.run(_own_features, [processed[n] for n in matched], vectors)
    out = list(processed)
    earlier: list[tuple[int, stories.Features]] = []  # (position, features) of this poll's matched items
    known = CandidateFeatures() if known is None else known
    for (f, keys, blob), n in zip(own, matched, strict=True):
        decision = StoryDecision(keys=tuple(keys), embedding=blob)
        try:
            found = _candidates(store, f, keys)  # SQLite stays on the loop thread
            if known.has_all(found):  # only comparisons left (~0.3 ms): a hand-off to the pool costs more
                decision = _decide(decision, f, found, earlier, known)
                await asyncio.sleep(0)
            else:
                decision = await pool.run(_decide, decision, f, found, list(earlier), known)
        except Exception:
            log.exception("story_assign_failed uid=%s", processed[n].item.uid)
        earlier.append((n, f))
        out[n] = replace(processed[n], story=decision)
    return out


def _embed(encoder: Encoder, matched: Sequence[ProcessedItem]) -> list[Any] | None:
    try:
        fresh = encoder.embed([story_text(p.item.title, p.item.summary) for p in matched])
        return None if fresh is None else list(fresh)
    except Exception:  # never lose a poll over the story signal
        log.exception("story_embed_failed")
        return None


def _own_features(
    matched: Sequence[ProcessedItem], vectors: Sequence[Any] | None
) -> list[tuple[stories.Features, list[str], bytes | None]]:
    out = []
    for k, p in enumerate(matched):
        blob = to_blob(vectors[k]) if vectors is not None else None
        f = stories.features(stories.Entry(p.item, p.matches, vector=from_blob(blob)))
        out.append((f, stories.bucket_keys(f), blob))
    return out


def _candidates(store: Store, f: stories.Features, keys: Sequence[str]) -> list[StoryMember]:
    return store.story_candidates(
        keys,
        f.when - stories.WINDOW,
        per_key=stories.BUCKET_CAP,
        cross_key=stories.group_key(f),
        cross=stories.CROSS_CANDIDATES * 3,  # the store's group bucket holds every language
    )


def _decide(
    decision: StoryDecision,
    f: stories.Features,
    found: Sequence[StoryMember],
    earlier: Sequence[tuple[int, stories.Features]],
    known: CandidateFeatures,
) -> StoryDecision:
    """The story ``f`` joins among the store's candidates and this poll's earlier items; ``known`` gives
    each candidate's features (computed once, see :class:`CandidateFeatures`)."""
    candidates = [(m.story_id, known.of(m)) for m in found]
    in_poll = [(-1 - pos, g) for pos, g in earlier]  # negative: a position in this poll
    best = stories.best_story(f, candidates + in_poll)
    if best is not None and best < 0:
        return replace(decision, same_as=-1 - best)
    if best is not None:
        return replace(decision, story_id=best)
    return decision


class CandidateFeatures:
    """Story features of stored candidates, kept across polls (the latest :attr:`CACHED`).

    The same stored items are candidates of every new report of a busy story, poll after poll; computing
    their features (names, figures, title key) again each poll was ~60 % of a poll cycle's CPU with 6 %
    of the items on topic (issue 16, ``py-spy`` over ``bench/poll.py --pipeline``). An entry is reused
    only for the very :class:`~store.StoryMember` it was computed from: the store hands out the same
    object while the item's row is unchanged (``Store.story_candidates``), and a new object — the row
    changed, or the store's own cache dropped it — is computed afresh, so a reused entry is always what
    :func:`delivery.cluster.features` would return now. Thread-safe: the CPU pool's threads may share it.
    """

    CACHED = Store.STORY_MEMBERS_CACHED  # more would be dead weight: a member the store drops comes back anew

    def __init__(self) -> None:
        self._entries: OrderedDict[int, tuple[StoryMember, stories.Features]] = OrderedDict()
        self._lock = threading.Lock()
        self.computed = 0  # features computed (not reused): what a test and the benchmark read

    def has_all(self, members: Sequence[StoryMember]) -> bool:
        """Whether every one of ``members`` is kept (nothing to compute: :func:`_decide` only compares)."""
        with self._lock:
            return all((e := self._entries.get(m.item_id)) is not None and e[0] is m for m in members)

    def of(self, member: StoryMember) -> stories.Features:
        with self._lock:
            entry = self._entries.get(member.item_id)
            if entry is not None and entry[0] is member:
                self._entries.move_to_end(member.item_id)
                return entry[1]
        f = stories.features(stories.Entry(member.item, member.matches, vector=from_blob(member.embedding)))
        with self._lock:
            self.computed += 1
            self._entries[member.item_id] = (member, f)
            self._entries.move_to_end(member.item_id)
            while len(self._entries) > self.CACHED:
                self._entries.popitem(last=False)
        return f


def _with_failures(feed: Feed, failures: int) -> Feed:
    return replace(feed, failures=failures)
