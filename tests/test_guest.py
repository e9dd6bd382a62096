"""A guest driven straight through Wasmtime's C API (sandbox/guest.py): every range it reads or
writes is checked against the memory's current size, failures surface as wasmtime-py's own
exceptions (a host function's exception first), and every store it makes is freed once, so the
pooling allocator's few slots never run out."""

from __future__ import annotations

import gc
import threading
from typing import Any

import psutil
import pytest
import wasmtime
from support import HostBoom, prepared_with_boom

from sandbox.engine import POOL_SLOTS, make_engine
from sandbox.guest import Guest, GuestExportError, address_of

ENGINE = make_engine()
ENGINE_ADDRESS = address_of(ENGINE)
WAT = """
(module
  (import "host" "boom" (func $boom))
  (memory (export "memory") 1 3)
  (global $hits (mut i32) (i32.const 0))
  (func (export "add") (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1)))
  (func (export "store") (param i32 i32) (result i32)
    (i32.store (local.get 0) (local.get 1)) (i32.const 7))
  (func (export "trap") (result i32) unreachable)
  (func (export "spin") (loop $l (br $l)))
  (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0)))
  (func (export "call_host") (call $boom))
  (global (export "hits") (mut i32) (i32.const 0))
  (func (export "nothing"))
)
"""
EXPORTS = {name: i for i, name in enumerate(
    ["memory", "add", "store", "trap", "spin", "grow", "call_host", "hits", "nothing"])}


@pytest.fixture(scope="module")
def pre() -> Any:
    return prepared_with_boom(ENGINE, WAT)


def _guest(pre: Any, *, fuel: int = 10**9, max_bytes: int = 3 * 65536) -> Guest:
    guest = Guest(ENGINE_ADDRESS)
    guest.set_fuel(fuel)
    guest.set_deadline(10**6)
    guest.limit(memory_bytes=max_bytes, table_elements=100, instances=1, tables=1, memories=1)
    guest.instantiate(address_of(pre), EXPORTS["memory"])
    return guest


def test_calls_pass_i32_arguments_and_return_signed_results(pre: Any) -> None:
    guest = _guest(pre)
    try:
        assert guest.call(EXPORTS["add"], 2, 40) == 42
        assert guest.call(EXPORTS["add"], -1, 0) == -1  # i32 as wasm's signed value
        assert guest.call(EXPORTS["add"], 0x7FFFFFFF, 1) == -(2**31)
        assert guest.call(EXPORTS["grow"], 0) == 1  # one argument: the memory's size in pages
        assert guest.call(EXPORTS["add"], 5, 6) == 11
        assert guest.call(EXPORTS["nothing"]) == 0  # no result: 0, not what the buffer held
        with pytest.raises(ValueError, match="at most 2 arguments"):
            guest.call(EXPORTS["add"], 1, 2, 3)
    finally:
        guest.close()


def test_reads_and_writes_are_bounded_by_the_current_memory(pre: Any) -> None:
    guest = _guest(pre)
    try:
        assert guest.memory_size() == 65536
        guest.write(65532, b"abcd")
        assert guest.read(65532, 4) == b"abcd"
        assert guest.read(65536, 0) == b""
        for ptr, length in [(65533, 4), (65536, 1), (-1, 2), (0, -1), (2**32, 1)]:
            with pytest.raises(IndexError):
                guest.read(ptr, length)
        with pytest.raises(IndexError):
            guest.write(65533, b"abcd")
        with pytest.raises(IndexError):
            guest.write(-4, b"abcd")
        assert guest.call(EXPORTS["store"], 8, 0x01020304) == 7  # the guest's own write
        assert guest.read(8, 4) == bytes([4, 3, 2, 1])
        # Memory grown by the guest moves the bound (and possibly the base) with it.
        assert guest.call(EXPORTS["grow"], 1) == 1
        assert guest.memory_size() == 2 * 65536
        guest.write(2 * 65536 - 4, b"wxyz")
        assert guest.read(2 * 65536 - 4, 4) == b"wxyz"
        guest.grow_memory(1)
        assert guest.memory_size() == 3 * 65536
        with pytest.raises(wasmtime.WasmtimeError):
            guest.grow_memory(1)  # past the store's limit
        assert guest.memory_size() == 3 * 65536
    finally:
        guest.close()


def test_failures_surface_as_wasmtime_exceptions(pre: Any) -> None:
    guest = _guest(pre)
    try:
        with pytest.raises(wasmtime.Trap) as trapped:
            guest.call(EXPORTS["trap"])
        assert trapped.value.trap_code == wasmtime.TrapCode.UNREACHABLE
        with pytest.raises(HostBoom, match="raised by the host function"):
            guest.call(EXPORTS["call_host"])
        with pytest.raises(GuestExportError, match="not a function"):
            guest.call(EXPORTS["hits"])
        with pytest.raises(GuestExportError, match="not a function"):
            guest.call(len(EXPORTS))  # no such export
    finally:
        guest.close()
    spinning = _guest(pre, fuel=10_000)
    try:
        with pytest.raises(wasmtime.Trap) as out_of_fuel:
            spinning.call(EXPORTS["spin"])
        assert out_of_fuel.value.trap_code == wasmtime.TrapCode.OUT_OF_FUEL
        assert spinning.fuel() == 0
    finally:
        spinning.close()


def test_a_module_without_memory_at_the_given_export_is_refused(pre: Any) -> None:
    guest = Guest(ENGINE_ADDRESS)
    try:
        with pytest.raises(GuestExportError, match="no linear memory"):
            guest.instantiate(address_of(pre), EXPORTS["add"])
        assert guest.memory_size() == 0
    finally:
        guest.close()


def test_fuel_is_set_and_read_back(pre: Any) -> None:
    guest = _guest(pre, fuel=5_000)
    try:
        before = guest.fuel()
        guest.call(EXPORTS["add"], 1, 2)
        assert 0 < before - guest.fuel() < 100
        guest.set_fuel(123)
        assert guest.fuel() == 123
    finally:
        guest.close()


def test_stores_are_freed_once_so_slots_and_memory_do_not_leak(pre: Any) -> None:
    # More guests than the pooling allocator has slots: each must give its slot back on close
    # (or, dropped unclosed, when collected).
    for _ in range(4 * POOL_SLOTS):
        guest = _guest(pre)
        guest.close()
        guest.close()  # idempotent
        assert guest.memory_size() == 0
    for _ in range(4 * POOL_SLOTS):
        _guest(pre)  # never closed: freed when dropped
    gc.collect()
    process = psutil.Process()
    for _ in range(2_000):
        _guest(pre).close()
    before = process.memory_info().rss
    for _ in range(20_000):
        guest = _guest(pre)
        guest.call(EXPORTS["add"], 1, 2)
        guest.close()
    assert process.memory_info().rss - before < 8 * 1024 * 1024


def test_guests_refuse_a_second_thread(pre: Any) -> None:
    _guest(pre).close()  # this thread owns the scratch space now
    errors: list[BaseException] = []

    def elsewhere() -> None:
        try:
            Guest(ENGINE_ADDRESS)
        except RuntimeError as exc:
            errors.append(exc)

    thread = threading.Thread(target=elsewhere)
    thread.start()
    thread.join()
    assert len(errors) == 1 and "one thread" in str(errors[0])
