"""CPU work off the event loop: parsing a feed body and matching its new items run in a worker pool,
so the loop only does I/O and the bot answers a command while a 1,000-feed cycle runs.

Threads, not processes, by measurement (2 cores, figures in the README): ``python bench/poll.py``'s
first cycle of 1,000 feeds × 20 items took 3.4 s with threads against 4.7 s with a process pool (more
CPU: 2.4 s against 3.5 s), and ``python bench/responsive.py`` answered ``/start`` during a cycle at p95
141 ms with threads against 273 ms with parsing in processes. A process pool pays pickling of every
body and every Item list each way,
and a RuleSet (an Aho-Corasick automaton, RE2 sets) would have to be rebuilt in each worker at every rule
edit; with threads the RuleSet a cycle got from ``rules()`` is simply the object the workers use, so an
edit reaches them on the next cycle by construction. lxml parses without the GIL; the pure-Python parts
(entry normalising, matching) share it with the loop, which still gets the GIL at every switch interval
(5 ms), so a command is never stuck behind a whole feed, let alone a whole cycle.

``kind="process"`` exists for that measurement (and machines where it wins); ``"inline"`` runs the
function on the loop, as before, for comparison.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import multiprocessing
import os
from collections.abc import Callable
from typing import Any, Literal, TypeVar

T = TypeVar("T")
PoolKind = Literal["thread", "process", "inline"]


class CpuPool:
    """A bounded pool for CPU-bound calls: ``await pool.run(fn, *args, **kwargs)``."""

    def __init__(self, kind: PoolKind = "thread", workers: int | None = None) -> None:
        self.kind = kind
        self.workers = workers or max(2, os.cpu_count() or 2)
        self._executor: concurrent.futures.Executor | None = None
        if kind == "thread":
            self._executor = concurrent.futures.ThreadPoolExecutor(self.workers, thread_name_prefix="cpu")
        elif kind == "process":
            # spawn, never fork: the bot's process has threads (PTB, the thread pool, SQLite) a fork would copy
            context = multiprocessing.get_context("spawn")
            self._executor = concurrent.futures.ProcessPoolExecutor(self.workers, mp_context=context)

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        if self._executor is None:
            return fn(*args, **kwargs)
        call = functools.partial(fn, *args, **kwargs) if kwargs else functools.partial(fn, *args)
        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None


_DEFAULT: CpuPool | None = None


def default_pool() -> CpuPool:
    """The process's shared thread pool (created on first use), for callers not given a pool."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = CpuPool("thread")
    return _DEFAULT
