"""A module's exports and imports, read straight from Wasmtime's C API.

wasmtime-py's ``Module.exports`` wraps every export type, function type and value type in a
Python object with a finaliser: describing the benchmark plugin's 7 exports took ~80 µs, a third
of a cached plugin's load in a worker. Where the native library is built, one foreign call walks
them in C and hands back JSON (``_natively``); otherwise this walks the same C vectors through
foreign functions of its own, declared on plain addresses (no pointer-type checks) and keeping
the GIL (each call is a few instructions; releasing and retaking the GIL around it cost more, and
invited the epoch ticker's thread in), and frees each vector once. ``tests/test_describe.py``
holds both to wasmtime-py's answer on every module of the conformance corpus and on generated
ones.

Callers must have refused modules with ``v128`` in an exported or imported signature first:
the C API cannot express that type and aborts the process (``sandbox/wasmbin.py``).
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from typing import Any

import orjson
import wasmtime
from wasmtime import _ffi as ffi

from .guest import describe_natively

_P = ctypes.c_void_p
_VALTYPE_NAMES = {0: "i32", 1: "i64", 2: "f32", 3: "f64", 128: "anyref", 129: "funcref"}
# wasm.h's wasm_externkind_enum (the generated Python enum in wasmtime._bindings counts from 1).
_FUNC, _GLOBAL, _TABLE, _MEMORY = 0, 1, 2, 3


def _c(name: str, restype: Any, *argtypes: Any) -> Callable[..., Any]:
    """A new foreign function for ``name`` (the library's cached one belongs to wasmtime-py)."""
    return ctypes.PYFUNCTYPE(restype, *argtypes)((name, ffi.dll))


class _Vec(ctypes.Structure):
    """wasm.h's ``wasm_*_vec_t`` of pointers (and, read as bytes, ``wasm_name_t``)."""

    _fields_ = [("size", ctypes.c_size_t), ("data", ctypes.POINTER(_P))]


_VecPtr = ctypes.POINTER(_Vec)
_module_exports = _c("wasmtime_module_exports", None, _P, _VecPtr)
_module_imports = _c("wasmtime_module_imports", None, _P, _VecPtr)
_exports_delete = _c("wasm_exporttype_vec_delete", None, _VecPtr)
_imports_delete = _c("wasm_importtype_vec_delete", None, _VecPtr)
_export_name = _c("wasm_exporttype_name", _VecPtr, _P)
_export_type = _c("wasm_exporttype_type", _P, _P)
_import_module = _c("wasm_importtype_module", _VecPtr, _P)
_import_name = _c("wasm_importtype_name", _VecPtr, _P)
_import_type = _c("wasm_importtype_type", _P, _P)
_extern_kind = _c("wasm_externtype_kind", ctypes.c_uint8, _P)
_as_functype = _c("wasm_externtype_as_functype_const", _P, _P)
_as_memorytype = _c("wasm_externtype_as_memorytype_const", _P, _P)
_params = _c("wasm_functype_params", _VecPtr, _P)
_results = _c("wasm_functype_results", _VecPtr, _P)
_valtype_kind = _c("wasm_valtype_kind", ctypes.c_uint8, _P)
_memory_minimum = _c("wasmtime_memorytype_minimum", ctypes.c_uint64, _P)
_memory_maximum = _c("wasmtime_memorytype_maximum", ctypes.c_bool, _P,
                     ctypes.POINTER(ctypes.c_uint64))
_memory_is64 = _c("wasmtime_memorytype_is64", ctypes.c_bool, _P)
_memory_shared = _c("wasmtime_memorytype_isshared", ctypes.c_bool, _P)


def _module_address(module: wasmtime.Module) -> int:
    return ctypes.cast(module.ptr(), _P).value or 0


def module_exports(module: wasmtime.Module) -> list[dict[str, Any]]:
    """Each export as ``{"name", "kind", ...}``: a function's ``params`` and ``results``, a
    memory's ``min_pages``, ``max_pages`` (None: unbounded), ``memory64`` and ``shared``."""
    described = _natively(module, imports=False)
    if described is not None:
        return described
    vec = _Vec()
    _module_exports(_module_address(module), ctypes.byref(vec))
    try:
        exports = []
        for i in range(vec.size):
            item = vec.data[i]
            entry: dict[str, Any] = {"name": _name(_export_name(item))}
            entry.update(_extern(_export_type(item), memory_details=True))
            exports.append(entry)
        return exports
    finally:
        _exports_delete(ctypes.byref(vec))


def module_imports(module: wasmtime.Module) -> list[dict[str, Any]]:
    """Each import as ``{"module", "name", "kind"}``, with a function's ``params`` and ``results``."""
    described = _natively(module, imports=True)
    if described is not None:
        return described
    vec = _Vec()
    _module_imports(_module_address(module), ctypes.byref(vec))
    try:
        imports = []
        for i in range(vec.size):
            item = vec.data[i]
            entry: dict[str, Any] = {"module": _name(_import_module(item)),
                                     "name": _name(_import_name(item))}
            entry.update(_extern(_import_type(item), memory_details=False))
            imports.append(entry)
        return imports
    finally:
        _imports_delete(ctypes.byref(vec))


def _natively(module: wasmtime.Module, *, imports: bool) -> list[dict[str, Any]] | None:
    """The same walk in C (``cortex_describe``, sandbox/native/guest_native.c): one foreign call
    and one JSON parse instead of ~10 foreign calls an export (the benchmark plugin's whole
    description 47 -> 13 µs). None where the library is not built, or if its text will not
    parse (which valid UTF-8 names rule out): the steps below are the reference, and
    ``tests/test_describe.py`` runs every case through both."""
    text = describe_natively(_module_address(module), imports=imports)
    if text is None:
        return None
    try:
        described: list[dict[str, Any]] = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    return described


def _name(name: Any) -> str:
    vec = name.contents
    return ctypes.string_at(ctypes.cast(vec.data, _P), vec.size).decode("utf-8")


def _valtypes(vec: Any) -> list[str]:
    items = vec.contents
    data = items.data
    return [_VALTYPE_NAMES.get(kind, f"ValType({kind})")
            for kind in (_valtype_kind(data[i]) for i in range(items.size))]


def _extern(ty: int, *, memory_details: bool) -> dict[str, Any]:
    kind = _extern_kind(ty)
    if kind == _FUNC:
        func = _as_functype(ty)
        return {"kind": "func", "params": _valtypes(_params(func)),
                "results": _valtypes(_results(func))}
    if kind == _MEMORY:
        if not memory_details:
            return {"kind": "memory"}
        memory = _as_memorytype(ty)
        maximum = ctypes.c_uint64(0)
        bounded = _memory_maximum(memory, ctypes.byref(maximum))
        return {"kind": "memory", "min_pages": _memory_minimum(memory),
                "max_pages": maximum.value if bounded else None,
                "memory64": _memory_is64(memory), "shared": _memory_shared(memory)}
    if kind == _TABLE:
        return {"kind": "table"}
    if kind == _GLOBAL:
        return {"kind": "global"}
    return {"kind": f"extern({kind})"}
