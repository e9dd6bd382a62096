"""The epoch ticker (sandbox/execute.py): while a call runs, the engine's epoch advances, so a
call past its deadline traps; it keeps ticking between back-to-back calls, parks when idle, and
the next call wakes it."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pytest
import wasmtime
from support import POOL_WAT

from sandbox.engine import LoadedPlugin
from sandbox.execute import CallFailed, EpochTicker, Executor

#: Fuel: a backstop (a few seconds of looping) so that a ticker that failed to tick fails the
#: test ("fuel", not "timeout") instead of hanging it.
LIMITS = {"fuel": 3 * 10**9, "min_pages": 1, "max_pages": 8, "max_log": 4096,
          "allocator": "cortex_alloc", "max_output": 4096}


@pytest.fixture
def spinning(tmp_path: Path) -> tuple[Executor, LoadedPlugin]:
    executor = Executor()
    path = tmp_path / "spin.wasm"
    path.write_bytes(wasmtime.wat2wasm(POOL_WAT))
    plugin = executor.load(str(path), hashlib.sha256(path.read_bytes()).hexdigest())
    return executor, plugin


def _spin_until_deadline(executor: Executor, plugin: LoadedPlugin, timeout_ms: float) -> float:
    """Seconds a looping call took to be stopped by its deadline."""
    started = time.perf_counter()
    with pytest.raises(CallFailed) as failed:
        executor.call(plugin, "spin", b"{}", timeout_ms=timeout_ms, **LIMITS)  # type: ignore[arg-type]
    executor.release()
    assert failed.value.kind == "timeout", failed.value.message
    return time.perf_counter() - started


def test_a_looping_call_stops_at_its_deadline(spinning: tuple[Executor, LoadedPlugin]) -> None:
    executor, plugin = spinning
    # 20 ms is ~10 ticks of 2 ms: it takes at least that, and far less than the fuel backstop
    assert 0.015 < _spin_until_deadline(executor, plugin, 20.0) < 2.0
    # a well-behaved call right after is not interrupted by the epochs that passed
    fields, _ = executor.call(plugin, "echo", b'{"a":1}', timeout_ms=1000.0, **LIMITS)  # type: ignore[arg-type]
    executor.release()
    assert fields["result"] is not None


def test_the_ticker_parks_when_idle_and_wakes_for_the_next_call(
        spinning: tuple[Executor, LoadedPlugin]) -> None:
    executor, plugin = spinning
    ticker = executor.ticker
    _spin_until_deadline(executor, plugin, 10.0)
    assert ticker._running  # it keeps ticking between back-to-back calls
    deadline = time.monotonic() + 2.0
    while ticker._running and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not ticker._running, "an idle ticker should park after IDLE_PARK_SECONDS"
    assert EpochTicker.IDLE_PARK_SECONDS < 2.0
    # parked, it is woken by the next call: the deadline still holds
    assert _spin_until_deadline(executor, plugin, 20.0) < 2.0
    assert ticker._running
