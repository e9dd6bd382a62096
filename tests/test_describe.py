"""The module description read straight from Wasmtime's C API (sandbox/describe.py) says exactly
what wasmtime-py's own wrappers say, on every module we have and on generated ones: a worker calls
capability exports unchecked by the index and signature it reads there. Every test runs twice:
through the native library's one call (``cortex_describe``) and through the Python steps."""

from __future__ import annotations

import ctypes
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import wasmtime
from hypothesis import given, settings
from hypothesis import strategies as st

import sandbox.guest as guest_module
from sandbox.describe import module_exports, module_imports
from sandbox.engine import describe_module, make_engine
from sandbox.wasmbin import v128_in_interface

ROOT = Path(__file__).resolve().parent.parent
ENGINE = make_engine()
# No v128 (the C API cannot describe it: such modules are refused before describing, see wasmbin).
VALTYPES = ["i32", "i64", "f32", "f64", "funcref", "externref"]


def _reference_type(ty: Any, *, memory_details: bool) -> dict[str, Any]:
    """What wasmtime-py's type wrappers say about one extern type, in describe's shape."""
    if isinstance(ty, wasmtime.FuncType):
        return {"kind": "func", "params": [str(t) for t in ty.params],
                "results": [str(t) for t in ty.results]}
    if isinstance(ty, wasmtime.MemoryType):
        if not memory_details:
            return {"kind": "memory"}
        return {"kind": "memory", "min_pages": ty.limits.min, "max_pages": ty.limits.max,
                "memory64": ty.is_64, "shared": ty.is_shared}
    if isinstance(ty, wasmtime.TableType):
        return {"kind": "table"}
    assert isinstance(ty, wasmtime.GlobalType)
    return {"kind": "global"}


def reference_exports(module: wasmtime.Module) -> list[dict[str, Any]]:
    """What wasmtime-py's ``Module.exports`` wrappers say, in describe's shape."""
    return [{"name": export.name, **_reference_type(export.type, memory_details=True)}
            for export in module.exports]


def reference_imports(module: wasmtime.Module) -> list[dict[str, Any]]:
    return [{"module": imp.module, "name": imp.name,
             **_reference_type(imp.type, memory_details=False)} for imp in module.imports]


def _describable_modules() -> list[tuple[str, wasmtime.Module]]:
    """Every adversarial case, conformance plugin and example that compiles and that a worker
    would describe (no v128 in its interface)."""
    sources = [*sorted((ROOT / "conformance" / "adversarial").glob("*.wat")),
               *sorted((ROOT / "conformance" / "plugins").glob("*/plugin.wasm")),
               *sorted((ROOT / "examples").rglob("*.wasm"))]
    modules = []
    for path in sources:
        try:
            wasm = bytes(wasmtime.wat2wasm(path.read_text())) if path.suffix == ".wat" \
                else path.read_bytes()
            module = wasmtime.Module(ENGINE, wasm)
        except (wasmtime.WasmtimeError, UnicodeDecodeError):
            continue
        if v128_in_interface(wasm) is None:
            modules.append((str(path.relative_to(ROOT)), module))
    return modules


MODULES = _describable_modules()


@pytest.fixture(autouse=True, params=["native", "steps"])
def path(request: pytest.FixtureRequest) -> Iterator[str]:
    """Each test through the native library's walk, then through the Python steps."""
    saved = guest_module.native
    guest_module.native = request.param == "native"
    try:
        yield request.param
    finally:
        guest_module.native = saved


def test_the_native_walk_is_taken(path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without this, the native runs could be the Python steps again."""
    assert guest_module._native is not None, "run scripts/build-native"
    called = []
    real = guest_module.describe_natively

    def counting(module: int, *, imports: bool) -> bytes | None:
        result = real(module, imports=imports)
        called.append(result is not None)
        return result

    monkeypatch.setattr("sandbox.describe.describe_natively", counting)
    module = wasmtime.Module(ENGINE, bytes(wasmtime.wat2wasm('(module (memory (export "m") 1))')))
    assert module_exports(module) == reference_exports(module)
    assert called == [path == "native"]


def test_names_that_need_escaping_and_long_ones(path: str) -> None:
    """Quotes, backslashes, control characters and DEL in names, and a description longer than
    the native walk's first buffer (it asks again with room enough)."""
    names = ['a\\"b', "c\\\\d", "e\\0af\\09\\00", "\\7f", "x" * 5000]
    wat = '(module (import "q\\"m" "n\\0a" (func)) ' + " ".join(
        f'(func (export "{name}") (param i32 i32) (result i32) (i32.const 0))' for name in names
    ) + ' (memory (export "memory") 1))'
    module = wasmtime.Module(ENGINE, bytes(wasmtime.wat2wasm(wat)))
    exports = module_exports(module)
    assert exports == reference_exports(module)
    assert [e["name"] for e in exports][:4] == ['a"b', "c\\d", "e\nf\t\x00", "\x7f"]
    assert module_imports(module) == reference_imports(module) == [
        {"module": 'q"m', "name": "n\n", "kind": "func", "params": [], "results": []}]
    if path == "native":  # its own text, not the steps' answer it would fall back to
        address = ctypes.cast(module.ptr(), ctypes.c_void_p).value or 0
        for imports, reference in ((False, reference_exports), (True, reference_imports)):
            text = guest_module.describe_natively(address, imports=imports)
            assert text is not None and orjson.loads(text) == reference(module)


def test_the_corpus_is_there() -> None:
    # The adversarial corpus alone has ~100 compiling cases (guest plugins join once built).
    assert len(MODULES) >= 80


def test_matches_wasmtime_py_on_the_example_plugin(text_processor: Path) -> None:
    # A real C plugin, built for the session.
    module = wasmtime.Module(ENGINE, (text_processor / "text_processor.wasm").read_bytes())
    assert module_exports(module) == reference_exports(module)
    assert module_imports(module) == reference_imports(module)
    assert describe_module(module)["capabilities"]


@pytest.mark.parametrize("name,module", MODULES, ids=[name for name, _ in MODULES])
def test_matches_wasmtime_py_on_the_corpus(name: str, module: wasmtime.Module) -> None:
    assert module_exports(module) == reference_exports(module)
    assert module_imports(module) == reference_imports(module)


def test_memory_limits_and_flags() -> None:
    wat = """(module
      (import "env" "m" (memory 1 2))
      (memory (export "bounded") 3 7)
      (memory (export "open") 0)
      (memory (export "wide") i64 1 9)
      (memory (export "shared") 1 4 shared))"""
    config = wasmtime.Config()  # the runtime's engine refuses these; the description must not care
    config.wasm_multi_memory = True
    config.wasm_memory64 = True
    config.wasm_threads = True
    module = wasmtime.Module(wasmtime.Engine(config), bytes(wasmtime.wat2wasm(wat)))
    memories = {e["name"]: e for e in module_exports(module)}
    assert memories["bounded"] == {"name": "bounded", "kind": "memory", "min_pages": 3,
                                   "max_pages": 7, "memory64": False, "shared": False}
    assert memories["open"]["max_pages"] is None
    assert memories["wide"]["memory64"] is True and memories["wide"]["max_pages"] == 9
    assert memories["shared"]["shared"] is True
    assert module_imports(module) == [{"module": "env", "name": "m", "kind": "memory"}]
    assert module_exports(module) == reference_exports(module)


def test_names_are_utf8() -> None:
    wat = ('(module (func (export "größe") (param i32 i32) (result i32) (i32.const 0))'
           ' (memory (export "memory") 1))')
    module = wasmtime.Module(ENGINE, bytes(wasmtime.wat2wasm(wat)))
    facts = describe_module(module)
    assert facts["capabilities"] == ["größe"]
    assert module_exports(module) == reference_exports(module)


def _module(exports: list[tuple[list[str], list[str]]], imports: list[tuple[list[str], list[str]]]) -> str:
    def sig(params: list[str], results: list[str]) -> str:
        return (f"(param {' '.join(params)})" if params else "") + (
            f" (result {' '.join(results)})" if results else "")

    def zero(t: str) -> str:
        return f"({t}.const 0)" if t in ("i32", "i64", "f32", "f64") else f"(ref.null {t[:-3]})"

    parts = [f'(import "m{i}" "f{i}" (func {sig(p, r)}))' for i, (p, r) in enumerate(imports)]
    parts += ['(import "env" "g" (global i32))', '(import "env" "t" (table 1 funcref))']
    for i, (p, r) in enumerate(exports):
        parts.append(f'(func (export "e{i}") {sig(p, r)} {" ".join(zero(t) for t in r)})')
    parts += ['(memory (export "memory") 1)', '(global (export "gx") (mut i64) (i64.const 0))',
              '(table (export "tx") 2 externref)']
    return "(module " + " ".join(parts) + ")"


SIGNATURES = st.tuples(st.lists(st.sampled_from(VALTYPES), max_size=5),
                       st.lists(st.sampled_from(VALTYPES), max_size=3))


@settings(max_examples=60, deadline=None)
@given(exports=st.lists(SIGNATURES, max_size=6), imports=st.lists(SIGNATURES, max_size=4))
def test_matches_wasmtime_py_on_generated_modules(
        exports: list[tuple[list[str], list[str]]], imports: list[tuple[list[str], list[str]]]) -> None:
    module = wasmtime.Module(ENGINE, bytes(wasmtime.wat2wasm(_module(exports, imports))))
    assert module_exports(module) == reference_exports(module)
    assert module_imports(module) == reference_imports(module)


def test_describing_frees_what_the_c_api_allocated(text_processor: Path) -> None:
    # Each description allocates the export and import vectors in C (a few KiB for this
    # module): 20,000 of them unfreed would be tens of MB.
    import psutil

    module = wasmtime.Module(ENGINE, (text_processor / "text_processor.wasm").read_bytes())
    process = psutil.Process()
    for _ in range(1000):
        describe_module(module)
    before = process.memory_info().rss
    for _ in range(20_000):
        describe_module(module)
    assert process.memory_info().rss - before < 4 * 1024 * 1024
