"""One test per rule of the Cortex plugin ABI v1 (docs/abi.md), with real WAT modules.

Each WAT fixture lives in ``tests/fixtures/``; ``make_plugin`` compiles it into a plugin folder.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import orjson
import pytest
from conftest import PluginFactory, wat_bytes
from structlog.testing import capture_logs

from cortex_runtime import Runtime
from cortex_runtime.errors import (
    CapabilityNotFound,
    InvalidInput,
    InvalidOutput,
    ManifestError,
    PluginError,
    PluginNotFound,
    PluginTrap,
)

pytestmark = pytest.mark.anyio

RuntimeFactory = Callable[..., Runtime]


# -- input ------------------------------------------------------------------------------------

INPUTS: list[Any] = [
    {"text": "hello world", "n": 42, "ok": True, "none": None},
    {"text": "héllo wörld ✓ 😀 日本語", "emoji": "\U0001f600"},
    {},
    "x" * 1_000_000,
    None,
    [1, 2.5, "three", [], {}],
]


@pytest.mark.parametrize(
    ("fixture", "allocator", "export"),
    [
        ("echo_malloc", "wasi", "malloc"),
        ("echo_cortex_alloc", "custom", "cortex_alloc"),
        ("echo_malloc", "auto", "malloc"),
        ("echo_cortex_alloc", "auto", "cortex_alloc"),
    ],
)
async def test_input_arrives_intact(
    runtime: RuntimeFactory, make_plugin: PluginFactory, fixture: str, allocator: str, export: str
) -> None:
    """The host writes the UTF-8 JSON input through the chosen allocator; echo gets it back."""
    folder = make_plugin(fixture, name="echo", wasm={"allocator": allocator})
    async with runtime() as rt:
        info = await rt.load(folder)
        assert info.allocator_export == export
        assert info.capabilities == ("echo",)
        for value in INPUTS:
            assert await rt.call("echo", "echo", value) == value
        big = await rt.call("echo", "echo", {"s": "é" * 300_000})
        assert big == {"s": "é" * 300_000}


async def test_auto_allocator_prefers_cortex_alloc(
    runtime: RuntimeFactory, make_plugin: PluginFactory
) -> None:
    """With both exported, "auto" calls cortex_alloc; "wasi" calls malloc (which returns 0 here)."""
    async with runtime() as rt:
        auto = await rt.load(make_plugin("echo_both_allocators", name="both-auto"))
        assert auto.allocator_export == "cortex_alloc"
        assert await rt.call("both-auto", "echo", {"a": 1}) == {"a": 1}

        wasi = await rt.load(make_plugin("echo_both_allocators", name="both-wasi",
                                         wasm={"allocator": "wasi"}))
        assert wasi.allocator_export == "malloc"
        with pytest.raises(InvalidOutput, match="allocator 'malloc' returned a null pointer"):
            await rt.call("both-wasi", "echo", {"a": 1})


async def test_what_the_allocator_returns_is_checked_before_the_input_is_written(
    runtime: RuntimeFactory, make_plugin: PluginFactory
) -> None:
    """The pointer an allocator returns is the guest's word: null, or a range that runs past
    the end of memory, is ``InvalidOutput``; a trap in it is a trap; memory it grew is memory.
    (The input's length picks the fixture allocator's behaviour.)"""
    async with runtime(quarantine_after=0) as rt:
        await rt.load(make_plugin("hostile_allocator", name="hostile"))
        with pytest.raises(InvalidOutput, match="allocator 'cortex_alloc' returned a null pointer"):
            await rt.call("hostile", "echo", 1)
        with pytest.raises(InvalidOutput,
                           match="allocator 'cortex_alloc' returned 65535, past the end of memory"):
            await rt.call("hostile", "echo", 12)
        with pytest.raises(PluginTrap, match="unreachable"):
            await rt.call("hostile", "echo", 123)
        assert await rt.call("hostile", "echo", 1234) == 1234  # written into the grown page
        assert await rt.call("hostile", "echo", 12345) == 12345


@pytest.mark.parametrize(
    ("fixture", "allocator", "missing"),
    [("echo_cortex_alloc", "wasi", "malloc"), ("echo_malloc", "custom", "cortex_alloc")],
)
async def test_declared_allocator_must_be_exported(
    runtime: RuntimeFactory, make_plugin: PluginFactory, fixture: str, allocator: str,
    missing: str,
) -> None:
    folder = make_plugin(fixture, wasm={"allocator": allocator})
    async with runtime() as rt:
        with pytest.raises(ManifestError) as caught:
            await rt.load(folder)
        assert caught.value.field == "wasm.allocator"
        assert "wasm.allocator" in str(caught.value)
        assert repr(missing) in str(caught.value)
        assert rt.plugins == {}


async def test_input_not_json_serialisable_is_invalid_input(
    runtime: RuntimeFactory, make_plugin: PluginFactory
) -> None:
    async with runtime() as rt:
        await rt.load(make_plugin("echo_cortex_alloc", name="echo"))
        with pytest.raises(InvalidInput, match="not JSON-serialisable"):
            await rt.call("echo", "echo", object())
        with pytest.raises(InvalidInput, match="not JSON-serialisable"):
            await rt.call("echo", "echo", {"tags": {1, 2}})
        assert await rt.call("echo", "echo", {"tags": [1, 2]}) == {"tags": [1, 2]}


async def test_input_over_max_input_bytes_is_invalid_input(
    runtime: RuntimeFactory, make_plugin: PluginFactory
) -> None:
    folder = make_plugin("echo_cortex_alloc", name="echo", limits={"maxInputBytes": 100})
    async with runtime() as rt:
        await rt.load(folder)
        at_limit = "x" * 98  # 100 bytes of JSON with the quotes
        assert len(orjson.dumps(at_limit)) == 100
        assert await rt.call("echo", "echo", at_limit) == at_limit
        with pytest.raises(InvalidInput, match=r"101 bytes exceeds .* limit of 100 bytes"):
            await rt.call("echo", "echo", at_limit + "x")


async def test_unknown_plugin_is_plugin_not_found(
    runtime: RuntimeFactory, make_plugin: PluginFactory
) -> None:
    async with runtime() as rt:
        await rt.load(make_plugin("echo_cortex_alloc", name="echo"))
        with pytest.raises(PluginNotFound, match="no plugin named 'nope'") as caught:
            await rt.call("nope", "echo", {})
        assert caught.value.plugin == "nope"


async def test_unknown_capability_is_capability_not_found(
    runtime: RuntimeFactory, make_plugin: PluginFactory
) -> None:
    async with runtime() as rt:
        await rt.load(make_plugin("echo_cortex_alloc", name="echo"))
        with pytest.raises(CapabilityNotFound, match="no capability 'nope'"):
            await rt.call("echo", "nope", {})
        # the allocator is an export but never a capability
        with pytest.raises(CapabilityNotFound):
            await rt.call("echo", "cortex_alloc", {})


# -- instance life cycle ----------------------------------------------------------------------


async def test_initialize_runs_once_per_fresh_instance_before_anything(
    runtime: RuntimeFactory, make_plugin: PluginFactory
) -> None:
    """_initialize ran once before the allocator and before the capability, on every call."""
    async with runtime() as rt:
        info = await rt.load(make_plugin("initialize_counter"))
        assert info.capabilities == ("inits",)
        first = await rt.call("initialize-counter", "inits", {})
        second = await rt.call("initialize-counter", "inits", {})
        assert first == second == {"inits": 1, "at_alloc": 1}


async def test_memory_and_globals_are_fresh_on_every_call(
    runtime: RuntimeFactory, make_plugin: PluginFactory
) -> None:
    async with runtime() as rt:
        await rt.load(make_plugin("fresh_state"))
        results = [await rt.call("fresh-state", "bump", {}) for _ in range(5)]

        async def one() -> None:
            results.append(await rt.call("fresh-state", "bump", {}))

        async with anyio.create_task_group() as tg:
            for _ in range(10):
                tg.start_soon(one)
        assert results == [{"global": 1, "memory": 1}] * 15


async def test_memory_pages_grows_memory_before_initialize(
    runtime: RuntimeFactory, make_plugin: PluginFactory
) -> None:
    async with runtime() as rt:
        await rt.load(make_plugin("memory_pages", name="one-page"))
        assert await rt.call("one-page", "pages", {}) == 1
        assert await rt.call("one-page", "pages_at_init", {}) == 1

        await rt.load(make_plugin("memory_pages", name="five-pages", wasm={"memoryPages": 5}))
        assert await rt.call("five-pages", "pages", {}) == 5
        assert await rt.call("five-pages", "pages_at_init", {}) == 5


# -- the cortex host module and WASI ----------------------------------------------------------

ERROR_MESSAGE = "something went wrong: déjà vu"


@pytest.mark.parametrize("capability", ["fail", "fail_but_return", "fail_twice"])
async def test_cortex_error_is_plugin_error_with_the_exact_message(
    runtime: RuntimeFactory, make_plugin: PluginFactory, capability: str
) -> None:
    """fail: error then 0; fail_but_return: error then a valid result; fail_twice: first wins."""
    async with runtime() as rt:
        await rt.load(make_plugin("errors_and_logs"))
        with pytest.raises(PluginError) as caught:
            await rt.call("errors-and-logs", capability, {})
        assert caught.value.message == ERROR_MESSAGE
        assert str(caught.value) == ERROR_MESSAGE
        assert caught.value.plugin == "errors-and-logs"


async def test_cortex_log_lines_become_plugin_log_events(
    runtime: RuntimeFactory, make_plugin: PluginFactory
) -> None:
    async with runtime() as rt:
        await rt.load(make_plugin("errors_and_logs"))
        with capture_logs() as events:
            assert await rt.call("errors-and-logs", "logs", {}) == {"ok": True}
    lines = [
        (e["log_level"], e["message"], e["stream"], e["plugin"])
        for e in events if e["event"] == "plugin.log"
    ]
    assert lines == [
        ("debug", "debug line", "log", "errors-and-logs"),
        ("info", "info line", "log", "errors-and-logs"),
        ("warning", "warning line", "log", "errors-and-logs"),
        ("error", "error line", "log", "errors-and-logs"),
        ("info", "odd level line", "log", "errors-and-logs"),  # level 7 is treated as info
    ]


async def test_log_budget_drops_and_counts_extra_lines(
    runtime: RuntimeFactory, make_plugin: PluginFactory
) -> None:
    """Each line costs its bytes + 16 (so empty-line floods are bounded too). With
    maxLogBytes=51 the first two lines (10+16 + 9+16 = 51) fit; the other three are dropped."""
    async with runtime() as rt:
        await rt.load(make_plugin("errors_and_logs", limits={"maxLogBytes": 51}))
        with capture_logs() as events:
            assert await rt.call("errors-and-logs", "logs", {}) == {"ok": True}
    messages = [e["message"] for e in events if e["event"] == "plugin.log"]
    assert messages == ["debug line", "info line"]
    dropped = [e for e in events if e["event"] == "plugin.log_dropped"]
    assert [e["dropped"] for e in dropped] == [3]


async def test_wasi_stdout_and_stderr_are_captured_not_printed(
    runtime: RuntimeFactory, make_plugin: PluginFactory, capfd: pytest.CaptureFixture[str]
) -> None:
    async with runtime() as rt:
        await rt.load(make_plugin("errors_and_logs"))
        with capture_logs() as events:
            assert await rt.call("errors-and-logs", "print", {}) == {"ok": True}
    lines = sorted(
        (e["stream"], e["message"], e["plugin"]) for e in events if e["event"] == "plugin.log"
    )
    assert lines == [
        ("stderr", "hello from stderr", "errors-and-logs"),
        ("stdout", "hello from stdout", "errors-and-logs"),
    ]
    out, err = capfd.readouterr()
    assert "hello from" not in out
    assert "hello from" not in err


async def test_host_import_with_out_of_bounds_pointer_traps(
    runtime: RuntimeFactory, make_plugin: PluginFactory
) -> None:
    async with runtime() as rt:
        await rt.load(make_plugin("errors_and_logs"))
        with pytest.raises(PluginTrap) as caught:
            await rt.call("errors-and-logs", "log_out_of_bounds", {})
        assert caught.value.trap_code == "host_memory_out_of_bounds"


# -- results ----------------------------------------------------------------------------------


async def test_any_json_value_is_a_valid_result(
    runtime: RuntimeFactory, make_plugin: PluginFactory
) -> None:
    async with runtime() as rt:
        await rt.load(make_plugin("result_values"))
        assert await rt.call("result-values", "array", {}) == [1, "two", None, True, False,
                                                               {"a": 1.5}]
        assert await rt.call("result-values", "ten_bytes", {}) == "abcdefgh"
        assert await rt.call("result-values", "null_value", {}) is None
        assert await rt.call("result-values", "number", {}) == -12.5
        assert await rt.call("result-values", "max_u64", {}) == 2**64 - 1


async def test_null_result_pointer_is_invalid_output(
    runtime: RuntimeFactory, make_plugin: PluginFactory
) -> None:
    async with runtime() as rt:
        await rt.load(make_plugin("bad_results"))
        assert await rt.call("bad-results", "valid", {}) == {"ok": True}
        with pytest.raises(InvalidOutput, match="null result pointer"):
            await rt.call("bad-results", "null_result", {})


@pytest.mark.parametrize(
    "capability",
    [
        "result_past_memory",    # R == memory size: the header is past the end
        "negative_pointer",      # -8 is 0xFFFFFFF8 unsigned
        "header_straddles_end",  # R + 4 past the end
        "length_past_memory",    # R + 4 + N past the end
        "length_wraps",          # R + 4 + N overflows 32 bits back to R
    ],
)
async def test_result_outside_memory_is_invalid_output(
    runtime: RuntimeFactory, make_plugin: PluginFactory, capability: str
) -> None:
    async with runtime() as rt:
        await rt.load(make_plugin("bad_results"))
        with pytest.raises(InvalidOutput) as caught:
            await rt.call("bad-results", capability, {})
        assert "returned an invalid result" in str(caught.value)
        # an invalid result costs nothing else: the plugin keeps working
        assert await rt.call("bad-results", "valid", {}) == {"ok": True}


async def test_non_utf8_output_is_invalid_output(
    runtime: RuntimeFactory, make_plugin: PluginFactory
) -> None:
    async with runtime() as rt:
        await rt.load(make_plugin("bad_results"))
        with pytest.raises(InvalidOutput, match="not valid UTF-8"):
            await rt.call("bad-results", "not_utf8", {})


async def test_non_json_output_is_invalid_output(
    runtime: RuntimeFactory, make_plugin: PluginFactory
) -> None:
    async with runtime() as rt:
        await rt.load(make_plugin("bad_results"))
        with pytest.raises(InvalidOutput, match="not valid JSON"):
            await rt.call("bad-results", "not_json", {})


@pytest.mark.parametrize("capability", ["frame_injection", "empty_output"])
async def test_output_must_be_exactly_one_json_document(
    runtime: RuntimeFactory, make_plugin: PluginFactory, capability: str
) -> None:
    """``1,"ok":false`` is two values; if it were spliced into the reply frame unchecked it could
    smuggle keys into the supervisor's reply. It must be refused like any non-JSON output."""
    async with runtime() as rt:
        await rt.load(make_plugin("bad_results"))
        with pytest.raises(InvalidOutput, match="not valid JSON"):
            await rt.call("bad-results", capability, {})
        assert rt.stats.get("killed", 0) == 0


async def test_json_nested_deeper_than_1023_is_invalid_output(
    runtime: RuntimeFactory, make_plugin: PluginFactory
) -> None:
    """1023 levels arrive intact; 1024 is refused by the worker (not a ProtocolError later)."""
    async with runtime() as rt:
        await rt.load(make_plugin("bad_results"))
        value: Any = await rt.call("bad-results", "nested_1023", {})
        depth = 0
        while isinstance(value, list):
            depth += 1
            value = value[0] if value else None
        assert depth == 1023
        with pytest.raises(InvalidOutput, match="nested deeper than 1023"):
            await rt.call("bad-results", "nested_1024", {})
        assert rt.stats.get("killed", 0) == 0


@pytest.mark.parametrize("capability", ["integer_too_big", "integer_too_small"])
async def test_integers_outside_the_64_bit_range_are_invalid_output(
    runtime: RuntimeFactory, make_plugin: PluginFactory, capability: str
) -> None:
    """2**64 and -2**63 - 1 must not silently become floats."""
    async with runtime() as rt:
        await rt.load(make_plugin("bad_results"))
        with pytest.raises(InvalidOutput, match="outside the 64-bit range"):
            await rt.call("bad-results", capability, {})


@pytest.mark.parametrize(
    ("capability", "message"),
    [
        ("large_not_utf8", "output is not valid UTF-8: invalid start byte at byte 80001"),
        ("large_not_json", "output is not valid JSON"),
        ("large_frame_injection", "output is not valid JSON"),
        ("large_integer_too_big", "output has an integer outside the 64-bit range"),
        ("large_nested_1024", "output is nested deeper than 1023 levels"),
    ],
)
async def test_a_large_result_is_checked_as_strictly_by_the_supervisor(
    runtime: RuntimeFactory, make_plugin: PluginFactory, capability: str, message: str
) -> None:
    """A result of 64 KiB or more crosses as the reply's attachment, from guest memory, and the
    worker does not parse it; the supervisor checks it as it decodes it. The same errors, with
    the same messages, and nobody is blamed but the plugin: no worker is killed."""
    async with runtime() as rt:
        await rt.load(make_plugin("bad_results"))
        assert await rt.call("bad-results", "large_valid", {}) == {"ok": True}
        with pytest.raises(InvalidOutput, match=re.escape(message)):
            await rt.call("bad-results", capability, {})
        assert await rt.call("bad-results", "large_valid", {}) == {"ok": True}
        assert rt.stats.get("killed", 0) == 0


async def test_output_over_max_output_bytes_is_invalid_output(
    runtime: RuntimeFactory, make_plugin: PluginFactory
) -> None:
    """ten_bytes returns the 10-byte JSON "abcdefgh"; a 9-byte cap refuses it, 10 accepts it."""
    async with runtime() as rt:
        await rt.load(make_plugin("result_values", name="cap-9", limits={"maxOutputBytes": 9}))
        await rt.load(make_plugin("result_values", name="cap-10", limits={"maxOutputBytes": 10}))
        assert await rt.call("cap-10", "ten_bytes", {}) == "abcdefgh"
        with pytest.raises(InvalidOutput, match="output of 10 bytes exceeds the 9-byte cap"):
            await rt.call("cap-9", "ten_bytes", {})


async def test_huge_length_header_is_invalid_output(
    runtime: RuntimeFactory, make_plugin: PluginFactory
) -> None:
    async with runtime() as rt:
        await rt.load(make_plugin("bad_results"))
        with pytest.raises(InvalidOutput, match="output of 104857600 bytes exceeds"):
            await rt.call("bad-results", "huge_length", {})


async def test_returning_a_count_is_invalid_output(
    runtime: RuntimeFactory, make_plugin: PluginFactory
) -> None:
    """The product document's Go count_tokens returns 3 for "one two three": read as a pointer."""
    async with runtime() as rt:
        await rt.load(make_plugin("count_tokens"))
        with pytest.raises(InvalidOutput):
            await rt.call("count-tokens", "count_tokens", {"text": "one two three"})


# -- load-time refusals -----------------------------------------------------------------------

RANDOM_BYTES = random.Random(1234).randbytes(256)
ELF_HEADER = b"\x7fELF\x02\x01\x01\x00" + bytes(56)


def _truncated() -> bytes:
    wasm = wat_bytes("echo_cortex_alloc")
    return wasm[: len(wasm) // 2]


LOAD_REFUSALS: list[Any] = [
    pytest.param("import_env", None, {}, "entryPoint", "'env.foo'", id="unknown-import"),
    pytest.param("no_memory_export", None, {}, "entryPoint", "memory", id="no-memory-export"),
    pytest.param("command_start", None, {}, "entryPoint", "_start", id="command-start"),
    pytest.param(None, RANDOM_BYTES, {}, "entryPoint", "not a WebAssembly", id="random-bytes"),
    pytest.param(None, ELF_HEADER, {}, "entryPoint", "not a WebAssembly", id="elf-header"),
    pytest.param(None, _truncated(), {}, "entryPoint", "does not compile", id="truncated"),
    pytest.param("echo_cortex_alloc", None, {"sha256": "0" * 64}, "sha256", "does not match",
                 id="sha256-mismatch"),
    pytest.param("many_exports", None, {"capabilities": {"alpha": {}, "missing": {}}},
                 "capabilities.missing", "does not export", id="capability-missing"),
    pytest.param("many_exports", None, {"capabilities": {"one_param": {}}},
                 "capabilities.one_param", "wrong signature", id="capability-wrong-signature"),
    pytest.param("big_initial_memory", None, {"wasm": {"maxMemoryPages": 4}},
                 "wasm.maxMemoryPages", "8 pages", id="initial-memory-over-max"),
]


@pytest.mark.parametrize(("fixture", "raw", "overrides", "field", "text"), LOAD_REFUSALS)
async def test_load_refuses(
    runtime: RuntimeFactory, make_plugin: PluginFactory, fixture: str | None, raw: bytes | None,
    overrides: dict[str, Any], field: str, text: str,
) -> None:
    folder = make_plugin(fixture, name="refused", wasm_bytes=raw, **overrides)
    async with runtime() as rt:
        with pytest.raises(ManifestError) as caught:
            await rt.load(folder)
        assert caught.value.field == field
        assert text in str(caught.value)
        assert "refused" not in rt.plugins
        # the runtime is still usable afterwards
        await rt.load(make_plugin("echo_cortex_alloc", name="echo"))
        assert await rt.call("echo", "echo", [1]) == [1]


async def test_matching_sha256_loads(runtime: RuntimeFactory, make_plugin: PluginFactory) -> None:
    digest = hashlib.sha256(wat_bytes("echo_cortex_alloc")).hexdigest()
    async with runtime() as rt:
        info = await rt.load(make_plugin("echo_cortex_alloc", name="echo", sha256=digest))
        assert info.sha256 == digest
        assert await rt.call("echo", "echo", "ok") == "ok"


# -- which exports are capabilities -----------------------------------------------------------


async def test_capabilities_default_to_every_matching_unreserved_export(
    runtime: RuntimeFactory, make_plugin: PluginFactory
) -> None:
    """Reserved names, `__*`, `cortex_*` and other signatures are not capabilities."""
    async with runtime() as rt:
        info = await rt.load(make_plugin("many_exports"))
        assert sorted(info.capabilities) == ["alpha", "beta"]
        assert await rt.call("many-exports", "alpha", {}) == "alpha"
        assert await rt.call("many-exports", "beta", {}) == "beta"
        for name in ("realloc", "calloc", "cortex_free", "cortex_helper", "__internal",
                     "one_param", "no_result", "_initialize", "malloc"):
            with pytest.raises(CapabilityNotFound):
                await rt.call("many-exports", name, {})


async def test_declared_capabilities_are_exactly_those(
    runtime: RuntimeFactory, make_plugin: PluginFactory
) -> None:
    async with runtime() as rt:
        info = await rt.load(make_plugin("many_exports", capabilities={"beta": {}}))
        assert info.capabilities == ("beta",)
        assert await rt.call("many-exports", "beta", {}) == "beta"
        with pytest.raises(CapabilityNotFound):
            await rt.call("many-exports", "alpha", {})


# -- the example plugin follows the ABI -------------------------------------------------------


def simple_hash(data: bytes) -> int:
    acc = 0
    for byte in data:
        acc = (acc * 31 + byte) & 0xFFFFFFFFFFFFFFFF
    return acc


async def test_example_text_processor(runtime: RuntimeFactory, text_processor: Path) -> None:
    async with runtime() as rt:
        info = await rt.load(text_processor)
        assert info.capabilities == ("transform",)
        assert info.allocator_export == "malloc"
        out = await rt.call("text-processor", "transform", {"text": "hello", "mode": "reverse"})
        assert out == {"result": "olleh", "length": 5, "hash": 105835282}
        text = "héllo 😀"
        out = await rt.call("text-processor", "transform", {"mode": "reverse", "text": text})
        expected = "😀 olléh"
        assert out == {"result": expected, "length": len(expected.encode()),
                       "hash": simple_hash(expected.encode())}
        with pytest.raises(PluginError, match='"mode" must be a string'):
            await rt.call("text-processor", "transform", {"text": "x", "mode": 3})


async def test_call_json_input_reaches_the_guest_byte_for_byte(
    runtime: RuntimeFactory, make_plugin: PluginFactory
) -> None:
    raw = '{ "a" : "\\u00e9\\ud83d\\ude00" ,\n "a": [1,  2] }'
    async with runtime() as rt:
        await rt.load(make_plugin("input_length"))
        assert await rt.call_json("input-length", "length", raw) == len(raw.encode())
        assert await rt.call_json("input-length", "length", raw.encode()) == len(raw.encode())
        # call() serialises compactly with orjson (raw UTF-8, no spaces)
        assert await rt.call("input-length", "length", {"a": "é"}) == len('{"a":"é"}'.encode())
        assert await rt.call("input-length", "length", 12345) == 5
