"""Warm a new worker's call path before it serves anyone.

A worker's first calls run Python code for the first time (no specialised bytecode, cold caches,
first use of every ctypes entry point): the first call of a spare that has just taken a failed
worker's place took ~6x longer than the next ones. A built-in module, never a user's plugin, is
called a few dozen times at start-up through the same ``Executor`` path calls take, so the first
real call finds that path warm. It costs a few milliseconds of a worker's start.
"""

from __future__ import annotations

import hashlib

import wasmtime

from .engine import link_plugin
from .execute import Executor

#: ABI v1 echo with a bump allocator: the smallest module that takes every step of a call.
WARM_UP_WAT = r"""
(module
  (memory (export "memory") 1 1)
  (global $top (mut i32) (i32.const 1024))
  (func $alloc (export "cortex_alloc") (param $n i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $top))
    (global.set $top (i32.add (global.get $top) (i32.add (local.get $n) (i32.const 4))))
    (local.get $p))
  (func (export "echo") (param $ptr i32) (param $len i32) (result i32)
    (local $out i32)
    (local.set $out (call $alloc (i32.add (local.get $len) (i32.const 4))))
    (i32.store (local.get $out) (local.get $len))
    (memory.copy (i32.add (local.get $out) (i32.const 4)) (local.get $ptr) (local.get $len))
    (local.get $out))
)
"""
WARM_UP_CALLS = 30
_INPUT = b'{"text":"warm up","mode":"reverse","n":[1,2.5,true,null,{"k":"\\u00e9"}]}'


def warm_up(executor: Executor) -> None:
    """Run the built-in module's ``echo`` through ``executor`` (prepared and not), then forget it."""
    wasm = wasmtime.wat2wasm(WARM_UP_WAT)
    plugin = link_plugin(executor.engine, executor.linker, bytes(wasm), hashlib.sha256(wasm).hexdigest())
    for i in range(WARM_UP_CALLS):
        if i % 2:
            executor.prepare(plugin, fuel=1_000_000, timeout_ms=1000.0, min_pages=1, max_pages=1,
                             max_log=4096)
        executor.call(plugin, "echo", _INPUT, fuel=1_000_000, timeout_ms=1000.0, min_pages=1,
                      max_pages=1, allocator="cortex_alloc", max_output=4096, max_log=4096)
        executor.release()
    executor.forget(plugin.digest)
