"""A module with little data copies it into each new instance's memory; one with more maps a
copy-on-write image of it (``sandbox.engine.MemoryInit``). Either way every call starts from the
module's pristine memory, runs to its deadline, and loads back from the compiled cache."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import orjson
import pytest
import wasmtime
from support import write_plugin

from cortex_runtime import Runtime
from cortex_runtime.errors import CallTimeout
from sandbox.engine import COPY_MAX_DATA_BYTES, MEMORY_INITS, memory_init_for
from sandbox.execute import CallFailed, Executor
from sandbox.framing import ATTACHMENT
from sandbox.wasmbin import data_section_bytes

#: ``read`` returns the string in the data segment at 1024; ``probe`` returns "clean" if the
#: memory it sees is as the module left it (a byte in that segment, a byte past all data) and
#: "dirty" otherwise, then writes both bytes: the next call must see them pristine again.
DATA_WAT = r"""
(module
  (memory (export "memory") 2)
  (data (i32.const 16) "\07\00\00\00\22clean\22")
  (data (i32.const 32) "\07\00\00\00\22dirty\22")
  (data (i32.const 1024) "LENGTH\22TEXT\22")
  (func (export "cortex_alloc") (param i32) (result i32) (i32.const 90000))
  (func (export "read") (param i32 i32) (result i32) (i32.const 1024))
  (func (export "probe") (param i32 i32) (result i32)
    (local $result i32)
    (local.set $result
      (select (i32.const 16) (i32.const 32)
        (i32.and (i32.eqz (i32.load8_u (i32.const 70000)))
                 (i32.eq (i32.load8_u (i32.const 1029)) (i32.const 97)))))
    (i32.store8 (i32.const 70000) (i32.const 1))
    (i32.store8 (i32.const 1029) (i32.const 98))
    (local.get $result))
  (func (export "spin") (param i32 i32) (result i32)
    (loop $forever (br $forever))
    (i32.const 0)))
"""

SMALL_TEXT = 100
LARGE_TEXT = 3 * COPY_MAX_DATA_BYTES
LIMITS: dict[str, Any] = {"fuel": 10**9, "timeout_ms": 5000.0, "min_pages": 2, "max_pages": 4,
                          "allocator": "cortex_alloc", "max_output": 100_000, "max_log": 4096}


def data_wat(text_length: int) -> str:
    length = (text_length + 2).to_bytes(4, "little")
    return (DATA_WAT.replace("LENGTH", "".join(f"\\{b:02x}" for b in length))
            .replace("TEXT", "a" * text_length))


def _output(fields: dict[str, Any]) -> Any:
    """A successful call's decoded result (a large one travels as the reply's attachment)."""
    if ATTACHMENT in fields:
        return orjson.loads(bytes(fields[ATTACHMENT]))
    return orjson.loads(orjson.dumps(fields["result"]))


def _write(tmp_path: Path, name: str, text_length: int) -> tuple[Path, str]:
    path = tmp_path / f"{name}.wasm"
    path.write_bytes(wasmtime.wat2wasm(data_wat(text_length)))
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_data_section_size_picks_the_memory_init() -> None:
    small = wasmtime.wat2wasm(data_wat(SMALL_TEXT))
    large = wasmtime.wat2wasm(data_wat(LARGE_TEXT))
    assert SMALL_TEXT < data_section_bytes(small) < SMALL_TEXT + 64
    assert LARGE_TEXT < data_section_bytes(large) < LARGE_TEXT + 64
    assert memory_init_for(small) == "copy"
    assert memory_init_for(large) == "image"
    assert data_section_bytes(wasmtime.wat2wasm("(module)")) == 0
    assert memory_init_for(wasmtime.wat2wasm("(module)")) == "copy"
    # exactly at the limit still copies; one byte more maps an image
    at_limit = wasmtime.wat2wasm(data_wat(COPY_MAX_DATA_BYTES - 64))
    grow = COPY_MAX_DATA_BYTES - data_section_bytes(at_limit)
    assert memory_init_for(wasmtime.wat2wasm(data_wat(COPY_MAX_DATA_BYTES - 64 + grow))) == "copy"
    assert memory_init_for(wasmtime.wat2wasm(data_wat(COPY_MAX_DATA_BYTES - 63 + grow))) == "image"


@pytest.mark.parametrize("sections", [bytes([11, 50]) + b"x" * 10, bytes([11, 0x80])],
                         ids=["past-the-end", "size-cut-short"])
def test_a_binary_it_cannot_read_maps_an_image(sections: bytes) -> None:
    wasm = b"\0asm\1\0\0\0" + sections
    with pytest.raises(ValueError, match="truncated"):
        data_section_bytes(wasm)
    assert memory_init_for(wasm) == "image"


@pytest.fixture(scope="module")
def executor() -> Executor:
    return Executor(prepared_plugins=1)


@pytest.mark.parametrize(("text_length", "expected"), [(SMALL_TEXT, "copy"), (LARGE_TEXT, "image")])
@pytest.mark.parametrize("prepared", [False, True])
def test_every_call_sees_the_module_data_and_nothing_of_the_last_call(
        executor: Executor, tmp_path: Path, text_length: int, expected: str, prepared: bool) -> None:
    path, digest = _write(tmp_path, "data", text_length)
    plugin = executor.load(str(path), digest)
    assert plugin.memory_init == expected and plugin.facts["memory_init"] == expected
    for _ in range(3):
        if prepared:
            executor.prepare(plugin, **{k: LIMITS[k] for k in
                                        ("fuel", "timeout_ms", "min_pages", "max_pages", "max_log")})
        fields, _ = executor.call(plugin, "read", b"{}", **LIMITS)
        assert _output(fields) == "a" * text_length
        executor.release()
        fields, _ = executor.call(plugin, "probe", b"{}", **LIMITS)
        assert _output(fields) == "clean"
        executor.release()


@pytest.mark.parametrize("text_length", [SMALL_TEXT, LARGE_TEXT])
def test_the_epoch_deadline_stops_a_loop_in_either_engine(
        executor: Executor, tmp_path: Path, text_length: int) -> None:
    path, digest = _write(tmp_path, "spin", text_length)
    plugin = executor.load(str(path), digest)
    with pytest.raises(CallFailed) as failed:
        executor.call(plugin, "spin", b"{}", **{**LIMITS, "timeout_ms": 50.0})
    executor.release()
    assert failed.value.kind == "timeout"


@pytest.mark.parametrize("text_length", [SMALL_TEXT, LARGE_TEXT])
@pytest.mark.parametrize("hint", [None, *MEMORY_INITS])
def test_an_artifact_loads_into_its_engine_whatever_the_hint(
        executor: Executor, tmp_path: Path, text_length: int, hint: str | None) -> None:
    path, digest = _write(tmp_path, "cached", text_length)
    compiled = executor.load(str(path), digest)
    artifact = tmp_path / "cached.cwasm"
    artifact.write_bytes(compiled.module.serialize())
    loaded = executor.load(str(path), digest, str(artifact), hint)
    assert loaded.facts["cache"] == "hit"
    assert loaded.memory_init == compiled.memory_init == memory_init_for(path.read_bytes())
    fields, _ = executor.call(loaded, "read", b"{}", **LIMITS)
    assert _output(fields) == "a" * text_length
    executor.release()


@pytest.mark.anyio
async def test_plugins_of_both_kinds_run_side_by_side_and_load_from_the_cache(
        tmp_path: Path) -> None:
    folders = {kind: write_plugin(tmp_path, f"data-{kind}", data_wat(length),
                                  wasm={"allocator": "custom", "memoryPages": 2})
               for kind, length in (("copy", SMALL_TEXT), ("image", LARGE_TEXT))}
    for attempt in ("miss", "hit"):  # the second runtime finds both in the compiled cache
        async with Runtime(workers=1, spare_workers=0, cache_dir=tmp_path / "cache") as rt:
            infos = {kind: await rt.load(folder) for kind, folder in folders.items()}
            for kind, info in infos.items():
                assert info.facts["memory_init"] == kind and info.facts["cache"] == attempt
            for _ in range(3):
                for kind, info in infos.items():
                    length = SMALL_TEXT if kind == "copy" else LARGE_TEXT
                    assert await rt.call(info.name, "read", {}) == "a" * length
                    assert await rt.call(info.name, "probe", {}) == "clean"
            with pytest.raises(CallTimeout):
                await rt.call(infos["image"].name, "spin", {}, timeout=0.05)
            assert await rt.call(infos["image"].name, "probe", {}) == "clean"
