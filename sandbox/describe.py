"""A module's exports and imports, read straight from Wasmtime's C API.

wasmtime-py's ``Module.exports`` wraps every export type, function type and value type in a
Python object with a finaliser: describing a 7-export module took ~80 µs, a quarter of a cached
plugin's load in a worker. This walks the same C vectors with the raw bindings and frees them
once (~4x faster). ``tests/test_describe.py`` holds it to wasmtime-py's answer on every module
of the conformance corpus and on generated ones.

Callers must have refused modules with ``v128`` in an exported or imported signature first:
the C API cannot express that type and aborts the process (``sandbox/wasmbin.py``).
"""

from __future__ import annotations

import ctypes
from typing import Any, cast

import wasmtime
from wasmtime import _ffi as ffi

_VALTYPE_NAMES = {
    ffi.WASM_I32.value: "i32", ffi.WASM_I64.value: "i64", ffi.WASM_F32.value: "f32",
    ffi.WASM_F64.value: "f64", ffi.WASM_ANYREF.value: "anyref", ffi.WASM_FUNCREF.value: "funcref",
}
# wasm.h's wasm_externkind_enum (the generated Python enum in wasmtime._bindings counts from 1).
_FUNC, _GLOBAL, _TABLE, _MEMORY = 0, 1, 2, 3


def module_exports(module: wasmtime.Module) -> list[dict[str, Any]]:
    """Each export as ``{"name", "kind", ...}``: a function's ``params`` and ``results``, a
    memory's ``min_pages``, ``max_pages`` (None: unbounded), ``memory64`` and ``shared``."""
    vec = ffi.wasm_exporttype_vec_t()
    ffi.wasmtime_module_exports(module.ptr(), ctypes.byref(vec))
    try:
        exports = []
        for i in range(vec.size):
            item = vec.data[i]
            entry: dict[str, Any] = {"name": _name(ffi.wasm_exporttype_name(item))}
            entry.update(_extern(ffi.wasm_exporttype_type(item), memory_details=True))
            exports.append(entry)
        return exports
    finally:
        ffi.wasm_exporttype_vec_delete(ctypes.byref(vec))


def module_imports(module: wasmtime.Module) -> list[dict[str, Any]]:
    """Each import as ``{"module", "name", "kind"}``, with a function's ``params`` and ``results``."""
    vec = ffi.wasm_importtype_vec_t()
    ffi.wasmtime_module_imports(module.ptr(), ctypes.byref(vec))
    try:
        imports = []
        for i in range(vec.size):
            item = vec.data[i]
            entry: dict[str, Any] = {"module": _name(ffi.wasm_importtype_module(item)),
                                     "name": _name(ffi.wasm_importtype_name(item))}
            entry.update(_extern(ffi.wasm_importtype_type(item), memory_details=False))
            imports.append(entry)
        return imports
    finally:
        ffi.wasm_importtype_vec_delete(ctypes.byref(vec))


def _name(name: Any) -> str:
    vec = name.contents
    return ctypes.string_at(vec.data, vec.size).decode("utf-8")


def _valtypes(vec: Any) -> list[str]:
    items = vec.contents
    kinds = (cast(int, ffi.wasm_valtype_kind(items.data[i])) for i in range(items.size))
    return [_VALTYPE_NAMES.get(kind, f"ValType({kind})") for kind in kinds]


def _extern(ty: Any, *, memory_details: bool) -> dict[str, Any]:
    kind = cast(int, ffi.wasm_externtype_kind(ty))  # ctypes returns c_uint8 results as int
    if kind == _FUNC:
        func = ffi.wasm_externtype_as_functype_const(ty)
        return {"kind": "func", "params": _valtypes(ffi.wasm_functype_params(func)),
                "results": _valtypes(ffi.wasm_functype_results(func))}
    if kind == _MEMORY:
        if not memory_details:
            return {"kind": "memory"}
        memory = ffi.wasm_externtype_as_memorytype_const(ty)
        maximum = ctypes.c_uint64(0)
        bounded = ffi.wasmtime_memorytype_maximum(memory, ctypes.byref(maximum))
        return {"kind": "memory", "min_pages": ffi.wasmtime_memorytype_minimum(memory),
                "max_pages": maximum.value if bounded else None,
                "memory64": bool(ffi.wasmtime_memorytype_is64(memory)),
                "shared": bool(ffi.wasmtime_memorytype_isshared(memory))}
    if kind == _TABLE:
        return {"kind": "table"}
    if kind == _GLOBAL:
        return {"kind": "global"}
    return {"kind": f"extern({kind})"}
