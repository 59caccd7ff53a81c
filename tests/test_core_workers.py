"""The CPU pool (core/workers.py): where parse and match run, rules reaching process workers once per
rule set, a dead worker's tasks run again, and the gc freeze that keeps start-up's heap out of the
collections. Real spawned processes (one worker each, to stay fast and deterministic)."""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import threading
import weakref
from collections.abc import Iterator
from pathlib import Path

import pytest

import core.workers
from core.workers import (
    GEN0_THRESHOLD,
    POOL_KINDS,
    CpuPool,
    _kept_digests,
    _keyed_call,
    freeze_heap,
    freeze_heap_with,
    refreeze_if_changed,
    tune_gc,
)


@pytest.fixture
def unfrozen() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()  # leave the test process as it was
    gc.set_threshold(*thresholds)
    core.workers._FROZEN_WITH.clear()


class Cyclic:
    def __init__(self) -> None:
        self.me = self


def test_freeze_heap_takes_the_live_heap_out_of_later_collections(unfrozen: None) -> None:
    kept = Cyclic()
    frozen = freeze_heap()
    assert frozen > 1000  # the interpreter's and the test session's objects
    tracked = {id(o) for o in gc.get_objects()}  # what a collection walks: generations 0-2, not the frozen
    assert id(kept) not in tracked
    fresh = Cyclic()
    assert id(fresh) in {id(o) for o in gc.get_objects()}  # what the cycle allocates later is still collected


def test_freeze_heap_again_frees_what_was_frozen_and_dropped_since(unfrozen: None) -> None:
    """An old rule set with reference cycles, frozen at start-up and dropped at a rule swap, is freed by the
    next freeze_heap (memory stays bounded), where a plain second gc.freeze() would keep it forever."""
    old = Cyclic()
    gone = weakref.ref(old)
    freeze_heap()
    del old
    gc.collect()
    assert gone() is not None  # frozen: a collection does not free it
    freeze_heap()
    assert gone() is None


def test_the_heap_is_frozen_again_only_when_the_rule_set_changes(unfrozen: None) -> None:
    rules, edited = object(), object()
    assert not refreeze_if_changed(rules)  # off until the bot's start-up turned it on
    freeze_heap_with(rules)
    old = Cyclic()  # e.g. a structure only the old rule set used
    gone = weakref.ref(old)
    del old
    assert not refreeze_if_changed(rules)  # every cycle with the same rules: no collection
    assert refreeze_if_changed(edited)  # the swap
    assert gone() is None
    assert not refreeze_if_changed(edited)


def test_tune_gc_collects_the_young_generation_less_often_and_freezes(unfrozen: None) -> None:
    rules = object()
    assert tune_gc(rules) > 1000
    assert gc.get_threshold()[0] == GEN0_THRESHOLD > 700
    assert not refreeze_if_changed(rules)  # frozen with these rules: the next cycle does not freeze again


def _where() -> tuple[int, str]:
    return os.getpid(), threading.current_thread().name


def _pid_of(_: object, value: int) -> tuple[int, int]:
    return os.getpid(), value


def _die_once(marker: str) -> int:
    """Kill the worker running it the first time (the marker file records it), answer the second time."""
    path = Path(marker)
    if not path.exists():
        path.write_text("died", encoding="utf-8")
        os.kill(os.getpid(), signal.SIGKILL)
    return os.getpid()


def _die_always() -> int:
    os.kill(os.getpid(), signal.SIGKILL)
    return 0


@pytest.mark.parametrize(
    ("kind", "portable_elsewhere", "portable_thread"),
    [
        ("process", True, None),  # parse and match in another process
        ("thread", False, "cpu"),  # in the pool's threads
        ("inline", False, "MainThread"),  # on the loop
    ],
)
async def test_each_pool_kind_runs_portable_work_where_it_says(
    kind: str, portable_elsewhere: bool, portable_thread: str | None
) -> None:
    pool = CpuPool(kind, workers=1)  # type: ignore[arg-type]
    try:
        pid, thread = await pool.run_portable(_where)
        other_pid, other_thread = await pool.run(_where)  # story work and the encoder: never a process
    finally:
        pool.close()
    assert (pid != os.getpid()) is portable_elsewhere
    if portable_thread is not None:
        assert thread.startswith(portable_thread)
    assert other_pid == os.getpid()
    assert other_thread.startswith("MainThread" if kind == "inline" else "cpu")


def test_an_unknown_pool_kind_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match=r"'processes'.*thread, process, inline"):
        CpuPool("processes")  # type: ignore[arg-type]
    assert POOL_KINDS == ("thread", "process", "inline")


async def test_a_keyed_context_reaches_each_worker_once_and_a_new_one_replaces_it() -> None:
    pool = CpuPool("process", workers=1)
    sends: list[bool] = []
    real = pool._in_process

    async def counting(fn, *args):  # type: ignore[no-untyped-def]
        if fn is _keyed_call:
            sends.append(args[1] is not None)  # (digest, blob, fn, args): was the context's pickle sent?
        return await real(fn, *args)

    pool._in_process = counting  # type: ignore[method-assign]
    try:
        first = [await pool.run_keyed({"rules": 1}, _pid_of, n) for n in range(3)]
        kept = await pool.run_portable(_kept_digests)
        edited = {"rules": 2}
        second = await pool.run_keyed(edited, _pid_of, 9)
        kept_after = await pool.run_portable(_kept_digests)
    finally:
        pool.close()
    assert [value for _, value in first] == [0, 1, 2]
    assert first[0][0] != os.getpid()
    # the first task is refused (missing) and resent with the bytes; the next two carry the digest only
    assert sends[:4] == [False, True, False, False]
    assert len(kept) == 1
    assert second[1] == 9 and sends[4:] == [False, True]  # the new context: sent once more
    assert len(kept_after) == 2 and kept_after[0] == kept[0]


async def test_a_worker_killed_while_idle_does_not_lose_the_next_task() -> None:
    pool = CpuPool("process", workers=1)
    try:
        (first_pid, _) = await pool.run_portable(_where)
        os.kill(first_pid, signal.SIGKILL)
        await asyncio.sleep(0.5)  # the executor notices (or not yet: the retry covers both)
        (second_pid, _) = await pool.run_portable(_where)
    finally:
        pool.close()
    assert second_pid not in (first_pid, os.getpid())


async def test_a_worker_that_dies_during_a_task_has_that_task_run_again(tmp_path: Path) -> None:
    pool = CpuPool("process", workers=1)
    try:
        answered = await pool.run_portable(_die_once, str(tmp_path / "marker"))
        assert pool.restarts == 1
        with pytest.raises(Exception, match="terminated abruptly"):  # twice: that task fails, the pool lives
            await pool.run_portable(_die_always)
        still = await pool.run_portable(_where)
    finally:
        pool.close()
    assert (tmp_path / "marker").exists() and answered != os.getpid()
    assert still[0] != os.getpid()
