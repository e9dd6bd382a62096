"""Scenario B: in-process wasmtime-py, written the way a careful user would.

One engine with the same code-affecting settings as a Cortex worker (fuel metering, epoch
interruption, 512 KiB wasm stack), so the wasm runs the same machine code; a ``Linker`` with
WASI and the two ``cortex`` host functions; per plugin a compiled ``Module`` and an
``InstancePre``; and per call a fresh ``Store`` (fuel, epoch deadline, memory limit, an empty
WASI context) and a fresh instance: the same isolation as Cortex's fresh instance per call.
The call follows ABI v1 (docs/abi.md): ``_initialize``, the allocator export, the input written
into guest memory, the capability, the result header read, the JSON decoded with orjson.

What it leaves out compared with Cortex: a process boundary, OS confinement, wall-clock
deadlines (no epoch ticker thread), log capture, output validation beyond ``orjson.loads``.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import orjson
import wasmtime

PAGE = 65536
FUEL = 1_000_000_000
MAX_PAGES = 512
U32 = 0xFFFFFFFF


class GuestError(Exception):
    """The plugin reported an error through ``cortex.error`` or returned no result."""


class WasmtimeHost:
    """Holds the engine and linker; ``load`` returns a :class:`WasmtimePlugin`."""

    def __init__(self) -> None:
        config = wasmtime.Config()
        config.consume_fuel = True
        config.epoch_interruption = True
        config.max_wasm_stack = 512 * 1024
        self.engine = wasmtime.Engine(config)
        self.linker = wasmtime.Linker(self.engine)
        self.linker.define_wasi()
        i32 = wasmtime.ValType.i32()
        self._local = threading.local()
        self.linker.define_func("cortex", "error", wasmtime.FuncType([i32, i32], []),
                                self._host_error, access_caller=True)
        self.linker.define_func("cortex", "log", wasmtime.FuncType([i32, i32, i32], []),
                                self._host_log, access_caller=True)

    def _host_error(self, caller: wasmtime.Caller, ptr: int, length: int) -> None:
        memory = caller.get("memory")
        assert isinstance(memory, wasmtime.Memory)
        ptr &= U32
        length = min(length & U32, 4096)
        if getattr(self._local, "error", None) is None:
            self._local.error = bytes(memory.read(caller, ptr, ptr + length)).decode("utf-8", "replace")

    def _host_log(self, caller: wasmtime.Caller, level: int, ptr: int, length: int) -> None:
        pass  # the benchmark plugin never logs

    def load(self, wasm: bytes | None = None, *, module: wasmtime.Module | None = None) -> WasmtimePlugin:
        """Compile ``wasm`` (or take a ready ``module``) and pre-link it."""
        if module is None:
            assert wasm is not None
            module = wasmtime.Module(self.engine, wasm)
        return WasmtimePlugin(self, module, self.linker.instantiate_pre(module))

    def load_serialized(self, path: Path) -> WasmtimePlugin:
        """The on-disk compiled-code cache path: deserialise a module written by ``serialize``."""
        return self.load(module=wasmtime.Module.deserialize_file(self.engine, str(path)))


class WasmtimePlugin:
    """One compiled, pre-linked plugin; ``call`` runs a capability on a fresh instance."""

    def __init__(self, host: WasmtimeHost, module: wasmtime.Module, pre: wasmtime.InstancePre) -> None:
        self.host = host
        self.module = module
        self.pre = pre
        self.last_call_us = 0.0

    def call(self, export: str, payload: bytes) -> Any:
        host = self.host
        host._local.error = None
        store = wasmtime.Store(host.engine)
        store.set_fuel(FUEL)
        store.set_epoch_deadline(1 << 62)
        store.set_limits(memory_size=MAX_PAGES * PAGE)
        store.set_wasi(wasmtime.WasiConfig())
        instance = self.pre.instantiate(store)
        exports = instance.exports(store)
        memory = exports["memory"]
        exports["_initialize"](store)
        size = len(payload)
        ptr = exports["cortex_alloc"](store, max(size, 1)) & U32
        if ptr == 0 or ptr + size > memory.data_len(store):
            raise GuestError("allocator failed")
        memory.write(store, payload, ptr)
        result = exports[export](store, ptr, size) & U32
        if host._local.error is not None:
            raise GuestError(host._local.error)
        if result == 0:
            raise GuestError("null result pointer")
        length = int.from_bytes(memory.read(store, result, result + 4), "little")
        return orjson.loads(memory.read(store, result + 4, result + 4 + length))


def timed_call(plugin: WasmtimePlugin, export: str, payload: bytes) -> tuple[Any, float]:
    started = time.perf_counter()
    value = plugin.call(export, payload)
    return value, time.perf_counter() - started
