"""Every guest fault gives its typed error while a healthy plugin keeps being served.

Each test runs one faulty call alongside 20 concurrent calls to a healthy echo plugin on a pool of
two workers, checks every good result, and then checks that the pool still serves calls.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import anyio.lowlevel
import psutil
import pytest
from conftest import PluginFactory
from structlog.testing import capture_logs

from cortex_runtime import Runtime
from cortex_runtime.errors import (
    CallTimeout,
    CortexError,
    FuelExhausted,
    InvalidOutput,
    MemoryLimitExceeded,
    PluginQuarantined,
    PluginTrap,
)

pytestmark = pytest.mark.anyio

RuntimeFactory = Callable[..., Runtime]
HEALTHY = "healthy"
GOOD_CALLS = 20


async def fault_alongside_good_calls(
    rt: Runtime, bad_call: Callable[[], Awaitable[Any]]
) -> CortexError:
    """Run ``bad_call`` concurrently with 20 echo calls; return the error the bad call raised."""
    results: dict[int, Any] = {}
    caught: list[BaseException] = []

    async def good(i: int) -> None:
        results[i] = await rt.call(HEALTHY, "echo", {"i": i, "text": "ok ✓"})

    async def bad() -> None:
        try:
            value = await bad_call()
        except CortexError as exc:
            caught.append(exc)
        else:
            caught.append(AssertionError(f"the faulty call returned {value!r}"))

    async with anyio.create_task_group() as tg:
        tg.start_soon(bad)
        await anyio.lowlevel.checkpoint()
        for i in range(GOOD_CALLS):
            tg.start_soon(good, i)
    assert results == {i: {"i": i, "text": "ok ✓"} for i in range(GOOD_CALLS)}
    # the pool keeps serving afterwards
    assert await rt.call(HEALTHY, "echo", ["after"]) == ["after"]
    assert len(caught) == 1
    if isinstance(caught[0], AssertionError):
        raise caught[0]
    assert isinstance(caught[0], CortexError)
    return caught[0]


async def start(rt: Runtime, make_plugin: PluginFactory, fixture: str, **overrides: Any) -> str:
    """Load the healthy echo plugin and the faulty ``fixture``; return the faulty plugin's name."""
    await rt.load(make_plugin("echo_cortex_alloc", name=HEALTHY))
    info = await rt.load(make_plugin(fixture, **overrides))
    return info.name


# -- runaway guests ---------------------------------------------------------------------------


async def test_infinite_loop_times_out(runtime: RuntimeFactory, make_plugin: PluginFactory) -> None:
    async with runtime() as rt:
        name = await start(rt, make_plugin, "spin")
        started = time.monotonic()
        exc = await fault_alongside_good_calls(
            rt, lambda: rt.call(name, "spin", {}, timeout=0.2, fuel=10**15))
        assert isinstance(exc, CallTimeout), exc
        assert exc.plugin == name
        assert time.monotonic() - started < 3


async def test_infinite_loop_runs_out_of_fuel(
    runtime: RuntimeFactory, make_plugin: PluginFactory
) -> None:
    async with runtime() as rt:
        name = await start(rt, make_plugin, "spin")
        started = time.monotonic()
        exc = await fault_alongside_good_calls(
            rt, lambda: rt.call(name, "spin", {}, fuel=100_000, timeout=30))
        assert isinstance(exc, FuelExhausted), exc
        assert time.monotonic() - started < 5


async def test_loop_in_start_function_times_out(
    runtime: RuntimeFactory, make_plugin: PluginFactory
) -> None:
    """The module's (start) function runs at instantiation, inside the call's deadline."""
    async with runtime() as rt:
        name = await start(rt, make_plugin, "start_loop")
        exc = await fault_alongside_good_calls(
            rt, lambda: rt.call(name, "run", {}, timeout=0.2, fuel=10**15))
        assert isinstance(exc, CallTimeout), exc


async def test_loop_in_start_function_runs_out_of_fuel(
    runtime: RuntimeFactory, make_plugin: PluginFactory
) -> None:
    async with runtime() as rt:
        name = await start(rt, make_plugin, "start_loop")
        exc = await fault_alongside_good_calls(
            rt, lambda: rt.call(name, "run", {}, fuel=100_000, timeout=30))
        assert isinstance(exc, FuelExhausted), exc


async def test_memory_grow_bomb_is_memory_limit_exceeded(
    runtime: RuntimeFactory, make_plugin: PluginFactory
) -> None:
    async with runtime() as rt:
        name = await start(rt, make_plugin, "grow_bomb", wasm={"maxMemoryPages": 4})
        exc = await fault_alongside_good_calls(rt, lambda: rt.call(name, "bomb", {}))
        assert isinstance(exc, MemoryLimitExceeded), exc
        assert "4 pages" in str(exc)


# -- traps ------------------------------------------------------------------------------------


async def test_unreachable_is_a_trap_with_a_backtrace(
    runtime: RuntimeFactory, make_plugin: PluginFactory
) -> None:
    async with runtime() as rt:
        name = await start(rt, make_plugin, "unreachable")
        exc = await fault_alongside_good_calls(rt, lambda: rt.call(name, "explode", {}))
        assert isinstance(exc, PluginTrap), exc
        assert exc.trap_code == "unreachable"
        assert exc.backtrace
        assert "inner_helper" in exc.backtrace
        assert "explode" in exc.backtrace


@pytest.mark.parametrize(
    ("fixture", "capability", "trap_code", "function"),
    [
        ("div_zero", "divide", "integer_division_by_zero", "divide_by_zero"),
        ("oob_load", "read_far", "memory_out_of_bounds", "read_past_the_end"),
        ("stack_overflow", "recurse", "stack_overflow", "recurse_forever"),
    ],
)
async def test_trap_codes(
    runtime: RuntimeFactory, make_plugin: PluginFactory, fixture: str, capability: str,
    trap_code: str, function: str,
) -> None:
    async with runtime() as rt:
        name = await start(rt, make_plugin, fixture)
        exc = await fault_alongside_good_calls(rt, lambda: rt.call(name, capability, {}))
        assert isinstance(exc, PluginTrap), exc
        assert exc.trap_code == trap_code
        assert function in exc.backtrace


# -- invalid results --------------------------------------------------------------------------


@pytest.mark.parametrize("capability", ["negative_pointer", "not_json", "huge_length"])
async def test_invalid_output_alongside_good_calls(
    runtime: RuntimeFactory, make_plugin: PluginFactory, capability: str
) -> None:
    async with runtime() as rt:
        name = await start(rt, make_plugin, "bad_results")
        exc = await fault_alongside_good_calls(rt, lambda: rt.call(name, capability, {}))
        assert isinstance(exc, InvalidOutput), exc


# -- what a trap costs ------------------------------------------------------------------------


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


async def test_worker_that_trapped_is_replaced(
    runtime: RuntimeFactory, make_plugin: PluginFactory
) -> None:
    async with runtime() as rt:
        name = await start(rt, make_plugin, "unreachable")
        before = set(rt.worker_pids)
        with capture_logs() as events, pytest.raises(PluginTrap):
            await rt.call(name, "explode", {})
        [record] = [e for e in events if e["event"] == "call" and e.get("plugin") == name]
        pid = record["worker_pid"]
        assert pid in before
        for _ in range(50):  # up to one second
            if _gone(pid):
                break
            await anyio.sleep(0.02)
        assert _gone(pid), f"worker {pid} still runs after its call trapped"
        assert pid not in rt.worker_pids
        assert await rt.call(HEALTHY, "echo", {"still": "serving"}) == {"still": "serving"}


async def test_quarantine_after_repeated_traps(
    runtime: RuntimeFactory, make_plugin: PluginFactory
) -> None:
    async with runtime(quarantine_after=3, quarantine_window=60, quarantine_seconds=30) as rt:
        name = await start(rt, make_plugin, "unreachable")
        for _ in range(3):
            with pytest.raises(PluginTrap):
                await rt.call(name, "explode", {})
        with pytest.raises(PluginQuarantined) as caught:
            await rt.call(name, "explode", {})
        assert caught.value.plugin == name
        assert 0 < caught.value.retry_after <= 30
        # other plugins are not affected
        assert await rt.call(HEALTHY, "echo", {"ok": 1}) == {"ok": 1}
