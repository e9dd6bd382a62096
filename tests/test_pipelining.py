"""How deep a worker's line may get (pipelining): deep for tiny calls, so that a busy worker never
waits for the supervisor, and short for slow ones, so that a fast call does not wait behind them;
and under sustained load every worker serves, not only the one that loaded the plugin first."""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace

import anyio
import anyio.lowlevel
import pytest
from support import POOL_WAT, wait_for, write_plugin

from cortex_runtime import Runtime
from cortex_runtime.flags import flag_type
from cortex_runtime.pool import AFFINITY_LINE, PoolConfig, WorkerPool

pytestmark = pytest.mark.anyio

#: echo; busy loops: tarry 1 billion iterations (about a second), linger 20 million
#: (tens of milliseconds), dawdle 1 million (about a millisecond: one worker alone cannot keep up
#: with many callers).
LINGER_WAT = r"""
(module
  (memory (export "memory") 1 64)
  (global $top (mut i32) (i32.const 1024))
  (func $alloc (export "cortex_alloc") (param $n i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $top))
    (global.set $top (i32.add (i32.add (global.get $top) (local.get $n)) (i32.const 4)))
    (local.get $p))
  (func (export "echo") (param $ptr i32) (param $len i32) (result i32)
    (local $out i32)
    (local.set $out (call $alloc (i32.add (local.get $len) (i32.const 4))))
    (i32.store (local.get $out) (local.get $len))
    (memory.copy (i32.add (local.get $out) (i32.const 4)) (local.get $ptr) (local.get $len))
    (local.get $out))
  (func $one_after (param $n i32) (result i32)
    (local $i i32)
    (local $out i32)
    (loop $again
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $again (i32.lt_u (local.get $i) (local.get $n))))
    (local.set $out (call $alloc (i32.const 5)))
    (i32.store (local.get $out) (i32.const 1))
    (i32.store8 (i32.add (local.get $out) (i32.const 4)) (i32.const 0x31))
    (local.get $out))
  (func (export "linger") (param i32 i32) (result i32)
    (call $one_after (i32.const 20000000)))
  (func (export "tarry") (param i32 i32) (result i32)
    (call $one_after (i32.const 1000000000)))
  (func (export "dawdle") (param i32 i32) (result i32)
    (call $one_after (i32.const 1000000)))
)
"""


async def _no_warmup(worker: object) -> None:
    return None


def _pool(**config: object) -> WorkerPool:
    return WorkerPool(PoolConfig(workers=2, **config), _no_warmup)  # type: ignore[arg-type]


def test_the_line_follows_the_service_time() -> None:
    pool = _pool(pipeline_budget=0.004, pipeline_depth=64)
    worker = SimpleNamespace(service_time=0.0)
    assert pool._line_limit(worker) == AFFINITY_LINE  # type: ignore[arg-type]  # nothing known yet
    for service, expected in ((0.00005, 64), (0.0002, 20), (0.001, 4), (0.003, 1), (0.5, 1)):
        worker.service_time = service
        assert pool._line_limit(worker) == expected, service  # type: ignore[arg-type]
    assert _pool(pipeline_depth=1)._line_limit(SimpleNamespace(service_time=1e-5)) == 1  # type: ignore[arg-type]


class FakeWorker:
    """What ``WorkerPool._pick`` reads of a worker."""

    def __init__(self, *, loaded: set[str], line: int, service_time: float, last_used: float) -> None:
        self.loaded, self.load_sent, self.prepared = loaded, set(), {}
        self.load_errors: dict[str, str] = {}
        self.lent = self.inflight = line
        self.service_time, self.last_used = service_time, last_used
        self.doomed = self.draining = False
        self.failed = None
        self.alive = True
        self.ended = False
        self.accepts_more = True

    def head_age(self) -> float:
        return 0.0001 if self.inflight else 0.0

    @property
    def working(self) -> int:
        return self.inflight  # no chores in flight


def test_a_long_line_sends_the_next_call_to_a_worker_without_the_plugin() -> None:
    pool = _pool()
    busy = FakeWorker(loaded={"p"}, line=AFFINITY_LINE + 2, service_time=0.00005, last_used=1.0)
    idle = FakeWorker(loaded=set(), line=0, service_time=0.00005, last_used=2.0)
    pool._ready[:] = [busy, idle]  # type: ignore[list-item]
    # busy has room (its tiny calls allow a deep line) but another worker should load the plugin
    assert pool._pick("p") is idle
    busy.lent = busy.inflight = AFFINITY_LINE - 1
    assert pool._pick("p") is busy  # a short line: having the plugin wins over an idle worker
    other = FakeWorker(loaded={"p"}, line=2, service_time=0.00005, last_used=3.0)
    busy.lent = busy.inflight = 9
    pool._ready[:] = [busy, other]  # type: ignore[list-item]
    assert pool._pick("p") is other  # both have it: the shorter line
    other.inflight, other.lent = 0, 12  # lent, not yet sent (callers of one event-loop turn)
    assert pool._pick("p") is busy


def test_sequential_calls_stay_on_the_most_recently_used_idle_worker() -> None:
    pool = _pool(resident_plugins=2)
    older = FakeWorker(loaded={"p"}, line=0, service_time=0.00005, last_used=1.0)
    newer = FakeWorker(loaded={"p"}, line=0, service_time=0.00005, last_used=2.0)
    older.prepared = newer.prepared = {"p": None}
    pool._ready[:] = [older, newer]  # type: ignore[list-item]
    assert pool._pick("p") is newer  # its CPU and caches are the warmest
    newer.prepared = {}
    # An instance made ahead on the other worker counts for less than waking that worker.
    assert pool._pick("p") is newer
    newer.loaded = {"q"}
    assert pool._pick("p") is newer  # without the plugin, but with room to load it
    newer.loaded = {"q", "r"}
    assert pool._pick("p") is older  # full: loading it would unload another
    newer.loaded = {"q"}
    newer.load_errors = {"p": "the module cannot be linked"}
    assert pool._pick("p") is older  # it could not load this one before
    newer.load_errors = {}
    newer.lent = newer.inflight = 1
    assert pool._pick("p") is older  # busy: the idle one that has the plugin
    older.loaded = set()
    newer.loaded = {"p"}
    assert pool._pick("p") is newer  # a short line on the plugin's worker beats a load elsewhere
    assert _pool()._may_take(older, "p")  # type: ignore[arg-type]  # no bound: room for any


async def test_sequential_calls_over_plugins_loaded_into_different_workers_settle_on_one(
        tmp_path: Path) -> None:
    folders = [write_plugin(tmp_path, name, POOL_WAT.rstrip()[:-1] + f'(data (i32.const 8) "{name}"))')
               for name in ("left", "right")]
    async with Runtime(workers=2, spare_workers=0, cache_dir=tmp_path / "cache") as rt:
        for folder in folders:  # compiled and cached
            await rt.load(folder)
    picked: list[int] = []
    async with Runtime(workers=2, spare_workers=0, cache_dir=tmp_path / "cache") as rt:
        pool = rt._pool
        for folder in folders:  # known: each load goes ahead to an idle worker, so one each
            await rt.load(folder)
        await wait_for(lambda: sum(len(w.loaded) for w in pool._ready) == 2)
        assert sorted(len(w.loaded) for w in pool._ready) == [1, 1]
        pick = pool._pick

        def recording_pick(prefer: str | None) -> object:
            worker = pick(prefer)
            if worker is not None:
                picked.append(worker.pid)
            return worker

        pool._pick = recording_pick  # type: ignore[method-assign,assignment]
        for index in range(40):
            name = ("left", "right")[index % 2]
            assert await rt.call(name, "echo", {"n": index}) == {"n": index}
    assert len(picked) == 40
    assert len(set(picked[2:])) == 1, picked  # after each plugin's first call, one worker


async def test_callers_waiting_in_line_leave_it_cleanly_when_cancelled() -> None:
    """A caller cancelled while it waits for a worker leaves the line; one whose turn comes after it
    was cancelled, before it could leave, passes the turn on: the next caller in line is not left
    waiting for a worker that is free."""
    pool = _pool()
    pool._new_flag = flag_type()  # what start() sets for the running event loop
    worker = FakeWorker(loaded={"p"}, line=1, service_time=0.00005, last_used=1.0)
    worker.accepts_more = False  # busy, and its line is full: callers wait
    pool._ready[:] = [worker]  # type: ignore[list-item]
    got: dict[str, object] = {}
    scopes = {name: anyio.CancelScope() for name in "abcd"}

    async def caller(name: str) -> None:
        with scopes[name]:
            got[name] = await pool.acquire("p")

    async with anyio.create_task_group() as tg:
        for count, name in enumerate("abcd", 1):  # in this order (trio may start them in any)
            tg.start_soon(caller, name)
            await wait_for(lambda count=count: len(pool._waiters) == count)
        scopes["b"].cancel()  # its turn never came
        await wait_for(lambda: pool._waiting == 3)
        assert len(pool._waiters) == 3
        worker.lent = worker.inflight = 0
        worker.accepts_more = True  # the worker is free for one caller
        scopes["a"].cancel()  # a is cancelled, and before it could leave the line ...
        pool._wake_one()  # ... its turn comes: it must pass the turn on
        await wait_for(lambda: bool(got))
        assert got == {"c": worker} and worker.lent == 1
        scopes["d"].cancel()
    assert got == {"c": worker}
    assert pool._waiting == 0 and not pool._waiters


async def test_sustained_load_is_spread_over_every_worker(tmp_path: Path) -> None:
    # Calls one worker alone cannot keep up with: the plugin is loaded into one worker, the other
    # takes its share once the first one's line is long.
    folder = write_plugin(tmp_path, "busy", LINGER_WAT, limits={"fuel": 10**9})
    async with Runtime(workers=2, cache_dir=tmp_path / "cache") as rt:
        await rt.load(folder)
        results: dict[tuple[int, int], object] = {}

        async def caller(c: int) -> None:
            for i in range(5):
                results[c, i] = await rt.call("busy", "dawdle", [c, i])

        async with anyio.create_task_group() as tg:
            for c in range(64):
                tg.start_soon(caller, c)
        assert results == {(c, i): 1 for c in range(64) for i in range(5)}
        served = sorted(worker.calls for worker in rt._pool._ready)
        assert len(served) == 2 and sum(served) >= 320
        # Each worker takes what its recent pace allows (a worker short of CPU takes less): a share,
        # not an equal one. Without spreading the second worker served one call in a thousand.
        assert served[0] >= 0.05 * sum(served), served


@pytest.mark.parametrize("history", ["slow calls before", "first call"])
async def test_fast_calls_do_not_wait_behind_a_slow_one(tmp_path: Path, history: str) -> None:
    # Either the workers' recent calls were slow (their lines shrink to one request), or the slow
    # capability was never called (nothing is queued behind a call nobody knows the pace of).
    folder = write_plugin(tmp_path, "mixed", LINGER_WAT, limits={"fuel": 10**10, "timeoutMs": 20_000})
    async with Runtime(workers=2, cache_dir=tmp_path / "cache") as rt:
        await rt.load(folder)
        for _ in range(20):  # echo is known to be quick: calls may queue behind it
            assert await rt.call("mixed", "echo", "warm") == "warm"
        if history == "slow calls before":
            async with anyio.create_task_group() as tg:
                for _ in range(8):
                    tg.start_soon(rt.call, "mixed", "linger", None)
            assert all(worker.service_time > 0.004 for worker in rt._pool._ready)
        finished: dict[str, float] = {}

        async def slow() -> None:
            assert await rt.call("mixed", "tarry", None) == 1
            finished["slow"] = time.monotonic()

        async def fast(i: int) -> None:
            assert await rt.call("mixed", "echo", i) == i
            finished[f"fast {i}"] = time.monotonic()

        async with anyio.create_task_group() as tg:
            tg.start_soon(slow)
            await anyio.lowlevel.checkpoint()  # the slow call is in its worker's pipe first
            for i in range(5):
                tg.start_soon(fast, i)
        # None of the fast calls was queued behind the slow one (each worker's line holds one
        # request while its calls take longer than the budget): they all ran on the other worker.
        assert max(t for name, t in finished.items() if name != "slow") < finished["slow"]


async def test_nothing_queues_behind_a_capability_that_retires_its_worker(tmp_path: Path) -> None:
    # A call that traps retires its worker: every request queued behind it would be answered
    # "retired" and sent again. After one trap, its capability's calls take no one behind them.
    from cortex_runtime.errors import PluginTrap

    folder = write_plugin(tmp_path, "trappy", POOL_WAT)
    async with Runtime(workers=2, cache_dir=tmp_path / "cache", quarantine_after=0) as rt:
        info = await rt.load(folder)
        for _ in range(5):
            assert await rt.call("trappy", "echo", 1) == 1
        quick = rt._pace[info.sha256, "echo"]
        assert quick <= rt._pool.config.pipeline_max_head_age  # echo may be queued behind
        with pytest.raises(PluginTrap):
            await rt.call("trappy", "boom", None)
        assert rt._pace[info.sha256, "boom"] > rt._pool.config.pipeline_max_head_age
        assert rt._pace[info.sha256, "echo"] == quick
