"""CPU work off the event loop: parsing a feed body and matching its new items run in a worker pool,
so the loop only does I/O and the bot answers a command while a cycle runs.

Three kinds (``polling.cpu_pool``):

- ``"thread"`` (the default, by measurement): everything in threads. lxml parses without the GIL; the
  pure-Python parts share it with the loop.
- ``"process"``: parse and match (:meth:`CpuPool.run_portable`, :meth:`CpuPool.run_keyed`) run in a
  pool of spawned processes, one per core; the rest of the CPU work (story features, the encoder:
  :meth:`CpuPool.run`) stays in threads.
- ``"inline"``: on the loop, as before issue 16, for comparison.

Why threads stay the default (``python3 bench/poll.py --feeds 5000 --pipeline --every 16 --no-floors
--pool thread|process``, minutes apart at load 4.5–5, figures in the README): processes took 138 s wall
and 119 s CPU against 129 s and 110 s with threads, and did not shorten the loop's longest stall
(365 ms against 269 ms). Parse and match are only about an eighth of a cycle's CPU (py-spy at 1,000
feeds: 130 of ~1,060 busy samples; story features, SQLite and fetching are the rest, and they stay in
this process), while each feed's body, its Items and their matches cross a pipe, pickled on the loop's
side too. ``"process"`` remains for machines with more cores, where parsing and matching would
otherwise compete for the GIL.

Rules reach a process worker once, not with every task: :meth:`CpuPool.run_keyed` sends a context
(the RuleSet, which pickles as its sources and is compiled again on load: ~45 ms) by the digest of its
pickle; the worker keeps the unpickled object by that digest, and only a worker that does not have it
yet is sent the bytes (it answers "missing", the pool resends). A rule edit is a new RuleSet, so a new
digest: it reaches every worker on the next cycle by construction. A worker that dies (killed, out of
memory) breaks a ``ProcessPoolExecutor`` for every task in flight; the pool starts a fresh executor and
runs those tasks again, once, so no feed's poll is lost; a task that kills its worker twice raises
(that feed's poll is an error, retried next cycle) and the pool lives on.

Garbage collection (:func:`tune_gc`, at the bot's start-up): the heap after start-up (rules, modules,
lxml: ~71,000 tracked objects) is walked again by every gen-2 collection, 16 of them in a 5,000-feed
first cycle (1.5–1.8 s in all, up to 132 ms of CPU each, in whichever thread allocates, holding the GIL).
``gc.freeze`` moves those objects out of the collector's walks, and a gen-0 threshold of 20,000 (not
700) lets a feed's short-lived objects die by reference counting before they are promoted: the same
cycle then runs no gen-2 collection at all (idle machine: 16 → 0, 1.5 s of pauses and ~4 s of CPU
saved), at about the same peak RSS (142.8 → 144.3 MB; target ≤ 150). The loop's longest stall is not
the collector's: it was a SQLite commit waiting for the disk (a WAL checkpoint's sync, ~0.5–0.7 s wall
for ~45 ms CPU), which now runs on a thread of its own (store/sqlite.py ``Checkpointer``).
A rule swap freezes again (:func:`refreeze_if_changed`), unfreezing first, so an old rule set's
reference cycles are still freed: memory stays bounded.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import gc
import hashlib
import logging
import multiprocessing
import os
import pickle
from collections.abc import Callable
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Literal, TypeVar, cast, get_args

T = TypeVar("T")
PoolKind = Literal["thread", "process", "inline"]
POOL_KINDS: tuple[str, ...] = get_args(PoolKind)

log = logging.getLogger(__name__)


def freeze_heap() -> int:
    """Collect garbage once, then exempt every surviving object from later collections (``gc.freeze``).

    Call it when the long-lived heap has just changed (after start-up, after a rule swap): frozen objects
    from an earlier call are unfrozen first and collected with the rest, so what was dropped since (an
    old rule set, even one with reference cycles) is freed, not kept forever. Returns the number of
    objects frozen."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


GEN0_THRESHOLD = 20_000  # allocations between young collections (CPython's default: 700); see tune_gc


def tune_gc(marker: object) -> int:
    """The bot's start-up: young collections every :data:`GEN0_THRESHOLD` allocations, so a feed's
    short-lived objects (bodies' entries, Items, hits) die by reference counting before they are promoted
    and a cycle needs no gen-2 collection at all, then :func:`freeze_heap_with` ``marker``."""
    gc.set_threshold(GEN0_THRESHOLD, *gc.get_threshold()[1:])
    return freeze_heap_with(marker)


_FROZEN_WITH: list[object] = []  # the rule set the heap was last frozen with (empty: freezing is off)


def freeze_heap_with(marker: object) -> int:
    """:func:`freeze_heap`, and remember ``marker`` (the rule set): turns :func:`refreeze_if_changed` on."""
    _FROZEN_WITH[:] = [marker]
    return freeze_heap()


def refreeze_if_changed(marker: object) -> bool:
    """Freeze again when ``marker`` (a cycle's rule set) is not the one the heap was frozen with: once per
    rule swap, off unless :func:`freeze_heap_with` ran (at the bot's start-up). True when it froze."""
    if not _FROZEN_WITH or _FROZEN_WITH[0] is marker:
        return False
    freeze_heap_with(marker)
    return True


class _Missing:
    """A process worker's answer when it does not keep the context a task named (send it the bytes)."""


_KEPT: dict[str, Any] = {}  # in a worker process: contexts by digest, the newest few
_KEEP = 2


def _keyed_call(digest: str, blob: bytes | None, fn: Callable[..., T], args: tuple[Any, ...]) -> T | _Missing:
    context = _KEPT.get(digest)
    if context is None:
        if blob is None:
            return _Missing()
        context = _KEPT[digest] = pickle.loads(blob)  # a RuleSet compiles here, once per worker
        while len(_KEPT) > _KEEP:
            del _KEPT[next(iter(_KEPT))]
    return fn(context, *args)


def _kept_digests() -> list[str]:
    """The digests a worker keeps (for tests)."""
    return list(_KEPT)


class CpuPool:
    """A bounded pool for CPU-bound calls.

    ``await pool.run(fn, *args)``: any callable, in threads (inline for ``"inline"``).
    ``await pool.run_portable(fn, *args)``: a module-level function with picklable arguments and
    result: in processes for ``"process"``, else as :meth:`run`.
    ``await pool.run_keyed(context, fn, *args)``: ``fn(context, *args)`` where ``context`` (a RuleSet)
    is sent to each process worker once and kept there by its digest.
    """

    def __init__(self, kind: PoolKind = "thread", workers: int | None = None) -> None:
        if kind not in POOL_KINDS:
            raise ValueError(f"unknown CPU pool kind {kind!r} (one of {', '.join(POOL_KINDS)})")
        self.kind = kind
        self.workers = workers or max(2, os.cpu_count() or 2)
        self._threads: concurrent.futures.ThreadPoolExecutor | None = None
        self._processes: concurrent.futures.ProcessPoolExecutor | None = None
        self._pickle: tuple[Any, str, bytes] | None = None  # the last context sent, its digest and bytes
        self.restarts = 0  # process executors replaced after a worker died
        if kind != "inline":
            self._threads = concurrent.futures.ThreadPoolExecutor(self.workers, thread_name_prefix="cpu")

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        if self._threads is None:
            return fn(*args, **kwargs)
        call = functools.partial(fn, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self._threads, call)

    async def run_portable(self, fn: Callable[..., T], *args: Any) -> T:
        if self.kind != "process":
            return await self.run(fn, *args)
        return await self._in_process(fn, *args)

    async def run_keyed(self, context: Any, fn: Callable[..., T], *args: Any) -> T:
        if self.kind != "process":
            return await self.run(fn, context, *args)
        digest, blob = self._pickled(context)
        result = await self._in_process(_keyed_call, digest, None, fn, args)
        if isinstance(result, _Missing):  # this worker has not seen the context yet: send it the bytes
            result = await self._in_process(_keyed_call, digest, blob, fn, args)
        return cast(T, result)

    def _pickled(self, context: Any) -> tuple[str, bytes]:
        if self._pickle is None or self._pickle[0] is not context:
            # once per context object: a cycle's RuleSet is pickled once, not once a feed
            blob = pickle.dumps(context, protocol=pickle.HIGHEST_PROTOCOL)
            self._pickle = (context, hashlib.sha256(blob).hexdigest(), blob)
        return self._pickle[1], self._pickle[2]

    def _executor(self) -> concurrent.futures.ProcessPoolExecutor:
        if self._processes is None:
            # spawn, never fork: the bot's process has threads (PTB, the thread pool, SQLite) a fork would copy
            context = multiprocessing.get_context("spawn")
            self._processes = concurrent.futures.ProcessPoolExecutor(self.workers, mp_context=context)
        return self._processes

    async def _in_process(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        for attempt in (1, 2):
            executor = self._executor()
            try:
                return await loop.run_in_executor(executor, functools.partial(fn, *args))
            except BrokenProcessPool:
                if self._processes is executor:  # the first task to hear of it replaces the executor
                    self._processes = None
                    self.restarts += 1
                    executor.shutdown(wait=False, cancel_futures=True)
                    log.warning("cpu_worker_died restarts=%d: a fresh process pool runs the tasks again", self.restarts)
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def worker_pids(self) -> list[int]:
        """The live process workers' pids (none until the first portable task)."""
        processes = getattr(self._processes, "_processes", None) or {}
        return [p.pid for p in processes.values() if p.pid is not None]

    def close(self) -> None:
        if self._threads is not None:
            self._threads.shutdown(wait=True, cancel_futures=True)
            self._threads = None
        if self._processes is not None:
            self._processes.shutdown(wait=True, cancel_futures=True)
            self._processes = None


_DEFAULTS: dict[str, CpuPool] = {}


def default_pool(kind: PoolKind = "thread") -> CpuPool:
    """The process's shared pool of ``kind`` (created on first use), for callers not given a pool: a
    Pipeline takes the one its ``polling.cpu_pool`` names."""
    pool = _DEFAULTS.get(kind)
    if pool is None:
        pool = _DEFAULTS[kind] = CpuPool(kind)
    return pool
