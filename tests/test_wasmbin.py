"""The reader that finds v128 in a module's interface (sandbox/wasmbin.py) before Wasmtime's C API
is asked to describe it (which aborts the process)."""

from __future__ import annotations

from pathlib import Path

import wasmtime
from hypothesis import given, settings
from hypothesis import strategies as st

from sandbox.wasmbin import v128_in_interface

ROOT = Path(__file__).resolve().parent.parent
VALTYPES = ["i32", "i64", "f32", "f64", "v128", "funcref", "externref"]


def _module(params: list[str], results: list[str], *, exported: bool, imported: bool) -> bytes:
    sig = (f"(param {' '.join(params)})" if params else "") + (
        f" (result {' '.join(results)})" if results else "")
    parts = ['(memory (export "memory") 1)', '(table 1 funcref)', '(global (export "g") i32 (i32.const 0))']
    if imported:  # the function, with imports of every other kind before it
        parts[:0] = ['(import "env" "t" (table 1 5 externref))', '(import "env" "gl" (global (mut i64)))',
                     f'(import "env" "f" (func {sig}))']
    body = " ".join(f"({r}.const 0)" if r in ("i32", "i64", "f32", "f64") else
                    "(v128.const i64x2 0 0)" if r == "v128" else f"(ref.null {r[:-3]})"
                    for r in results)
    parts.append(f'(func $inner {sig} {body})')
    if exported:
        parts.append('(export "f_out" (func $inner))')
    return bytes(wasmtime.wat2wasm("(module " + " ".join(parts) + ")"))


@settings(max_examples=60, deadline=None)
@given(params=st.lists(st.sampled_from(VALTYPES), max_size=4),
       results=st.lists(st.sampled_from(VALTYPES), max_size=3),
       exported=st.booleans(), imported=st.booleans())
def test_v128_is_found_exactly_when_the_interface_has_it(
        params: list[str], results: list[str], exported: bool, imported: bool) -> None:
    wasm = _module(params, results, exported=exported, imported=imported)
    has_v128 = "v128" in params + results
    found = v128_in_interface(wasm)
    if has_v128 and imported:
        assert found == "the import 'env.f'"
    elif has_v128 and exported:
        assert found == "the export 'f_out'"
    else:
        assert found is None  # SIMD inside, or no v128 at all


def test_real_plugins_have_no_v128_interface(text_processor: Path) -> None:
    # The example (built before the tests run) and every conformance plugin already built.
    wasms = [*text_processor.glob("*.wasm"), *(ROOT / "conformance" / "plugins").glob("*/plugin.wasm")]
    assert wasms
    for path in wasms:
        assert v128_in_interface(path.read_bytes()) is None, path
