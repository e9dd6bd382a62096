"""The worker's Wasmtime engine and plugin loading.

One engine per worker process. A module is either compiled from its wasm, or deserialised from a
compiled artifact that the *supervisor* vouches for: the supervisor owns the on-disk cache, checks
each artifact's HMAC with a key workers cannot read, and writes new artifacts that workers send back
after compiling (workers can write no file at all). See ``cortex_runtime/artifacts.py``.
"""

from __future__ import annotations

import importlib
import os
import platform
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import wasmtime
from wasmtime import _ffi as ffi

from .describe import module_exports, module_imports
from .guest import address_of
from .wasmbin import data_section_bytes, v128_in_interface


def installed_version(package: str, location: str) -> str:
    """The version of the distribution installed as ``package`` from ``location`` (its import
    folder), read off the name of the ``<name>-<version>.dist-info`` folder beside it, as pip
    installs it; importlib.metadata only where there is no single such folder. Importing
    importlib.metadata brings email, zipfile, csv and tempfile along: ~4 MB of every worker's RSS
    and ~18 ms of its start, for one string."""
    prefix = f"{package}-"
    try:
        found = [entry.name[len(prefix):-len(".dist-info")] for entry in os.scandir(location)
                 if entry.name.startswith(prefix) and entry.name.endswith(".dist-info")]
    except OSError:
        found = []
    if len(found) == 1:
        return found[0]
    from importlib.metadata import version

    return version(package)


class _Digest(Protocol):
    def hexdigest(self) -> str: ...


def _sha256_constructor() -> Callable[[bytes], _Digest]:
    # CPython's own SHA-256 (_sha2 from 3.12, _sha256 before) rather than hashlib's: importing
    # hashlib loads OpenSSL's libcrypto, 3.4 MB resident in every worker, to hash a module of a
    # few kilobytes per load (~3 ms per MB, against ~0.5 ms with OpenSSL).
    for name in ("_sha2", "_sha256"):
        try:
            constructor: Callable[[bytes], _Digest] = importlib.import_module(name).sha256
        except (ImportError, AttributeError):
            continue
        return constructor
    import hashlib

    return hashlib.sha256


_sha256 = _sha256_constructor()


def sha256_hex(data: bytes) -> str:
    """SHA-256 of ``data`` in hex, without importing hashlib (see ``_sha256_constructor``)."""
    return _sha256(data).hexdigest()


WASMTIME_VERSION = installed_version("wasmtime", os.path.dirname(os.path.dirname(wasmtime.__file__)))
WASM_MAGIC = b"\x00asm\x01\x00\x00\x00"
WASI_MODULE = "wasi_snapshot_preview1"
CORTEX_MODULE = "cortex"
#: Exports that are never capabilities even when their signature matches.
RESERVED_EXPORTS = frozenset(
    {"malloc", "free", "calloc", "realloc", "cortex_alloc", "cortex_free", "_initialize", "_start"}
)
MAX_WASM_STACK = 512 * 1024
#: Per-instance caps, enforced by both the store limits and the pooling allocator's slot sizes.
MAX_TABLES = 4
MAX_TABLE_ELEMENTS = 100_000
_CACHE_MAGIC = b"CRTXCW01"


class LoadError(Exception):
    """The wasm file cannot become a plugin; ``field`` says which manifest field it concerns."""

    def __init__(self, message: str, *, field: str = "entryPoint") -> None:
        super().__init__(message)
        self.field = field


def engine_settings() -> dict[str, Any]:
    """Every engine setting that affects compiled code: part of the cache key."""
    return {
        "wasmtime": WASMTIME_VERSION,
        "arch": platform.machine(),
        "fuel": True,
        "epoch": True,
        "max_wasm_stack": MAX_WASM_STACK,
        "threads": False,
        "multi_memory": False,
        "memory64": False,
        "disabled": sorted(_DISABLED_PROPOSALS),
        "allocator": "pooling",
        "memory_init": f"copy up to {COPY_MAX_DATA_BYTES} bytes of data, else image",
    }


#: How a new instance's linear memory gets the module's initialised data (data segments):
#: "copy" writes it into the pooling slot's zeroed memory at instantiation; "image" maps a
#: copy-on-write image of it (Wasmtime's memory_init_cow). An engine does one or the other, and
#: code compiled for one does not load into the other, so a worker has one engine of each.
MemoryInit = Literal["copy", "image"]
MEMORY_INITS: tuple[MemoryInit, ...] = ("copy", "image")
#: Modules with at most this much data copy it. Measured (docs/performance.md): with a few KiB,
#: copying is cheaper than mapping an image (the benchmark plugin: ~5 us per call with one
#: module, ~10 us with 1,000 modules taking turns, each of whose images is mapped and unmapped
#: per call), while each further 64 KiB copied costs ~20 us (the Go plugin's 1.5 MB: 0.8 ms ->
#: 2.6 ms per call), where an image costs the same whatever its size.
COPY_MAX_DATA_BYTES = 8 * 1024


def memory_init_for(wasm: bytes) -> MemoryInit:
    """How instances of ``wasm`` (a module that compiled) get their data; see MemoryInit."""
    try:
        size = data_section_bytes(wasm)
    except (ValueError, IndexError):
        return "image"
    return "copy" if size <= COPY_MAX_DATA_BYTES else "image"


#: Proposals no supported toolchain needs here, each a larger attack surface (the GC heap, for
#: one, is not covered by the linear-memory limit).
_DISABLED_PROPOSALS = ("gc", "function_references", "exceptions", "tail_call", "relaxed_simd",
                       "wide_arithmetic", "stack_switching", "custom_page_sizes")


def make_engine(memory_init: MemoryInit = "copy") -> wasmtime.Engine:
    """An engine with fuel metering and epoch interruption and without risky proposals, whose
    instances get their data as ``memory_init`` says."""
    config = wasmtime.Config()
    config.memory_init_cow = memory_init == "image"
    config.consume_fuel = True
    config.epoch_interruption = True
    config.max_wasm_stack = MAX_WASM_STACK
    config.wasm_threads = False
    config.shared_memory = False
    config.wasm_multi_memory = False
    config.wasm_memory64 = False
    for proposal in _DISABLED_PROPOSALS:
        setattr(config, f"wasm_{proposal}", False)
    _use_pooling_allocator(config)
    return wasmtime.Engine(config)


def make_engines() -> dict[MemoryInit, wasmtime.Engine]:
    """One engine per way of initialising memory (the epoch ticker advances them all)."""
    return {memory_init: make_engine(memory_init) for memory_init in MEMORY_INITS}


#: The pooling allocator's slots, per engine. A worker holds at most a few instances at once
#: (the running call's, the prepared next one, the spent one not yet freed); a slot is only
#: address space until used.
POOL_SLOTS = 8
#: Largest linear memory a slot can hold: the wasm32 maximum (the manifest's cap is lower,
#: enforced per store by ``Store.set_limits``).
POOL_MAX_MEMORY_BYTES = 65536 * 65536
#: Instance metadata (vmctx) cap per slot: far above any real module's, below a denial of service.
POOL_MAX_INSTANCE_BYTES = 16 * 1024 * 1024
#: Memory a freed slot keeps mapped and zeroes with memset instead of returning to the kernel.
#: None: zeroing a fresh instance's worth of pages on every reset (the guest had grown to 448 KiB)
#: was 12% of a busy worker's CPU; giving the pages back and faulting in the few the next call
#: touches costs less (throughput at concurrency 64 ~17.6k -> ~18.4k calls/s with 1 MiB vs 0,
#: alternating runs; tiny-call latency and the 1 MB / 100 KB round trips unchanged within noise).
POOL_KEEP_RESIDENT_BYTES = 0


def _use_pooling_allocator(config: wasmtime.Config) -> None:
    """Instances come from preallocated slots instead of a fresh mmap each (wasmtime-py has no
    wrapper for this, so it goes through the C API). A fresh instance per call then costs a
    slot reset rather than mapping, faulting in and unmapping its memory every time."""
    pooling = ffi.wasmtime_pooling_allocation_config_new()
    try:
        ffi.wasmtime_pooling_allocation_config_total_core_instances_set(pooling, POOL_SLOTS)
        ffi.wasmtime_pooling_allocation_config_total_memories_set(pooling, POOL_SLOTS)
        ffi.wasmtime_pooling_allocation_config_total_tables_set(pooling, POOL_SLOTS * MAX_TABLES)
        # Async stacks, GC heaps and component instances are unused here, but each defaults to
        # 1,000 slots: the stacks alone would reserve ~2 GiB of writable memory, which counts
        # against the worker's RLIMIT_DATA.
        ffi.wasmtime_pooling_allocation_config_total_stacks_set(pooling, POOL_SLOTS)
        ffi.wasmtime_pooling_allocation_config_total_gc_heaps_set(pooling, POOL_SLOTS)
        ffi.wasmtime_pooling_allocation_config_total_component_instances_set(pooling, POOL_SLOTS)
        ffi.wasmtime_pooling_allocation_config_max_tables_per_module_set(pooling, MAX_TABLES)
        ffi.wasmtime_pooling_allocation_config_max_memories_per_module_set(pooling, 1)
        ffi.wasmtime_pooling_allocation_config_table_elements_set(pooling, MAX_TABLE_ELEMENTS)
        ffi.wasmtime_pooling_allocation_config_max_memory_size_set(pooling, POOL_MAX_MEMORY_BYTES)
        ffi.wasmtime_pooling_allocation_config_max_core_instance_size_set(
            pooling, POOL_MAX_INSTANCE_BYTES)
        ffi.wasmtime_pooling_allocation_config_linear_memory_keep_resident_set(
            pooling, POOL_KEEP_RESIDENT_BYTES)
        ffi.wasmtime_pooling_allocation_config_table_keep_resident_set(
            pooling, POOL_KEEP_RESIDENT_BYTES)
        ffi.wasmtime_pooling_allocation_strategy_set(config.ptr(), pooling)
    finally:
        ffi.wasmtime_pooling_allocation_config_delete(pooling)


@dataclass
class LoadedPlugin:
    """A compiled, linked plugin ready to be instantiated once per call."""

    digest: str
    module: wasmtime.Module
    pre: wasmtime.InstancePre
    #: ``pre``'s C object (see ``guest.address_of``), valid while ``pre`` lives.
    pre_address: int
    capabilities: frozenset[str]
    has_initialize: bool
    #: Export name -> index in the instance's export list (for lookups without name scans).
    export_index: dict[str, int]
    #: Whether the module imports WASI (a store without WASI is cheaper to set up).
    uses_wasi: bool
    allocators: frozenset[str]
    memory_min_pages: int
    #: Which of the worker's engines the module was compiled for (see MemoryInit).
    memory_init: MemoryInit
    facts: dict[str, Any] = field(default_factory=dict)


def describe_module(module: wasmtime.Module) -> dict[str, Any]:
    """Exports, imports and memory of ``module`` as plain JSON-able data."""
    exports = module_exports(module)
    imports = module_imports(module)
    capabilities = [
        e["name"] for e in exports
        if e["kind"] == "func" and e["params"] == ["i32", "i32"] and e["results"] == ["i32"]
        and e["name"] not in RESERVED_EXPORTS and not e["name"].startswith(("__", "cortex_"))
    ]
    memories = [e for e in exports if e["kind"] == "memory"]
    return {
        "exports": exports,
        "imports": imports,
        "capabilities": capabilities,
        "memory": memories[0] if memories else None,
        "has_initialize": any(e["name"] == "_initialize" and e["kind"] == "func" for e in exports),
        "allocators": [
            e["name"] for e in exports
            if e["kind"] == "func" and e["name"] in ("malloc", "cortex_alloc")
            and e["params"] == ["i32"] and e["results"] == ["i32"]
        ],
    }


_CORTEX_IMPORTS: dict[str, tuple[list[str], list[str]]] = {
    "error": (["i32", "i32"], []),
    "log": (["i32", "i32", "i32"], []),
}


def check_module_shape(facts: dict[str, Any]) -> None:
    """Refuse modules that ABI v1 does not allow, whatever the manifest says."""
    memories = [e for e in facts["exports"] if e["kind"] == "memory"]
    if len(memories) != 1 or memories[0]["name"] != "memory":
        raise LoadError("the module must export exactly one linear memory, named 'memory'")
    if memories[0]["memory64"] or memories[0]["shared"]:
        raise LoadError("the exported memory must be a 32-bit, unshared memory")
    init = next((e for e in facts["exports"] if e["name"] == "_initialize"), None)
    if init is not None and (init["kind"] != "func" or init["params"] or init["results"]):
        raise LoadError("the export '_initialize' must be a function () -> ()")
    if any(e["name"] == "_start" for e in facts["exports"]):
        raise LoadError(
            "the module exports '_start' (a WASI command); build it as a reactor "
            "(e.g. -mexec-model=reactor) so that it has no main"
        )
    for imp in facts["imports"]:
        where = f"{imp['module']}.{imp['name']}"
        if imp["module"] == CORTEX_MODULE:
            expected = _CORTEX_IMPORTS.get(imp["name"])
            if expected is None:
                raise LoadError(f"unknown host import {where!r} (the cortex module has error, log)")
            if imp["kind"] != "func" or (imp["params"], imp["results"]) != expected:
                raise LoadError(f"host import {where!r} has the wrong type")
        elif imp["module"] == WASI_MODULE:
            if imp["kind"] != "func":
                raise LoadError(f"import {where!r} must be a function")
        else:
            raise LoadError(
                f"unknown import {where!r}: plugins may import only {WASI_MODULE} and {CORTEX_MODULE}"
            )


def check_wasm(wasm: bytes) -> None:
    """Refuse anything but a core WebAssembly module (no components, no precompiled code)."""
    if not wasm.startswith(WASM_MAGIC):
        if wasm[:4] == b"\x00asm":
            raise LoadError("the file is a WebAssembly component or unknown version, not a core module")
        raise LoadError("the file is not a WebAssembly binary module (bad magic number)")


def compile_module(engine: wasmtime.Engine, wasm: bytes) -> wasmtime.Module:
    """Compile ``wasm`` (checked to be a core module first)."""
    check_wasm(wasm)
    try:
        return wasmtime.Module(engine, wasm)
    except wasmtime.WasmtimeError as exc:
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        reason = " / ".join(line for line in lines if line != "Caused by:") or "invalid module"
        raise LoadError(f"the module does not compile: {reason[:400]}") from None


def check_interface(wasm: bytes) -> None:
    """Refuse a module with ``v128`` in an imported or exported function's signature before it is
    described: describing one aborts the process (see ``sandbox/wasmbin.py``)."""
    try:
        where = v128_in_interface(wasm)
    except (ValueError, IndexError):
        return  # it compiled, so the reader is what failed: describe it as before
    if where is not None:
        raise LoadError(f"{where} has a v128 parameter or result; ABI v1 functions take and "
                        "return i32 (SIMD inside a module is fine)")


def deserialize_artifact(engine: wasmtime.Engine, artifact: str) -> wasmtime.Module | None:
    """The module in the supervisor-vouched compiled ``artifact``, or None if it is stale or
    unreadable (the caller then compiles)."""
    try:
        return wasmtime.Module.deserialize_file(engine, artifact)
    except (wasmtime.WasmtimeError, OSError):
        return None


def read_wasm(path: str, digest: str) -> bytes:
    """The wasm at ``path``, which must still be the file whose SHA-256 is ``digest``."""
    try:
        with open(path, "rb") as f:
            wasm = f.read()
    except OSError as exc:
        raise LoadError(f"cannot read the wasm file: {exc.strerror}") from None
    actual = sha256_hex(wasm)
    if actual != digest:
        raise LoadError(f"the wasm file changed while loading (sha256 {actual}, expected {digest})")
    return wasm


def library_path() -> str:
    """Where wasmtime's shared library was loaded from (its code pages are released after a
    compile: see ``sandbox/residency.py``)."""
    return str(getattr(ffi.dll, "_name", ""))


def engine_fingerprint() -> str:
    """Identifies compiled-code compatibility; part of the supervisor's artifact cache key."""
    return sha256_hex(repr(sorted(engine_settings().items())).encode())[:32]


def load_plugin(
    engines: Mapping[MemoryInit, wasmtime.Engine], linkers: Mapping[MemoryInit, wasmtime.Linker],
    path: str, digest: str, artifact: str | None = None, memory_init: str | None = None,
    described: dict[str, Any] | None = None,
) -> LoadedPlugin:
    """Read, verify, compile and link the plugin at ``path`` whose SHA-256 must be ``digest``.
    ``memory_init``: the engine ``artifact`` was compiled for, if known (tried first).
    ``described``: the facts this process found describing and checking ``digest`` before (a
    plugin unloaded and loaded again): a module's facts follow from its bytes, which the digest
    binds, and describing one costs more than deserialising it."""
    started = time.perf_counter()
    # An artifact the supervisor vouches for is bound to ``digest`` by its MAC: the wasm itself
    # is then not needed (it is read, checked and compiled only without a usable artifact).
    # Code compiled for one engine fails to deserialise in the other (a header check).
    module: wasmtime.Module | None = None
    kind: MemoryInit = "copy"
    if artifact:
        hint_first = sorted(MEMORY_INITS, key=lambda candidate: candidate != memory_init)
        for kind in hint_first:
            module = deserialize_artifact(engines[kind], artifact)
            if module is not None:
                break
    cached = module is not None
    if module is None:
        wasm = read_wasm(path, digest)
        kind = memory_init_for(wasm)
        module = compile_module(engines[kind], wasm)
        check_interface(wasm)
    if described is None:
        facts = describe_module(module)
        check_module_shape(facts)
    else:
        facts = dict(described)
    try:
        pre = linkers[kind].instantiate_pre(module)
    except wasmtime.WasmtimeError as exc:
        raise LoadError(f"the module cannot be linked: {str(exc).strip().splitlines()[0]}") from None
    facts["memory_init"] = kind
    facts["cache"] = "hit" if cached else "miss"
    facts["load_ms"] = round((time.perf_counter() - started) * 1000, 3)
    memory = facts["memory"]
    export_index = {export["name"]: i for i, export in enumerate(facts["exports"])}
    return LoadedPlugin(
        digest=digest,
        module=module,
        pre=pre,
        pre_address=address_of(pre),
        capabilities=frozenset(facts["capabilities"]),
        has_initialize=facts["has_initialize"],
        export_index=export_index,
        uses_wasi=any(i["module"] == WASI_MODULE for i in facts["imports"]),
        allocators=frozenset(facts["allocators"]),
        memory_min_pages=memory["min_pages"],
        memory_init=kind,
        facts=facts,
    )
