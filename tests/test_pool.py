"""The supervisor pool under inflicted failures: SIGKILL, cancellation, overload, recycling,
restart storms, and shutdown. Every test asserts that nothing is lost and nothing leaks."""

from __future__ import annotations

import logging
import os
import signal
import time
from pathlib import Path

import anyio
import psutil
import pytest
import structlog
import structlog.stdlib
from structlog.testing import capture_logs
from support import (
    cancel_after_checkpoints,
    children,
    gone_soon,
    runtime_pids,
    wait_for,
    wait_gone,
    write_plugin,
)

import cortex_runtime.worker as worker_module
from cortex_runtime import Runtime
from cortex_runtime.errors import (
    CallTimeout,
    Overloaded,
    PluginTrap,
    RuntimeClosed,
    WorkerCrashed,
)
from cortex_runtime.logs import debug_dropped

pytestmark = pytest.mark.anyio


@pytest.fixture
def plugin_dir(tmp_path: Path) -> Path:
    return write_plugin(tmp_path / "plugins", "pool")


def runtime(tmp_path: Path, **options: object) -> Runtime:
    options.setdefault("workers", 2)
    options.setdefault("quarantine_after", 0)
    return Runtime(cache_dir=tmp_path / "cache", **options)  # type: ignore[arg-type]


async def echo_many(rt: Runtime, count: int, results: list[object]) -> None:
    async def one(i: int) -> None:
        results.append(await rt.call("pool", "echo", {"i": i}))

    async with anyio.create_task_group() as tg:
        for i in range(count):
            tg.start_soon(one, i)


async def test_sigkill_of_a_busy_worker_fails_only_its_call(tmp_path: Path, plugin_dir: Path) -> None:
    async with runtime(tmp_path, workers=2) as rt:
        await rt.load(plugin_dir)
        outcome: list[BaseException] = []

        async def victim() -> None:
            try:
                await rt.call("pool", "spin", {}, timeout=30)
            except WorkerCrashed as exc:
                outcome.append(exc)

        results: list[object] = []
        async with anyio.create_task_group() as tg:
            tg.start_soon(victim)
            await wait_for(lambda: len(rt.busy_worker_pids) == 1)
            busy = rt.busy_worker_pids[0]
            os.kill(busy, signal.SIGKILL)
            tg.start_soon(echo_many, rt, 20, results)
        assert len(outcome) == 1 and "signal 9" in str(outcome[0])
        assert sorted(r["i"] for r in results) == list(range(20))  # type: ignore[index]
        assert not wait_gone([busy])
        assert busy not in rt.worker_pids
        await wait_for(lambda: len(rt.worker_pids) == 3)  # 2 workers + the spare, restored
        assert await rt.call("pool", "echo", [1, 2]) == [1, 2]


async def _trap_once(rt: Runtime) -> int:
    """Trap a call on the one serving worker; that worker's pid."""
    before = set(rt.worker_pids)
    with pytest.raises(PluginTrap):
        await rt.call("pool", "boom", {})
    [trapped] = before - set(rt.worker_pids)
    return trapped


async def test_a_trapped_worker_is_frozen_at_once_and_killed_once_the_next_calls_ran(
    tmp_path: Path, plugin_dir: Path, anyio_backend: str
) -> None:
    def status(pid: int) -> str:
        try:
            return str(psutil.Process(pid).status())
        except psutil.NoSuchProcess:
            return "gone"

    async with runtime(tmp_path, workers=1, spare_workers=1) as rt:
        rt._pool.config.kill_settle = 2.0  # time enough to see it stopped on a busy machine
        await rt.load(plugin_dir)
        trapped = await _trap_once(rt)
        if anyio_backend == "asyncio":
            # frozen: it runs nothing more; its exit's CPU waits until the next calls have run
            await wait_for(lambda: status(trapped) == psutil.STATUS_STOPPED, timeout=1.0)
        for i in range(5):
            assert await rt.call("pool", "echo", i) == i
        seen = set()
        with anyio.fail_after(rt._pool.config.kill_settle + 5):  # then killed and reaped
            while await gone_soon([trapped], timeout=0.01):
                seen.add(status(trapped))
        if anyio_backend == "trio":
            # spawned without PR_SET_PDEATHSIG, a stopped worker would outlive a dead
            # supervisor: killed at once instead
            assert psutil.STATUS_STOPPED not in seen


async def test_closing_kills_a_frozen_worker_without_waiting_out_the_settle(
    tmp_path: Path, plugin_dir: Path
) -> None:
    async with runtime(tmp_path, workers=1, spare_workers=1) as rt:
        rt._pool.config.kill_settle = 60.0
        await rt.load(plugin_dir)
        trapped = await _trap_once(rt)
        closing = anyio.current_time()
    assert anyio.current_time() - closing < 30
    assert not wait_gone([trapped])
    assert trapped not in [child.pid for child in children()]


async def test_worker_killed_while_idle_is_replaced_without_losing_the_next_call(
    tmp_path: Path, plugin_dir: Path
) -> None:
    async with runtime(tmp_path, workers=1, spare_workers=1) as rt:
        await rt.load(plugin_dir)
        pids = rt.worker_pids
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        assert not wait_gone(pids)
        for i in range(5):
            assert await rt.call("pool", "echo", i) == i


async def test_a_call_written_to_a_worker_that_died_before_reading_it_runs_elsewhere(
    tmp_path: Path, plugin_dir: Path
) -> None:
    """A worker killed while idle keeps its request pipe open until its last thread has exited
    (~2 ms): a call written meanwhile is in the pipe when the worker's end closes. Stopped, the
    worker cannot read it: every byte of it is still there, so it never ran and is retried."""
    async with runtime(tmp_path, workers=1, spare_workers=1) as rt:
        await rt.load(plugin_dir)
        assert await rt.call("pool", "echo", 0) == 0
        [victim] = [w.pid for w in rt._pool._ready]
        os.kill(victim, signal.SIGSTOP)
        await wait_for(lambda: psutil.Process(victim).status() == psutil.STATUS_STOPPED)
        results: list[object] = []
        async with anyio.create_task_group() as tg:
            tg.start_soon(echo_many, rt, 3, results)
            await wait_for(lambda: rt.busy_worker_pids == [victim])
            await anyio.sleep(0.05)
            os.kill(victim, signal.SIGKILL)
        assert sorted(r["i"] for r in results) == [0, 1, 2]  # type: ignore[index]
        assert not await gone_soon([victim])


async def test_idle_workers_and_spares_killed_are_replaced_at_once(
    tmp_path: Path, plugin_dir: Path
) -> None:
    """A worker SIGKILLed while idle (or waiting as the spare) is replaced without waiting for a
    caller to draw it: the pool is back to full strength with no call made."""
    async with runtime(tmp_path, workers=2, spare_workers=1) as rt:
        await rt.load(plugin_dir)
        await wait_for(lambda: len(rt.worker_pids) == 3)
        victims = rt.worker_pids
        for pid in victims:
            os.kill(pid, signal.SIGKILL)
        assert not wait_gone(victims)
        await wait_for(lambda: len(rt.worker_pids) == 3 and not set(rt.worker_pids) & set(victims),
                       timeout=15)
        assert rt.stats["died_idle"] == 3
        assert {p.pid for p in children()} == runtime_pids(rt)
        assert [await rt.call("pool", "echo", i) for i in range(4)] == list(range(4))
        assert rt.stats["started"] == 6


async def test_a_worker_dead_before_the_pool_knows_loses_no_call(
    tmp_path: Path, plugin_dir: Path
) -> None:
    """A worker that died a moment ago, before the event loop could tell anyone (not reaped, its
    reply pipe not yet read to the end), may still be picked: the call's request then finds its
    pipe closed and goes to another worker, which answers it."""
    async with runtime(tmp_path, workers=2, spare_workers=0) as rt:
        await rt.load(plugin_dir)
        for i in range(3):
            assert await rt.call("pool", "echo", i) == i
        # sequential calls stay on the most recently used worker: the next one would go there
        victim = max(rt._pool._ready, key=lambda worker: worker.last_used)
        os.kill(victim.pid, signal.SIGKILL)
        time.sleep(0.3)  # noqa: ASYNC251 (the point: the event loop does not run meanwhile)
        assert victim.failed is None and not victim.ended  # nothing noticed yet
        assert await rt.call("pool", "echo", "after") == "after"
        assert victim.doomed  # the request found its pipe closed
        await wait_for(lambda: victim.pid not in rt.worker_pids and len(rt.worker_pids) == 2)
        assert [await rt.call("pool", "echo", i) for i in range(4)] == list(range(4))


@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_workers_outlive_the_thread_that_spawned_them(tmp_path: Path, plugin_dir: Path) -> None:
    """Trio forks from its thread cache, whose idle threads exit after 10 s; PR_SET_PDEATHSIG
    would then SIGKILL every worker. Workers must live on (found by the pipelining work)."""
    async with runtime(tmp_path, workers=2, spare_workers=1) as rt:
        await rt.load(plugin_dir)
        pids = rt.worker_pids
        await anyio.sleep(12)
        assert rt.worker_pids == pids
        assert rt.stats.get("killed", 0) == 0 and rt.stats.get("died_idle", 0) == 0
        assert await rt.call("pool", "echo", "still here") == "still here"


async def test_cancelled_call_kills_its_worker_and_leaks_nothing(tmp_path: Path, plugin_dir: Path) -> None:
    fds_before = psutil.Process().num_fds()
    async with runtime(tmp_path, workers=1, spare_workers=1) as rt:
        await rt.load(plugin_dir)
        with anyio.move_on_after(0.3) as scope:
            await rt.call("pool", "spin", {}, timeout=30)
        assert scope.cancelled_caught
        assert rt.busy_worker_pids == []
        await wait_for(lambda: len(rt.worker_pids) == 2)
        assert await rt.call("pool", "echo", "after") == "after"
        pids = rt.worker_pids
        assert {p.pid for p in children()} == runtime_pids(rt)
    assert not wait_gone(pids)
    assert children() == []
    assert psutil.Process().num_fds() <= fds_before


async def test_cancellation_at_every_point_of_a_call(tmp_path: Path, plugin_dir: Path) -> None:
    """Cancel after k scheduler checkpoints, k = 0, 1, 2, ... until the call completes untouched
    (trio-parallel's exhaustive pattern): every await in the call path gets cancelled once, and
    after each the pool must be healthy, with no leaked worker, pipe or task."""
    fds_before = psutil.Process().num_fds()
    # Each cancellation mid-call costs a worker; lift the restart intensity so the test measures
    # cancellation, not back-off.
    async with runtime(tmp_path, workers=1, spare_workers=1, max_restarts=100_000) as rt:
        await rt.load(plugin_dir)
        completed = cancelled = 0
        checkpoints = 0
        while completed < 3 and checkpoints < 2000:
            done, caught = await cancel_after_checkpoints(
                checkpoints, lambda k=checkpoints: rt.call("pool", "echo", {"k": k}))
            completed += done
            cancelled += caught
            checkpoints += 1
            await wait_for(lambda: rt.busy_worker_pids == [] and len(rt.worker_pids) == 2)
            assert await rt.call("pool", "echo", checkpoints) == checkpoints
        assert completed == 3 and cancelled >= 1
        assert {p.pid for p in children()} == runtime_pids(rt)
    assert children() == []
    assert psutil.Process().num_fds() <= fds_before


async def test_leaving_the_runtime_stops_every_worker(tmp_path: Path, plugin_dir: Path) -> None:
    async with runtime(tmp_path, workers=3) as rt:
        await rt.load(plugin_dir)
        pids = rt.worker_pids
        assert len(pids) == 4
    assert not wait_gone(pids)
    assert children() == []
    with pytest.raises(RuntimeClosed):
        await rt.call("pool", "echo", 1)


async def test_calls_in_flight_at_shutdown_end_with_a_typed_error(tmp_path: Path, plugin_dir: Path) -> None:
    errors: list[BaseException] = []

    async def doomed_call(rt: Runtime) -> None:
        try:
            await rt.call("pool", "spin", {}, timeout=30)
        except (WorkerCrashed, RuntimeClosed) as exc:
            errors.append(exc)

    async with anyio.create_task_group() as tg, runtime(tmp_path, workers=1) as rt:
        await rt.load(plugin_dir)
        tg.start_soon(doomed_call, rt)
        await wait_for(lambda: len(rt.busy_worker_pids) == 1)
    assert len(errors) == 1
    assert children() == []


async def test_a_full_queue_is_overloaded_not_unbounded(tmp_path: Path, plugin_dir: Path) -> None:
    async with runtime(tmp_path, workers=1, spare_workers=0, max_queue=2) as rt:
        await rt.load(plugin_dir)
        outcomes: list[str] = []

        async def call(capability: str) -> None:
            try:
                # Fuel to spare: on a fast machine the manifest's fuel runs out before 0.5 s.
                await rt.call("pool", capability, {}, timeout=0.5, fuel=2**62)
                outcomes.append("ok")
            except CallTimeout:
                outcomes.append("timeout")
            except Overloaded:
                outcomes.append("overloaded")

        async with anyio.create_task_group() as tg:
            tg.start_soon(call, "spin")
            await wait_for(lambda: len(rt.busy_worker_pids) == 1)
            tg.start_soon(call, "echo")
            tg.start_soon(call, "echo")
            await anyio.sleep(0.05)
            with pytest.raises(Overloaded, match="max_queue=2"):
                await rt.call("pool", "echo", {})
        assert sorted(outcomes) == ["ok", "ok", "timeout"]
        assert rt.stats["overloaded"] == 1


async def test_workers_are_recycled_after_max_calls(tmp_path: Path, plugin_dir: Path) -> None:
    async with runtime(tmp_path, workers=1, spare_workers=0, max_calls_per_worker=5) as rt:
        await rt.load(plugin_dir)
        first = rt.worker_pids
        for i in range(13):
            assert await rt.call("pool", "echo", i) == i
        assert rt.stats["recycled_calls"] >= 2
        assert rt.worker_pids != first
        assert not wait_gone(first)


async def test_workers_are_recycled_when_rss_passes_the_cap(tmp_path: Path, plugin_dir: Path) -> None:
    async with runtime(tmp_path, workers=1, spare_workers=0, max_worker_rss=1) as rt:
        await rt.load(plugin_dir)
        for i in range(20):
            assert await rt.call("pool", "echo", i) == i
        assert rt.stats["recycled_rss"] >= 1


async def test_worker_rss_matches_psutil_and_its_descriptor_closes_with_the_worker(
    tmp_path: Path, plugin_dir: Path
) -> None:
    """The pool's RSS check reads /proc/<pid>/statm through a kept descriptor (cheaper than
    psutil by 20x); it must agree with psutil, and leave with the worker."""
    async with runtime(tmp_path, workers=1, spare_workers=0) as rt:
        await rt.load(plugin_dir)
        assert await rt.call("pool", "echo", 1) == 1
        (worker,) = rt._pool._ready
        ours, theirs = worker.rss(), psutil.Process(worker.pid).memory_info().rss
        assert ours > 4 << 20 and abs(ours - theirs) < 2 << 20
        statm = os.readlink(f"/proc/self/fd/{worker._statm._fd}")
        assert statm == f"/proc/{worker.pid}/statm"
    assert worker.rss() == 0
    assert worker._statm._fd == -1


async def test_restart_storm_backs_off_and_recovers(
    tmp_path: Path, plugin_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with runtime(tmp_path, workers=1, spare_workers=0, max_restarts=1, restart_period=30) as rt:
        await rt.load(plugin_dir)
        monkeypatch.setattr(worker_module, "_BOOT", "import sys; sys.exit(3)")
        with pytest.raises(PluginTrap):
            await rt.call("pool", "boom", {})
        with anyio.fail_after(10), pytest.raises(WorkerCrashed, match="keep failing to start"):
            await rt.call("pool", "echo", 1)
        failures = rt.stats["start_failures"]
        assert 3 <= failures < 20, failures  # back-off, not a busy loop
        assert rt.stats["backoff"] >= 1
        monkeypatch.undo()
        with anyio.fail_after(20):
            while True:
                try:
                    assert await rt.call("pool", "echo", "back") == "back"
                    break
                except WorkerCrashed:
                    await anyio.sleep(0.2)


async def test_trap_replaces_the_worker_with_the_spare(tmp_path: Path, plugin_dir: Path) -> None:
    async with runtime(tmp_path, workers=1, spare_workers=1) as rt:
        await rt.load(plugin_dir)
        await rt.call("pool", "echo", 0)
        before = set(rt.worker_pids)
        with pytest.raises(PluginTrap) as info:
            await rt.call("pool", "boom", {})
        assert info.value.trap_code == "unreachable"
        assert "boom" in info.value.backtrace
        # The spare takes over at once: the next call does not wait for a new process.
        with anyio.fail_after(0.5):
            assert await rt.call("pool", "echo", 1) == 1
        assert rt.stats["killed"] == 1
        await wait_for(lambda: len(rt.worker_pids) == 2)
        assert len(before - set(rt.worker_pids)) == 1


async def test_structured_log_events(tmp_path: Path, plugin_dir: Path) -> None:
    with capture_logs() as events:
        async with runtime(tmp_path, workers=1, spare_workers=0) as rt:
            await rt.load(plugin_dir)
            await rt.call("pool", "echo", {"x": 1})
            with pytest.raises(PluginTrap):
                await rt.call("pool", "boom", {})
    names = [e["event"] for e in events]
    assert "worker.start" in names and "plugin.load" in names and "worker.exit" in names
    calls = [e for e in events if e["event"] == "call"]
    assert [c["outcome"] for c in calls] == ["ok", "plugin_trap"]
    ok = calls[0]
    assert ok["plugin"] == "pool" and ok["capability"] == "echo"
    assert isinstance(ok["worker_pid"], int) and ok["duration_ms"] > 0 and ok["fuel_used"] > 0


async def test_call_events_are_skipped_when_debug_is_filtered_out(tmp_path: Path,
                                                                   plugin_dir: Path) -> None:
    saved = structlog.get_config()
    try:
        structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.INFO))
        assert debug_dropped()
        with capture_logs() as events:
            async with runtime(tmp_path, workers=1, spare_workers=0) as rt:
                await rt.load(plugin_dir)
                await rt.call("pool", "echo", {"x": 1})
        names = [e["event"] for e in events]
        assert "plugin.load" in names and "call" not in names  # info kept, debug dropped
        structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG))
        assert not debug_dropped()
        structlog.configure(wrapper_class=structlog.stdlib.BoundLogger)  # it filters by itself
        assert not debug_dropped()
    finally:
        structlog.configure(**saved)


async def test_worker_process_hygiene(tmp_path: Path, plugin_dir: Path) -> None:
    async with runtime(tmp_path, workers=1, spare_workers=0) as rt:
        await rt.load(plugin_dir)
        await rt.call("pool", "echo", 1)
        pid = rt.worker_pids[0]
        proc = psutil.Process(pid)
        assert proc.environ() == {}
        assert os.readlink(f"/proc/{pid}/fd/0") == "/dev/null"
        assert os.readlink(f"/proc/{pid}/fd/1") == "/dev/null"
        pipes = [fd for fd in os.listdir(f"/proc/{pid}/fd")
                 if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("pipe:")]
        assert len(pipes) == 3  # request, response, stderr (diagnostics)
        assert os.getsid(pid) == pid  # its own session: terminal signals do not reach it
        assert proc.ppid() == os.getpid()
        # woken by a request, it does not preempt the supervisor that wrote it
        assert os.sched_getscheduler(pid) == os.SCHED_BATCH


async def test_compiled_modules_are_cached_on_disk(tmp_path: Path, plugin_dir: Path) -> None:
    async with runtime(tmp_path, workers=1, spare_workers=0) as rt:
        first = await rt.load(plugin_dir)
    async with runtime(tmp_path, workers=1, spare_workers=0) as rt:
        second = await rt.load(plugin_dir)
    assert first.facts["cache"] == "miss"
    assert second.facts["cache"] == "hit"
    # Tamper with the compiled artifact: the cache must refuse it and recompile.
    compiled = list((tmp_path / "cache" / "compiled").glob("*.cwasm"))
    assert len(compiled) == 1
    blob = bytearray(compiled[0].read_bytes())
    blob[-100] ^= 0xFF
    compiled[0].write_bytes(bytes(blob))
    async with runtime(tmp_path, workers=1, spare_workers=0) as rt:
        third = await rt.load(plugin_dir)
        assert await rt.call("pool", "echo", 7) == 7
    assert third.facts["cache"] == "miss"


async def test_plugin_dirs_scan_skips_broken_plugins(tmp_path: Path) -> None:
    plugins = tmp_path / "plugins"
    write_plugin(plugins, "good")
    broken = plugins / "broken"
    broken.mkdir(parents=True)
    (broken / "plugin.json").write_text('{"name": "broken", "version": "1"}')
    (plugins / "not-a-plugin").mkdir()
    async with runtime(tmp_path, workers=1, plugin_dirs=[plugins, tmp_path / "missing"]) as rt:
        assert list(rt.plugins) == ["good"]
        assert await rt.call("good", "echo", "hi") == "hi"
        [(path, error)] = rt.load_errors
        assert path == broken and "version" in str(error)
