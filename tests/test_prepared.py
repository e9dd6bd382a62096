"""Instances made ahead of time (docs/abi.md, "Fresh instance per call"): several plugins at once,
only for plugins called repeatedly, and never an instance serving two calls."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import anyio
import orjson
import pytest
import wasmtime
from support import POOL_WAT, write_plugin

from cortex_runtime import CallTimeout, Runtime
from sandbox import PREPARED_PLUGINS
from sandbox.engine import LoadedPlugin
from sandbox.execute import PREPARE_TIMEOUT_MS, RECENT_CALLS_PER_PLUGIN, CallFailed, Executor

#: Returns how many times this instance's ``count`` ran (1 on a fresh instance), as JSON.
COUNTER_WAT = r"""
(module
  (memory (export "memory") 1 4)
  (global $calls (mut i32) (i32.const 0))
  (data (i32.const 16) "TAG")
  (func (export "cortex_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "count") (param i32 i32) (result i32)
    (global.set $calls (i32.add (global.get $calls) (i32.const 1)))
    (i32.store (i32.const 2048) (i32.const 1))
    (i32.store8 (i32.const 2052) (i32.add (i32.const 48) (global.get $calls)))
    (i32.const 2048))
)
"""

LIMITS = {"fuel": 10_000_000, "timeout_ms": 1000.0, "min_pages": 1, "max_pages": 4,
          "max_log": 4096}


def _plugins(tmp_path: Path, count: int) -> tuple[Executor, list[LoadedPlugin]]:
    executor = Executor()
    plugins = []
    for i in range(count):
        path = tmp_path / f"p{i}.wasm"
        path.write_bytes(wasmtime.wat2wasm(COUNTER_WAT.replace("TAG", f"plugin {i}")))
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        plugins.append(executor.load(str(path), digest))
    return executor, plugins


def _call(executor: Executor, plugin: LoadedPlugin) -> tuple[int, bool]:
    """One call as the worker makes it: the result, and whether it prepared the next instance."""
    fields, _ = executor.call(plugin, "count", b"{}", allocator="cortex_alloc", max_output=64,
                              **LIMITS)
    executor.release()
    prepare_next = executor.worth_preparing(plugin)
    if prepare_next:
        executor.prepare(plugin, **LIMITS)
    return orjson.loads(orjson.dumps(fields["result"])), prepare_next


def test_a_plugin_called_again_and_again_gets_its_next_instance_ahead_of_time(tmp_path: Path) -> None:
    executor, (plugin,) = _plugins(tmp_path, 1)
    outcomes = [_call(executor, plugin) for _ in range(5)]
    # every call ran on a fresh instance, prepared ahead or not
    assert [result for result, _ in outcomes] == [1] * 5
    # the first call had no history; from the second on, the plugin is a repeat
    assert [prepared for _, prepared in outcomes] == [False, True, True, True, True]
    assert list(executor._prepared) == [plugin.digest]


def test_several_plugins_keep_their_prepared_instances(tmp_path: Path) -> None:
    executor, plugins = _plugins(tmp_path, PREPARED_PLUGINS)
    for plugin in plugins:
        executor.prepare(plugin, **LIMITS)
    assert list(executor._prepared) == [p.digest for p in plugins]
    # the first round uses them (and, without history, makes no new ones); from then on,
    # round-robin over as many plugins as are kept finds every instance ready
    for plugin in plugins:
        assert plugin.digest in executor._prepared
        assert _call(executor, plugin) == (1, False)
    for plugin in plugins:
        assert plugin.digest not in executor._prepared
        assert _call(executor, plugin) == (1, True)
    for _ in range(3):
        for plugin in plugins:
            assert plugin.digest in executor._prepared
            assert _call(executor, plugin) == (1, True)


def test_prepared_instances_are_bounded_least_recent_first(tmp_path: Path) -> None:
    executor, plugins = _plugins(tmp_path, PREPARED_PLUGINS + 2)
    for plugin in plugins:
        executor.prepare(plugin, **LIMITS)
    assert list(executor._prepared) == [p.digest for p in plugins[-PREPARED_PLUGINS:]]
    # preparing a plugin that already has an instance with the same limits keeps it
    kept = executor._prepared[plugins[-1].digest]
    executor.prepare(plugins[-1], **LIMITS)
    assert executor._prepared[plugins[-1].digest] is kept
    # an evicted plugin still runs, instantiating for itself
    assert _call(executor, plugins[0])[0] == 1


def test_round_robin_over_many_plugins_prepares_nothing(tmp_path: Path) -> None:
    executor, plugins = _plugins(tmp_path, RECENT_CALLS_PER_PLUGIN * PREPARED_PLUGINS + 2)
    for _ in range(3):
        for plugin in plugins:
            assert _call(executor, plugin) == (1, False)
    assert not executor._prepared


pytestmark = pytest.mark.anyio


async def test_replies_tell_the_pool_which_plugin_is_prepared(tmp_path: Path) -> None:
    """The supervisor's affinity hint follows the worker's own decision."""
    first = write_plugin(tmp_path / "plugins", "first")
    other_wat = POOL_WAT.replace("(module", "(module (global i32 (i32.const 7))", 1)
    second = write_plugin(tmp_path / "plugins", "second", other_wat)
    async with Runtime(workers=1, spare_workers=0, cache_dir=tmp_path / "cache") as rt:
        a = await rt.load(first)
        b = await rt.load(second)
        assert a.sha256 != b.sha256
        with anyio.fail_after(10):
            for _ in range(3):
                assert await rt.call("first", "echo", [1]) == [1]
        (worker,) = rt._pool._ready
        assert a.sha256 in worker.prepared
        for _ in range(3):
            assert await rt.call("second", "echo", [2]) == [2]
        assert list(worker.prepared)[-1] == b.sha256
        assert a.sha256 in worker.prepared  # both are kept


async def test_loading_a_plugin_prepares_its_first_calls_instance(tmp_path: Path) -> None:
    """One round trip loads the module and has the worker make the first call's instance."""
    folder = write_plugin(tmp_path / "plugins", "first")
    async with Runtime(workers=1, spare_workers=1, cache_dir=tmp_path / "cache") as rt:
        info = await rt.load(folder)
        (worker,) = rt._pool._ready
        assert info.sha256 in worker.loaded and info.sha256 in worker.prepared
        with anyio.fail_after(10):
            while not rt._pool.spares or info.sha256 not in rt._pool.spares[0].prepared:  # noqa: ASYNC110
                await anyio.sleep(0.01)  # the spare loads it, and prepares it, in the background
        assert await rt.call("first", "echo", "x") == "x"


def test_an_explicit_prepare_counts_as_a_use(tmp_path: Path) -> None:
    """A spare warmed for a plugin keeps preparing it from its very first call on."""
    executor, (plugin,) = _plugins(tmp_path, 1)
    executor.expect(plugin.digest)
    executor.prepare(plugin, **LIMITS)
    assert _call(executor, plugin) == (1, True)
    assert plugin.digest in executor._prepared
    executor.forget(plugin.digest)
    assert not executor._prepared and plugin.digest not in executor._recent



def test_an_executor_without_prepared_instances_instantiates_every_call(tmp_path: Path) -> None:
    executor = Executor(prepared_plugins=0)
    path = tmp_path / "p.wasm"
    path.write_bytes(wasmtime.wat2wasm(COUNTER_WAT))
    plugin = executor.load(str(path), hashlib.sha256(path.read_bytes()).hexdigest())
    executor.prepare(plugin, **LIMITS)
    assert not executor._prepared
    assert [_call(executor, plugin) for _ in range(3)] == [(1, False)] * 3
    with pytest.raises(ValueError, match="prepared_plugins"):
        Executor(prepared_plugins=7)


async def test_a_runtime_can_do_without_prepared_instances(tmp_path: Path) -> None:
    """``prepared_instances=0``: the least memory (no instance waits), every call instantiates."""
    folder = write_plugin(tmp_path / "plugins", "first")
    async with Runtime(workers=1, spare_workers=1, cache_dir=tmp_path / "cache",
                       prepared_instances=0) as rt:
        info = await rt.load(folder)
        with anyio.fail_after(10):
            for i in range(4):
                assert await rt.call("first", "echo", [i]) == [i]
        for worker in [*rt._pool._ready, *rt._pool.spares]:
            assert not worker.prepared
        assert info.sha256 in rt._pool._ready[0].loaded
    for bad in (-1, 7, True, 2.0):
        with pytest.raises(ValueError, match="prepared_instances"):
            Runtime(prepared_instances=bad)  # type: ignore[arg-type]


def test_an_allocator_the_module_does_not_have_is_refused_before_any_guest_code(
        tmp_path: Path) -> None:
    # The supervisor only sends an allocator it found in the module; the worker checks again,
    # since it calls exports without per-call type checks.
    executor, (plugin,) = _plugins(tmp_path, 1)
    for allocator in ("count", "memory", "nonexistent"):
        with pytest.raises(CallFailed) as refused:
            executor.call(plugin, "count", b"{}", allocator=allocator, max_output=64, **LIMITS)
        executor.release()
        assert refused.value.trap_code == "bad_export", allocator
    assert _call(executor, plugin)[0] == 1  # a proper call still runs, on a fresh instance


#: A start function that never returns: instantiating the module spins until its deadline.
SPIN_START_WAT = (Path(__file__).parent.parent / "conformance" / "adversarial"
                  / "loop_start.wat").read_text()


def test_preparing_an_instance_whose_start_spins_stops_soon_and_is_not_tried_again(
        tmp_path: Path) -> None:
    """A prepare runs guest code while the pool counts the worker idle: it gets PREPARE_TIMEOUT_MS,
    not the call's timeout, and a plugin that fails it is not prepared again (until forgotten)."""
    executor = Executor()
    path = tmp_path / "spin.wasm"
    path.write_bytes(wasmtime.wat2wasm(SPIN_START_WAT))
    plugin = executor.load(str(path), hashlib.sha256(path.read_bytes()).hexdigest())
    limits = {**LIMITS, "timeout_ms": 5000.0, "fuel": 10**15}
    started = time.monotonic()
    executor.prepare(plugin, **limits)
    assert time.monotonic() - started < 1.0  # the call's 5 s would have been spent otherwise
    assert plugin.digest not in executor._prepared
    started = time.monotonic()
    executor.prepare(plugin, **limits)
    assert time.monotonic() - started < PREPARE_TIMEOUT_MS / 1000  # not even tried
    executor.forget(plugin.digest)
    assert plugin.digest not in executor._unpreparable


async def test_a_plugin_whose_start_spins_does_not_hold_up_other_plugins_calls(
        tmp_path: Path) -> None:
    """Loading it prepares its first call's instance on the one worker, which the pool then
    counts as idle: another plugin's call sent there right after waits for that prepare, no
    longer than PREPARE_TIMEOUT_MS, not the spinning plugin's 5 s timeout."""
    healthy = write_plugin(tmp_path, "pool")
    spinner = write_plugin(tmp_path, "spinner", SPIN_START_WAT,
                           limits={"timeoutMs": 5000, "fuel": 10**15})
    async with Runtime(cache_dir=tmp_path / "cache", workers=1, spare_workers=0) as rt:
        await rt.load(healthy)
        assert await rt.call("pool", "echo", 0) == 0
        await rt.load(spinner)
        started = time.monotonic()
        assert await rt.call("pool", "echo", 1) == 1
        assert time.monotonic() - started < 1.0
        with pytest.raises(CallTimeout):
            await rt.call("spinner", "run", {}, timeout=0.2)
        assert await rt.call("pool", "echo", 2) == 2
