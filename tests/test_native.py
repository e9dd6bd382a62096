"""``Guest.run`` (sandbox/guest.py): a call's allocation, input copy and capability call in one
foreign call through sandbox/_guest_native.so, held to the same steps taken in Python, outcome
for outcome, on well-behaved and hostile allocators and capabilities."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import wasmtime
from support import HostBoom, prepared_with_boom

import sandbox.guest as guest_module
from sandbox.engine import make_engine
from sandbox.guest import BadAllocation, Guest, GuestExportError, address_of

ENGINE = make_engine()
ENGINE_ADDRESS = address_of(ENGINE)
WAT = """
(module
  (import "host" "boom" (func $boom))
  (memory (export "memory") 1 4)
  (global $heap (mut i32) (i32.const 1024))
  (func (export "alloc") (param $n i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $heap))
    (global.set $heap (i32.add (local.get $p) (local.get $n)))
    (local.get $p))
  (func (export "alloc_null") (param i32) (result i32) (i32.const 0))
  (func (export "alloc_edge") (param $n i32) (result i32)
    (i32.sub (i32.mul (memory.size) (i32.const 65536)) (local.get $n)))
  (func (export "alloc_over") (param $n i32) (result i32)
    (i32.sub (i32.mul (memory.size) (i32.const 65536)) (i32.sub (local.get $n) (i32.const 1))))
  (func (export "alloc_high") (param i32) (result i32) (i32.const -16))
  (func (export "alloc_grow") (param i32) (result i32)
    (i32.shl (memory.grow (i32.const 1)) (i32.const 16)))
  (func (export "alloc_trap") (param i32) (result i32) unreachable)
  (func (export "alloc_host") (param i32) (result i32) (call $boom) (i32.const 1024))
  (func (export "alloc_spin") (param i32) (result i32) (loop $l (br $l)) (i32.const 0))
  ;; sum(ptr, len): the sum of the input's bytes plus len * 65536 (were they all copied?)
  (func (export "sum") (param $p i32) (param $n i32) (result i32)
    (local $i i32) (local $s i32)
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $s (i32.add (local.get $s)
                               (i32.load8_u (i32.add (local.get $p) (local.get $i)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (i32.add (local.get $s) (i32.shl (local.get $n) (i32.const 16))))
  (func (export "negative") (param i32 i32) (result i32) (i32.const -5))
  (func (export "trap") (param i32 i32) (result i32) unreachable)
  (func (export "host") (param i32 i32) (result i32) (call $boom) (i32.const 0))
)
"""
NAMES = ["memory", "alloc", "alloc_null", "alloc_edge", "alloc_over", "alloc_high", "alloc_grow",
         "alloc_trap", "alloc_host", "alloc_spin", "sum", "negative", "trap", "host"]
EXPORTS = {name: i for i, name in enumerate(NAMES)}
ALLOCATORS = [name for name in NAMES if name.startswith("alloc")] + ["memory"]
CAPABILITIES = ["sum", "negative", "trap", "host", "memory"]
INPUTS = [b"", b"x", b'{"text":"hello"}', bytes(range(256)) * 40]


@pytest.fixture(scope="module")
def pre() -> Any:
    return prepared_with_boom(ENGINE, WAT)


@pytest.fixture
def python_path() -> Iterator[None]:
    saved = guest_module.native
    guest_module.native = False
    try:
        yield
    finally:
        guest_module.native = saved


def _outcome(pre: Any, alloc: str, capability: str, data: bytes | memoryview) -> tuple[Any, ...]:
    """What ``Guest.run`` did: its result or its exception, and the memory afterwards."""
    guest = Guest(ENGINE_ADDRESS)
    guest.set_fuel(10**7)
    guest.set_deadline(10**6)
    guest.limit(memory_bytes=4 * 65536, table_elements=100, instances=1, tables=1, memories=1)
    guest.instantiate(address_of(pre), EXPORTS["memory"])
    try:
        try:
            result: Any = ("result", guest.run(EXPORTS[alloc], EXPORTS[capability], data))
        except BadAllocation as bad:
            result = ("bad allocation", bad.ptr)
        except wasmtime.Trap as trap:
            result = ("trap", trap.trap_code, str(trap).splitlines()[0])
        except (HostBoom, GuestExportError, ValueError, wasmtime.WasmtimeError) as exc:
            result = (type(exc).__name__, str(exc))
        return result, guest.read(0, guest.memory_size())
    finally:
        guest.close()


def test_the_native_library_is_built_and_used() -> None:
    """`make` builds it (scripts/build-native); without it every call takes the Python steps,
    ~8 µs slower, and the comparisons below would compare the Python steps with themselves."""
    assert guest_module.native, "sandbox/_guest_native.so is missing: run scripts/build-native"


@pytest.mark.parametrize("alloc", ALLOCATORS)
@pytest.mark.parametrize("capability", CAPABILITIES)
def test_native_and_python_steps_agree(pre: Any, alloc: str, capability: str,
                                       python_path: None) -> None:
    for data in INPUTS:
        expected = _outcome(pre, alloc, capability, data)
        guest_module.native = True
        try:
            assert _outcome(pre, alloc, capability, data) == expected, (alloc, capability, data[:20])
        finally:
            guest_module.native = False


def test_outcomes_are_the_abi_s(pre: Any) -> None:
    """What the comparisons above hold both paths to, spelled out."""
    data = b"abc"
    assert _outcome(pre, "alloc", "sum", data)[0] == ("result", sum(data) + (3 << 16))
    assert _outcome(pre, "alloc_grow", "sum", data)[0] == ("result", sum(data) + (3 << 16))
    assert _outcome(pre, "alloc_edge", "sum", data)[0] == ("result", sum(data) + (3 << 16))
    assert _outcome(pre, "alloc", "negative", data)[0] == ("result", 2**32 - 5)  # a u32
    assert _outcome(pre, "alloc_null", "sum", data)[0] == ("bad allocation", 0)
    assert _outcome(pre, "alloc_over", "sum", data)[0] == ("bad allocation", 65536 - 2)
    assert _outcome(pre, "alloc_high", "sum", data)[0] == ("bad allocation", 2**32 - 16)
    assert _outcome(pre, "alloc_trap", "sum", data)[0][:2] == ("trap", wasmtime.TrapCode.UNREACHABLE)
    assert _outcome(pre, "alloc_spin", "sum", data)[0][:2] == ("trap", wasmtime.TrapCode.OUT_OF_FUEL)
    assert _outcome(pre, "alloc_host", "sum", data)[0] == ("HostBoom", "raised by the host function")
    assert _outcome(pre, "alloc", "host", data)[0] == ("HostBoom", "raised by the host function")
    assert _outcome(pre, "alloc", "trap", data)[0][:2] == ("trap", wasmtime.TrapCode.UNREACHABLE)
    assert _outcome(pre, "memory", "sum", data)[0] == (
        "GuestExportError", f"export number {EXPORTS['memory']} is not a function")
    assert _outcome(pre, "alloc", "memory", data)[0] == (
        "GuestExportError", f"export number {EXPORTS['memory']} is not a function")
    # a large input arrives as a view of its frame: the same steps, taken in Python
    assert _outcome(pre, "alloc", "sum", memoryview(data)) == _outcome(pre, "alloc", "sum", data)
    assert _outcome(pre, "alloc_over", "sum", memoryview(data))[0] == ("bad allocation", 65536 - 2)
    # the input's bytes land where the allocator said, nowhere else
    _, memory = _outcome(pre, "alloc", "sum", data)
    assert memory[1024:1027] == data and memory[:1024] == bytes(1024)


def test_a_library_built_from_other_source_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """A stale build (other parameters, other scratch layout) must not be called: it is refused
    and the Python steps run instead, rather than a worker crashing on the wrong arguments."""
    assert guest_module._load_native() is not None
    monkeypatch.setattr(guest_module, "NATIVE_ABI", guest_module.NATIVE_ABI + 1)
    assert guest_module._load_native() is None


def test_a_missing_or_broken_library_is_refused(tmp_path: Path) -> None:
    assert guest_module._load_native(tmp_path / "missing.so") is None
    broken = tmp_path / "broken.so"
    broken.write_bytes(b"not a shared library")
    assert guest_module._load_native(broken) is None
