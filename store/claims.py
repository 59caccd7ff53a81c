"""Claims: how several workers on one store share the work and never both do one piece of it (issue 14).

A worker is one ``bot.py run`` process, named ``host:pid:random`` (:func:`worker_id`). Every piece of work
that must happen once is claimed in the store, in a short transaction, before it is done. A claim is a
lease (``run.lease``, 120 s): the live worker renews all of its claims every third of it
(``renew_claims``), so a slow batch or a send paced for seconds keeps them, and a killed worker's claims
expire one lease after its last renewal, when another worker takes them over.

    feeds          ``claim_due_feeds``: due feeds no live worker holds, ``SELECT … FOR UPDATE SKIP LOCKED``
                   on PostgreSQL, then ``claimed_by``/``claim_until`` set in the same transaction; the poll's
                   commit (``Store.commit_poll``, success or failure) clears the claim and sets next_poll_at.
                   So a feed is polled by one worker per interval. A killed worker's claims expire after the
                   lease and another worker takes the feed.
    chats          ``claim_chats``: a sender takes the chats (subscriptions) with due instant alerts, one
                   unique row per chat (``send_claims``, INSERT … ON CONFLICT … WHERE expired), so one
                   chat's alerts go out from one worker at a time, in order and paced; released at the end
                   of the pass.
    outbox entries ``Store.begin_send`` moves an entry pending → in_flight only if it is still pending (the
                   row lock decides between two workers: the loser sends nothing) and records the worker and
                   a lease on it; ``Store.resolve_in_flight`` resolves (maybe-sent: resent at most once,
                   then "uncertain") only entries whose lease expired, that are this worker's own, or that a
                   previous life of this worker left (same host and pid, another random part: that process
                   is gone) — never another live worker's sends.
    digests        ``claim_digest``: one row per subscription per day (``digest_claims``); the worker that
                   inserts it (or takes it over after the lease) sends, and a done digest is never claimed
                   again.
    rate limits    ``take_token``: a token bucket per name updated in ONE statement (``rate_buckets``), so
                   the 30 messages/s per token and the per-chat pacing hold across all senders.

The rules are the same on both databases. On SQLite only one process runs (store/lock.py), so at start
it forgets every claim (``forget_claims``: they are a killed earlier process's). Once-only jobs (prune,
spikes, quiet-feed checks, story edits) take ``Store.advisory_lock(name)`` instead; a worker that does not
get it skips the pass.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Collection, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from core.models import Feed


@dataclass(frozen=True, slots=True)
class Worker:
    """Who does the work (:func:`worker_id`) and how long its claims hold (seconds) before another worker
    may take them over: longer than any one poll batch or send, a few poll timeouts."""

    id: str
    lease: float = 120.0


def worker_id() -> str:
    """``host:pid:random``: unique per process life; the host and pid say whether an older id is this
    process's previous life (the same pid on the same host cannot belong to a live other process)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def _life(worker: str) -> str:
    """The ``host:pid:`` prefix of a worker id."""
    host_pid, _, _ = worker.rpartition(":")
    return f"{host_pid}:"


def _ts(value: datetime) -> str:
    from store.db import ts  # store/db.py imports this module

    out = ts(value)
    assert out is not None
    return out


class Claims:
    """The claim methods of :class:`store.Store` (a mixin: the store's connection and transactions)."""

    if TYPE_CHECKING:
        conn: Any
        _FEED_COLUMNS: str

        @property
        def dialect(self) -> str: ...

        @property
        def skip_locked(self) -> str: ...

        def transaction(self) -> AbstractContextManager[Any]: ...

        @staticmethod
        def _feed(row: Sequence[Any]) -> Feed: ...

    @property
    def shared(self) -> bool:
        """Several processes may use this store at once (PostgreSQL); on SQLite one process holds the lock."""
        return self.dialect != "sqlite"

    def _free(self, by: str, until: str, worker: str, now: datetime) -> tuple[str, list[Any]]:
        """SQL (and its parameters) for "no live other worker holds this claim, nor do I": never claimed,
        expired, or a previous life's."""
        life = _life(worker)
        return (
            f"({by} IS NULL OR {until} IS NULL OR {until} <= ? OR (substr({by}, 1, ?) = ? AND {by} != ?))",
            [_ts(now), len(life), life, worker],
        )

    def renew_claims(self, worker: str, now: datetime, lease: float) -> None:
        """Extend every claim ``worker`` holds to ``now + lease``: a live worker renews (service/app.py's
        ``renew`` job, every third of the lease), so a long send or a slow batch never loses its claims;
        a dead one stops renewing and loses them after the lease."""
        until = _ts(now + timedelta(seconds=lease))
        with self.transaction() as conn:
            conn.execute("UPDATE feeds SET claim_until = ? WHERE claimed_by = ?", (until, worker))
            conn.execute(
                "UPDATE outbox SET claim_until = ? WHERE claimed_by = ? AND state = 'in_flight'", (until, worker)
            )
            conn.execute("UPDATE send_claims SET until = ? WHERE worker = ?", (until, worker))
            conn.execute("UPDATE digest_claims SET until = ? WHERE worker = ? AND done = 0", (until, worker))

    def forget_claims(self) -> None:
        """Every claim expires now: for a process that knows it is alone on the store (SQLite, whose store
        lock it holds), so whatever a killed earlier process held is taken at once, not after the lease."""
        with self.transaction() as conn:
            conn.execute("UPDATE feeds SET claimed_by = NULL, claim_until = NULL WHERE claimed_by IS NOT NULL")
            conn.execute("UPDATE outbox SET claim_until = NULL WHERE state = 'in_flight'")
            conn.execute("DELETE FROM send_claims")
            conn.execute("DELETE FROM digest_claims WHERE done = 0")

    # -- feeds ---------------------------------------------------------------------------------------

    def claim_due_feeds(self, worker: str, now: datetime, lease: float, limit: int) -> list[Feed]:
        """Up to ``limit`` due feeds nobody else polls now, claimed for ``worker`` until ``now + lease``
        (most overdue first). The poll's :meth:`Store.commit_poll` clears the claim."""
        free, params = self._free("claimed_by", "claim_until", worker, now)
        skip = self.skip_locked
        with self.transaction() as conn:
            rows = conn.execute(
                "SELECT id FROM feeds WHERE enabled = 1 AND gone = 0 AND (next_poll_at IS NULL OR next_poll_at <= ?) "
                f"AND {free} ORDER BY next_poll_at IS NOT NULL, next_poll_at, id LIMIT ?{skip}",
                [_ts(now), *params, int(limit)],
            ).fetchall()
            ids = [int(r[0]) for r in rows]
            until = _ts(now + timedelta(seconds=lease))
            for feed_id in ids:
                conn.execute("UPDATE feeds SET claimed_by = ?, claim_until = ? WHERE id = ?", (worker, until, feed_id))
        return self._feeds_by_id(ids)

    def _feeds_by_id(self, ids: Sequence[int]) -> list[Feed]:
        if not ids:
            return []
        order = {feed_id: n for n, feed_id in enumerate(ids)}
        rows = self.conn.execute(
            f"SELECT {self._FEED_COLUMNS} FROM feeds WHERE id IN ({','.join('?' * len(ids))})", list(ids)
        ).fetchall()
        return sorted((self._feed(r) for r in rows), key=lambda f: order[f.id])

    def release_feeds(self, worker: str, ids: Sequence[int]) -> None:
        """Give back claimed feeds that were not polled (the pass stopped early)."""
        with self.transaction() as conn:
            for feed_id in ids:
                conn.execute(
                    "UPDATE feeds SET claimed_by = NULL, claim_until = NULL WHERE id = ? AND claimed_by = ?",
                    (feed_id, worker),
                )

    def feed_claims(self) -> dict[str, str]:
        """Feed URL → the worker holding its claim (tests and diagnostics)."""
        rows = self.conn.execute("SELECT url, claimed_by FROM feeds WHERE claimed_by IS NOT NULL ORDER BY id")
        return {str(r[0]): str(r[1]) for r in rows}

    # -- chats (instant alerts) ----------------------------------------------------------------------

    def claim_chats(
        self, worker: str, now: datetime, lease: float, limit: int = 5000, *, exclude: Collection[int] = ()
    ) -> list[int]:
        """Up to ``limit`` subscriptions (not in ``exclude``) with due instant alerts that ``worker`` now sends
        alone (until ``now + lease``, renewed by ``renew_claims``, released by :meth:`release_chats`); the
        chats other workers hold are passed over."""
        stamp = _ts(now)
        free, params = self._free("c.worker", "c.until", worker, now)
        skip = f" AND o.subscription_id NOT IN ({','.join(str(int(i)) for i in exclude)})" if exclude else ""
        candidates = self.conn.execute(
            "SELECT DISTINCT o.subscription_id FROM outbox o JOIN subscriptions s ON s.id = o.subscription_id "
            "LEFT JOIN send_claims c ON c.subscription_id = o.subscription_id "
            "WHERE o.state = 'pending' AND o.kind = 'instant' AND s.paused = 0 "
            "AND (o.next_attempt_at IS NULL OR o.next_attempt_at <= ?) "
            f"AND (s.muted_until IS NULL OR s.muted_until <= ?) AND {free}{skip} ORDER BY o.subscription_id LIMIT ?",
            [stamp, stamp, *params, int(limit)],
        ).fetchall()
        free, params = self._free("send_claims.worker", "send_claims.until", worker, now)
        free = free.replace("send_claims.worker IS NULL OR ", "")  # the row exists when there is a conflict
        until = _ts(now + timedelta(seconds=lease))
        mine: list[int] = []
        with self.transaction() as conn:
            for (subscription_id,) in candidates:
                got = conn.execute(
                    "INSERT INTO send_claims (subscription_id, worker, until) VALUES (?, ?, ?) "
                    "ON CONFLICT (subscription_id) DO UPDATE SET worker = excluded.worker, until = excluded.until "
                    f"WHERE send_claims.worker = excluded.worker OR {free} RETURNING subscription_id",
                    [subscription_id, worker, until, *params],
                ).fetchall()
                if got:
                    mine.append(int(subscription_id))
        return mine

    def release_chats(self, worker: str) -> None:
        with self.transaction() as conn:
            conn.execute("DELETE FROM send_claims WHERE worker = ?", (worker,))

    # -- digests -------------------------------------------------------------------------------------

    def claim_digest(self, subscription_id: int, day: str, worker: str, now: datetime, lease: float) -> bool:
        """True when ``worker`` may send ``subscription_id``'s digest of ``day`` (its local date): nobody
        claimed it, or the claim expired (the worker died) and the digest is not done."""
        free, params = self._free("digest_claims.worker", "digest_claims.until", worker, now)
        free = free.replace("digest_claims.worker IS NULL OR ", "")
        with self.transaction() as conn:
            got = conn.execute(
                "INSERT INTO digest_claims (subscription_id, day, worker, until) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (subscription_id, day) DO UPDATE SET worker = excluded.worker, until = excluded.until "
                f"WHERE digest_claims.done = 0 AND (digest_claims.worker = excluded.worker OR {free}) "
                "RETURNING subscription_id",
                [subscription_id, day, worker, _ts(now + timedelta(seconds=lease)), *params],
            ).fetchall()
        return bool(got)

    def finish_digest(self, subscription_id: int, day: str, worker: str, *, done: bool, now: datetime) -> None:
        """The digest went out (``done``: never claimed again), or it must be tried again (claim released)."""
        with self.transaction() as conn:
            conn.execute(
                "UPDATE digest_claims SET done = ?, until = ? WHERE subscription_id = ? AND day = ? AND worker = ?",
                (int(done), _ts(now), subscription_id, day, worker),
            )
            # days before yesterday are never claimed again: keep the table small
            conn.execute(
                "DELETE FROM digest_claims WHERE subscription_id = ? AND day < ? AND done = 1",
                (subscription_id, (now - timedelta(days=2)).date().isoformat()),
            )

    # -- shared rate limits --------------------------------------------------------------------------

    def take_token(self, name: str, rate: float, burst: float, at: float) -> bool:
        """Take one token from bucket ``name`` (``rate`` tokens a second, at most ``burst`` stored) at wall
        time ``at`` (seconds); False when it is empty (try again later). One statement, so two senders
        taking at once are serialised by the row lock and never both take the last token."""
        refill = "CASE WHEN excluded.at > rate_buckets.at THEN (excluded.at - rate_buckets.at) * ? ELSE 0 END"
        level = f"CASE WHEN rate_buckets.tokens + {refill} > ? THEN ? ELSE rate_buckets.tokens + {refill} END"
        level_params = [float(rate), float(burst), float(burst), float(rate)]
        with self.transaction() as conn:
            got = conn.execute(
                "INSERT INTO rate_buckets (name, tokens, at) VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE SET "
                f"tokens = ({level}) - 1, "
                "at = CASE WHEN excluded.at > rate_buckets.at THEN excluded.at ELSE rate_buckets.at END "
                f"WHERE ({level}) >= 1 RETURNING tokens",
                [name, float(burst) - 1, float(at), *level_params, *level_params],
            ).fetchall()
        return bool(got)
