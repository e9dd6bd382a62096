"""``Executor.call`` through ``Guest.invoke`` (a whole call in one foreign call, where
sandbox/_guest_native.so is built) held to the same steps taken one by one in Python, outcome
for outcome: the result or the failure (kind, message, trap code), the fuel burned and the logs,
for well-behaved and hostile plugins, on fresh and on prepared instances."""

from __future__ import annotations

import dataclasses
import gc
import hashlib
from pathlib import Path
from typing import Any

import orjson
import pytest
import wasmtime

import sandbox.guest as guest_module
from sandbox.engine import POOL_SLOTS, LoadedPlugin
from sandbox.execute import CallContext, CallFailed, Executor
from sandbox.framing import ATTACHMENT, LARGE_FRAME_BYTES
from sandbox.guest import Guest

#: A plugin whose allocator, ``_initialize``, start function and memory are filled in per
#: variant; its capabilities return every kind of result, good and bad.
TEMPLATE = r"""
(module
  (import "cortex" "error" (func $error (param i32 i32)))
  (import "cortex" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") MEMORY)
  (global $top (mut i32) (i32.const 4096))
  (data (i32.const 16) "\07\00\00\00\"hello\"")
  (data (i32.const 32) "\ff\ff\ff\7f")
  (data (i32.const 48) "\03\00\00\00{1}")
  (func $bump (param $n i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $top))
    (global.set $top (i32.add (local.get $p) (i32.add (local.get $n) (i32.const 8))))
    (local.get $p))
  (func (export "cortex_alloc") (param $n i32) (result i32) ALLOC)
  INIT
  START
  ;; the input, as the result: its length, then its bytes
  (func $echo (export "echo") (param $p i32) (param $n i32) (result i32)
    (local $out i32)
    (local.set $out (call $bump (local.get $n)))
    (i32.store (local.get $out) (local.get $n))
    (memory.copy (i32.add (local.get $out) (i32.const 4)) (local.get $p) (local.get $n))
    (local.get $out))
  (func (export "hello") (param i32 i32) (result i32) (i32.const 16))
  (func (export "null") (param i32 i32) (result i32) (i32.const 0))
  (func (export "error") (param $p i32) (param $n i32) (result i32)
    (call $error (local.get $p) (local.get $n)) (i32.const 0))
  (func (export "error_and_result") (param $p i32) (param $n i32) (result i32)
    (call $error (local.get $p) (local.get $n)) (i32.const 16))
  (func (export "logs") (param $p i32) (param $n i32) (result i32)
    (call $log (i32.const 2) (local.get $p) (local.get $n)) (i32.const 16))
  (func (export "log_out_of_bounds") (param i32 i32) (result i32)
    (call $log (i32.const 1) (i32.const -8) (i32.const 64)) (i32.const 16))
  ;; the length prefix itself past the end: 2 bytes before it, and a negative (huge) pointer
  (func (export "header_past_end") (param i32 i32) (result i32)
    (i32.sub (i32.mul (memory.size) (i32.const 65536)) (i32.const 2)))
  (func (export "negative") (param i32 i32) (result i32) (i32.const -4))
  ;; the prefix is the memory's last 4 bytes (zero): an empty result, which is not JSON
  (func (export "header_at_end") (param i32 i32) (result i32)
    (i32.sub (i32.mul (memory.size) (i32.const 65536)) (i32.const 4)))
  ;; the prefix's last byte one past the end
  (func (export "header_one_past_end") (param i32 i32) (result i32)
    (i32.sub (i32.mul (memory.size) (i32.const 65536)) (i32.const 3)))
  (func (export "too_long") (param i32 i32) (result i32) (i32.const 32))
  ;; a JSON string of 100,000 bytes (MAX_OUTPUT), and one byte longer
  (func $string (param $length i32) (result i32)
    (local $out i32)
    (local.set $out (call $bump (local.get $length)))
    (i32.store (local.get $out) (local.get $length))
    (memory.fill (i32.add (local.get $out) (i32.const 4)) (i32.const 98) (local.get $length))
    (i32.store8 (i32.add (local.get $out) (i32.const 4)) (i32.const 34))
    (i32.store8 (i32.add (local.get $out) (i32.add (local.get $length) (i32.const 3)))
                (i32.const 34))
    (local.get $out))
  (func (export "at_cap") (param i32 i32) (result i32) (call $string (i32.const 100000)))
  (func (export "over_cap") (param i32 i32) (result i32) (call $string (i32.const 100001)))
  (func (export "body_past_end") (param i32 i32) (result i32)
    (local $at i32)
    (local.set $at (i32.sub (i32.mul (memory.size) (i32.const 65536)) (i32.const 100)))
    (i32.store (local.get $at) (i32.const 97))
    (local.get $at))
  (func (export "not_json") (param i32 i32) (result i32) (i32.const 48))
  ;; a large result ("aaa...a", 70,000 bytes): it crosses as a view of guest memory
  (func (export "large") (param i32 i32) (result i32)
    (local $out i32)
    (local.set $out (call $bump (i32.const 70000)))
    (i32.store (local.get $out) (i32.const 70000))
    (memory.fill (i32.add (local.get $out) (i32.const 4)) (i32.const 97) (i32.const 70000))
    (i32.store8 (i32.add (local.get $out) (i32.const 4)) (i32.const 34))
    (i32.store8 (i32.add (local.get $out) (i32.const 70003)) (i32.const 34))
    (local.get $out))
  (func (export "trap") (param i32 i32) (result i32) unreachable)
  (func (export "spin") (param i32 i32) (result i32) (loop $l (br $l)) (i32.const 0))
  (func (export "grow_to_cap") (param i32 i32) (result i32)
    (loop $l (br_if $l (i32.ne (memory.grow (i32.const 1)) (i32.const -1))))
    (i32.const 0))
)
"""
ALLOCATORS = {
    "bump": "(call $bump (local.get $n))",
    "null": "(i32.const 0)",
    "one_past_the_end": "(i32.sub (i32.mul (memory.size) (i32.const 65536)) "
                        "(i32.sub (local.get $n) (i32.const 1)))",
    "high": "(i32.const -16)",
    "trap": "unreachable",
    "growing": "(i32.shl (memory.grow (i32.const 1)) (i32.const 16))",
    "logging": "(call $log (i32.const 1) (i32.const 20) (i32.const 7)) (call $bump (local.get $n))",
}
#: Other variants: (allocator, _initialize, start function, memory).
VARIANTS = {
    **{f"alloc_{name}": (name, "", "", "1 8") for name in ALLOCATORS},
    "initialize_logs": ("bump", '(func (export "_initialize") '
                                "(call $log (i32.const 2) (i32.const 20) (i32.const 7)))", "", "1 8"),
    "initialize_traps": ("bump", '(func (export "_initialize") unreachable)', "", "1 8"),
    "initialize_errors": ("bump", '(func (export "_initialize") '
                                  "(call $error (i32.const 21) (i32.const 5)))", "", "1 8"),
    "start_traps": ("bump", "", "(func $start unreachable) (start $start)", "1 8"),
    "start_logs_out_of_bounds": ("bump", "", "(func $start (call $log (i32.const 1) "
                                 "(i32.const -8) (i32.const 64))) (start $start)", "1 8"),
    "memory_cannot_grow_to_min_pages": ("bump", "", "", "1 2"),
    "memory_over_max_pages_at_start": ("bump", "", "", "9 16"),
}
CAPABILITIES = ["echo", "hello", "null", "error", "error_and_result", "logs", "log_out_of_bounds",
                "header_past_end", "header_one_past_end", "negative", "header_at_end", "too_long",
                "at_cap", "over_cap", "body_past_end",
                "not_json", "large", "trap", "spin", "grow_to_cap"]
INPUTS = [b'{"text":"hello"}', b""]
LIMITS: dict[str, Any] = {"fuel": 2_000_000, "timeout_ms": 5000.0, "min_pages": 3, "max_pages": 8,
          "max_log": 4096}
MAX_OUTPUT = 100_000


@pytest.fixture(scope="module")
def executor() -> Executor:
    return Executor()


@pytest.fixture(scope="module")
def plugins(executor: Executor, tmp_path_factory: pytest.TempPathFactory) -> dict[str, LoadedPlugin]:
    folder = tmp_path_factory.mktemp("invoke")
    loaded = {}
    for name, (alloc, init, start, memory) in VARIANTS.items():
        wat = (TEMPLATE.replace("ALLOC", ALLOCATORS[alloc]).replace("INIT", init)
               .replace("START", start).replace("MEMORY", memory))
        path = folder / f"{name}.wasm"
        path.write_bytes(wasmtime.wat2wasm(wat))
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        loaded[name] = executor.load(str(path), digest)
    base = loaded["alloc_bump"]
    # Shapes a load refuses, reached by pointing the plugin's export numbers elsewhere.
    numbers = base.export_index
    loaded["memory_is_not_a_memory"] = dataclasses.replace(
        base, export_index={**numbers, "memory": numbers["echo"]})
    loaded["initialize_is_not_a_function"] = dataclasses.replace(
        base, has_initialize=True, export_index={**numbers, "_initialize": numbers["memory"]})
    return loaded


def _outcome(executor: Executor, plugin: LoadedPlugin, capability: str, data: bytes, *,
             prepared: bool, allocator: str = "cortex_alloc") -> tuple[Any, ...]:
    """What one call did: its result or its failure, the fuel it burned and what it logged."""
    if prepared:
        executor.prepare(plugin, **LIMITS)
    try:
        fields, ctx = executor.call(plugin, capability, data, allocator=allocator,
                                    max_output=MAX_OUTPUT, **LIMITS)
    except CallFailed as failed:
        last = executor.last_context
        return ("failed", failed.kind, failed.message, failed.trap_code, executor.last_fuel_used,
                last.logs if last else None)
    else:
        result = fields.get(ATTACHMENT)
        output = bytes(result) if result is not None else orjson.dumps(fields["result"])
        return ("ok", output, result is not None, fields["fuel_used"], ctx.logs)
    finally:
        executor.release()


def _both(executor: Executor, plugin: LoadedPlugin, capability: str, data: bytes, *,
          prepared: bool, allocator: str = "cortex_alloc") -> tuple[Any, Any]:
    guest_module.native = False
    try:
        by_steps = _outcome(executor, plugin, capability, data, prepared=prepared,
                            allocator=allocator)
    finally:
        guest_module.native = True
    return by_steps, _outcome(executor, plugin, capability, data, prepared=prepared,
                              allocator=allocator)


def test_the_native_library_is_built() -> None:
    assert guest_module.native, "sandbox/_guest_native.so is missing: run scripts/build-native"


@pytest.mark.parametrize("variant", [*VARIANTS, "memory_is_not_a_memory",
                                     "initialize_is_not_a_function"])
@pytest.mark.parametrize("prepared", [False, True], ids=["fresh", "prepared"])
def test_one_foreign_call_and_the_steps_agree(executor: Executor, plugins: dict[str, LoadedPlugin],
                                              variant: str, prepared: bool) -> None:
    for capability in CAPABILITIES:
        for data in INPUTS:
            by_steps, invoked = _both(executor, plugins[variant], capability, data,
                                      prepared=prepared)
            assert invoked == by_steps, (variant, capability, data)


def test_an_allocator_the_module_lacks_takes_the_steps(executor: Executor,
                                                       plugins: dict[str, LoadedPlugin]) -> None:
    by_steps, invoked = _both(executor, plugins["alloc_bump"], "echo", b"{}", prepared=False,
                              allocator="malloc")
    assert invoked == by_steps
    assert by_steps[:4] == ("failed", "trap", "'malloc' is not an allocator of this module",
                            "bad_export")


def _failure(outcome: tuple[Any, ...]) -> tuple[Any, ...]:
    assert outcome[0] == "failed", outcome
    return outcome[1:4]


def test_what_both_are_held_to(executor: Executor, plugins: dict[str, LoadedPlugin]) -> None:
    """The outcomes compared above, spelled out for each way a call can end."""
    def call(variant: str, capability: str, prepared: bool = False) -> tuple[Any, ...]:
        return _outcome(executor, plugins[variant], capability, b'{"a":1}', prepared=prepared)

    memory = 3 * 65536  # min_pages
    not_json = "output is not valid JSON: "
    assert call("alloc_bump", "echo")[:3] == ("ok", b'{"a":1}', False)
    assert call("alloc_bump", "echo", prepared=True)[:3] == ("ok", b'{"a":1}', False)
    assert call("alloc_bump", "large")[:3] == ("ok", b'"' + b"a" * 69998 + b'"', True)
    assert LARGE_FRAME_BYTES <= 70000  # so it crossed as a view
    assert call("alloc_logging", "logs")[4] == [["info", "log", '"hello"'],
                                                ["warning", "log", '{"a":1}']]
    assert call("initialize_logs", "hello")[::4] == ("ok", [["warning", "log", '"hello"']])
    assert _failure(call("alloc_bump", "error")) == ("plugin_error", '{"a":1}', None)
    assert _failure(call("alloc_bump", "error_and_result")) == ("plugin_error", '{"a":1}', None)
    assert _failure(call("alloc_bump", "null")) == (
        "invalid_output", "the capability returned a null result pointer without reporting an "
        "error through cortex.error", None)
    assert _failure(call("alloc_bump", "header_past_end")) == (
        "invalid_output", f"result pointer {memory - 2} is past the end of memory "
        f"({memory} bytes)", None)
    assert _failure(call("alloc_bump", "header_one_past_end")) == (
        "invalid_output", f"result pointer {memory - 3} is past the end of memory "
        f"({memory} bytes)", None)
    assert call("alloc_bump", "at_cap")[:3] == ("ok", b'"' + b"b" * 99998 + b'"', True)
    assert _failure(call("alloc_bump", "over_cap")) == (
        "invalid_output", f"output of {MAX_OUTPUT + 1} bytes exceeds the {MAX_OUTPUT}-byte cap",
        None)
    assert _failure(call("alloc_bump", "negative")) == (
        "invalid_output", f"result pointer {2**32 - 4} is past the end of memory "
        f"({memory} bytes)", None)
    assert _failure(call("alloc_bump", "header_at_end")) == (
        "invalid_output", not_json + "Input is a zero-length, empty document: line 1 column 1 "
        "(char 0)", None)
    assert _failure(call("alloc_bump", "too_long")) == (
        "invalid_output", f"output of {2**31 - 1} bytes exceeds the {MAX_OUTPUT}-byte cap", None)
    assert _failure(call("alloc_bump", "body_past_end")) == (
        "invalid_output", f"result of 97 bytes at {memory - 96} runs past the end of memory "
        f"({memory} bytes)", None)
    assert _failure(call("alloc_bump", "not_json")) == (
        "invalid_output", not_json + "unexpected character, expected a string key: line 1 "
        "column 2 (char 1)", None)
    unreachable = ("trap", "wasm `unreachable` instruction executed", "unreachable")
    assert _failure(call("alloc_bump", "trap")) == unreachable
    assert _failure(call("alloc_bump", "spin")) == ("fuel", "the call ran out of fuel", None)
    assert _failure(call("alloc_bump", "grow_to_cap")) == (
        "memory", "memory limit of 8 pages reached (the capability returned a null result "
        "pointer without reporting an error through cortex.error)", None)
    refused = ("trap", "host import refused the call: host_memory_out_of_bounds",
               "host_memory_out_of_bounds")
    assert _failure(call("alloc_bump", "log_out_of_bounds")) == refused
    assert _failure(call("alloc_null", "echo")) == (
        "invalid_output", "allocator 'cortex_alloc' returned a null pointer", None)
    assert _failure(call("alloc_high", "echo")) == (
        "invalid_output", f"allocator 'cortex_alloc' returned {2**32 - 16}, past the end of "
        "memory", None)
    assert _failure(call("alloc_one_past_the_end", "echo")) == (
        "invalid_output", f"allocator 'cortex_alloc' returned {memory - 6}, past the end of "
        "memory", None)
    assert _failure(call("alloc_trap", "echo")) == unreachable
    assert call("alloc_growing", "echo")[:2] == ("ok", b'{"a":1}')
    assert _failure(call("initialize_traps", "echo")) == unreachable
    assert _failure(call("initialize_errors", "echo")) == ("plugin_error", "hello", None)
    assert _failure(call("start_traps", "echo")) == unreachable
    assert _failure(call("start_logs_out_of_bounds", "echo")) == refused
    assert _failure(call("memory_cannot_grow_to_min_pages", "echo")) == (
        "memory", "cannot grow memory to wasm.memoryPages=3 pages", None)
    assert _failure(call("memory_over_max_pages_at_start", "echo")) == (
        "memory", "the module needs 9 pages of memory at start, over the limit of 8 pages", None)
    assert _failure(call("memory_is_not_a_memory", "echo")) == (
        "trap", "the module has no linear memory", "instantiation")
    assert _failure(call("initialize_is_not_a_function", "echo")) == (
        "trap", f"export number {plugins['alloc_bump'].export_index['memory']} is not a "
        "function", "bad_export")


def test_the_native_path_is_taken(executor: Executor, plugins: dict[str, LoadedPlugin],
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Without this, the comparisons above could compare the steps with themselves."""
    invoked = []
    real = guest_module.Guest.invoke

    def counting(self: guest_module.Guest, *args: Any) -> int:
        invoked.append(args[0] != 0)  # with a ``pre``: a fresh instance
        return real(self, *args)

    monkeypatch.setattr(guest_module.Guest, "invoke", counting)
    assert _outcome(executor, plugins["alloc_bump"], "echo", b"{}", prepared=False)[0] == "ok"
    assert _outcome(executor, plugins["alloc_bump"], "echo", b"{}", prepared=True)[0] == "ok"
    assert invoked == [True, False]


def test_a_large_input_takes_the_steps(executor: Executor, plugins: dict[str, LoadedPlugin],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A large input arrives as a view of its frame, which only the steps take."""
    monkeypatch.setattr(guest_module.Guest, "invoke", None)
    data = b'"' + b"x" * 1000 + b'"'
    assert _outcome(executor, plugins["alloc_bump"], "echo", memoryview(data),  # type: ignore[arg-type]
                    prepared=False)[:2] == ("ok", data)


def _slot_holders(executor: Executor, plugin: LoadedPlugin) -> list[Guest]:
    """Instances holding every pooling slot of ``executor``'s engine left (until closed)."""
    holders: list[Guest] = []
    for _ in range(POOL_SLOTS + 1):
        guest = executor._new_guest(plugin, CallContext(max_log_bytes=4096), fuel=10**6,
                                    timeout_ms=1000.0, max_pages=8)
        try:
            guest.instantiate(plugin.pre_address, plugin.export_index["memory"])
        except wasmtime.WasmtimeError as exc:
            assert "concurrent limit" in str(exc)
            guest.close()
            return holders
        holders.append(guest)
    raise AssertionError(f"more than {POOL_SLOTS} instances at once")


@pytest.fixture
def own_executor(tmp_path: Path) -> tuple[Executor, LoadedPlugin]:
    """An engine of its own, whose pooling slots the test may fill."""
    executor = Executor(prepared_plugins=0)
    path = tmp_path / "bump.wasm"
    path.write_bytes(wasmtime.wat2wasm(
        TEMPLATE.replace("ALLOC", ALLOCATORS["bump"]).replace("INIT", "").replace("START", "")
        .replace("MEMORY", "1 8")))
    plugin = executor.load(str(path), hashlib.sha256(path.read_bytes()).hexdigest())
    return executor, plugin


def test_with_every_slot_taken_both_fail_alike(own_executor: tuple[Executor, LoadedPlugin]) -> None:
    executor, plugin = own_executor
    holders = _slot_holders(executor, plugin)
    try:
        by_steps, invoked = _both(executor, plugin, "echo", b"{}", prepared=False)
    finally:
        for guest in holders:
            guest.close()
    assert invoked == by_steps
    assert (by_steps[1], by_steps[3]) == ("trap", "instantiation")
    assert by_steps[2].startswith("instantiation failed: ") and "concurrent limit" in by_steps[2]


def test_slots_held_by_unreachable_stores_are_collected_and_the_call_retried(
        own_executor: tuple[Executor, LoadedPlugin], monkeypatch: pytest.MonkeyPatch) -> None:
    """A store in a reference cycle keeps its slot until the cycle collector runs: a call that
    finds no slot collects once and retries, on both paths."""
    executor, plugin = own_executor
    collections = []
    real_collect = gc.collect
    monkeypatch.setattr(gc, "collect", lambda: collections.append(1) or real_collect())
    outcomes = []
    for native in (False, True):
        gc.disable()  # only the retry's collection may free them
        try:
            cycle: list[Any] = list(_slot_holders(executor, plugin))
            cycle.append(cycle)
            del cycle
            guest_module.native = native
            try:
                outcomes.append(_outcome(executor, plugin, "echo", b'{"a":1}', prepared=False))
            finally:
                guest_module.native = True
        finally:
            gc.enable()
    assert outcomes[0] == outcomes[1]
    assert outcomes[0][:2] == ("ok", b'{"a":1}'), outcomes[0]
    assert len(collections) == 2  # one retry each
