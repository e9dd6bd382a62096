"""Helpers shared by the pool, protocol and CLI tests: tiny WAT plugins written to disk, and
waiting for the pool's state to settle."""

from __future__ import annotations

import json
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import psutil
import wasmtime

#: A plugin with a well-behaved echo, an infinite loop and a trap, using cortex_alloc.
POOL_WAT = r"""
(module
  (memory (export "memory") 1 64)
  (global $top (mut i32) (i32.const 1024))
  (func (export "cortex_alloc") (param $n i32) (result i32)
    (local $p i32)
    global.get $top
    local.set $p
    global.get $top
    local.get $n
    i32.add
    i32.const 4
    i32.add
    global.set $top
    local.get $p)
  ;; echo: returns its input as the result (length header written just before the input)
  (func (export "echo") (param $ptr i32) (param $len i32) (result i32)
    (local $out i32)
    (local.set $out (call 0 (i32.add (local.get $len) (i32.const 4))))
    (i32.store (local.get $out) (local.get $len))
    (memory.copy (i32.add (local.get $out) (i32.const 4)) (local.get $ptr) (local.get $len))
    (local.get $out))
  (func $spin (export "spin") (param i32 i32) (result i32)
    (loop $forever (br $forever))
    i32.const 0)
  (func $boom (export "boom") (param i32 i32) (result i32)
    unreachable)
)
"""


def write_plugin(root: Path, name: str, wat: str = POOL_WAT, **manifest: Any) -> Path:
    """Write ``root/name/{plugin.json, plugin.wasm}`` and return the folder."""
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "plugin.wasm").write_bytes(wasmtime.wat2wasm(wat))
    data = {"name": name, "version": "1.0.0", "type": "wasm", "entryPoint": "plugin.wasm"}
    data.update(manifest)
    (folder / "plugin.json").write_text(json.dumps(data))
    return folder


def children() -> list[psutil.Process]:
    """Live (non-zombie) child processes of this test process."""
    result = []
    for child in psutil.Process().children(recursive=True):
        try:
            if child.status() != psutil.STATUS_ZOMBIE:
                result.append(child)
        except psutil.NoSuchProcess:
            continue
    return result


def runtime_pids(rt: Any) -> set[int]:
    """The processes a runtime owns: its workers and, while it runs, its compiler."""
    return set(rt.worker_pids) | ({rt.compiler_pid} if rt.compiler_pid is not None else set())


def wait_gone(pids: list[int], timeout: float = 2.0) -> list[int]:
    """Wait until none of ``pids`` is alive (zombies count as gone); return the survivors."""
    import time

    deadline = time.monotonic() + timeout
    alive = list(pids)
    while alive and time.monotonic() < deadline:
        alive = [p for p in alive if _alive(p)]
        if alive:
            time.sleep(0.02)
    return alive


async def gone_soon(pids: list[int], timeout: float = 2.0) -> list[int]:
    """``wait_gone`` without blocking the event loop (whose tasks may be what kills them)."""
    import anyio

    with anyio.move_on_after(timeout):
        while any(_alive(p) for p in pids):  # noqa: ASYNC110 (polling process state)
            await anyio.sleep(0.02)
    return [p for p in pids if _alive(p)]


def _alive(pid: int) -> bool:
    """A zombie leader whose other threads are still exiting still holds its files: alive."""
    try:
        if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
            return True
        return len(os.listdir(f"/proc/{pid}/task")) > 1
    except (psutil.NoSuchProcess, FileNotFoundError):
        return False


class HostBoom(Exception):
    """What the test host function ``host.boom`` raises."""


def prepared_with_boom(engine: wasmtime.Engine, wat: str) -> Any:
    """``wat`` compiled and linked with one host function, ``host.boom``, which raises
    ``HostBoom``: an ``InstancePre`` for driving guests straight through ``sandbox.guest``."""

    def boom() -> None:
        raise HostBoom("raised by the host function")

    linker = wasmtime.Linker(engine)
    linker.define_func("host", "boom", wasmtime.FuncType([], []), boom)
    return linker.instantiate_pre(wasmtime.Module(engine, wat))


async def cancel_after_checkpoints(k: int, call: Callable[[], Awaitable[object]]) -> tuple[bool, bool]:
    """Run ``call`` and cancel it after ``k`` scheduler checkpoints (trio-parallel's exhaustive
    pattern: k = 0, 1, 2, ... reaches every await once). Whether it completed, and whether the
    cancellation was caught."""
    completed = False
    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as tg:

            async def cancel() -> None:
                for _ in range(k):
                    await anyio.lowlevel.checkpoint()
                scope.cancel()

            tg.start_soon(cancel)
            await call()
            completed = True
    return completed, scope.cancelled_caught


async def wait_for(predicate: Callable[[], object], timeout: float = 5.0) -> None:
    """Poll ``predicate`` until it holds (state that no event announces: process tables, the
    pool's bookkeeping); fail after ``timeout`` seconds."""
    with anyio.fail_after(timeout):
        while not predicate():  # noqa: ASYNC110 (polling state no event announces)
            await anyio.sleep(0.01)
