"""One store holding one fresh instance of a plugin, driven straight through Wasmtime's C API.

The wasm work of a tiny call is a few µs; through wasmtime-py's objects it cost ~85 µs of CPU in
a worker: a method and a pointer-type check per store setting, an ``Instance`` and a ``Memory``
wrapper, a context manager and a new argument array per guest call, a bounds-checked buffer view
per read. Here each step is one foreign function of our own on plain addresses: those that run
guest code (instantiation runs the start function, and every export call) release the GIL, so the
epoch ticker's thread can interrupt a guest that loops; the rest are a few instructions each and
keep it (releasing and retaking the GIL around them cost more than the call).

Everything the guest hands back (pointers, lengths) stays untrusted: the callers in
``execute.py`` mask offsets to u32 and :meth:`Guest.read`/:meth:`Guest.write` check every range
against the memory's current size before touching it. Host functions (``cortex.log``, WASI) are
wasmtime-py's trampolines as before; an exception they raise is re-raised here as wasmtime-py
would (``maybe_raise_last_exn``).
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn, cast

import wasmtime
from wasmtime import _ffi as ffi
from wasmtime._func import maybe_raise_last_exn

from . import NATIVE_LIBRARY

_P = ctypes.c_void_p
_U64 = ctypes.c_uint64
_I64 = ctypes.c_int64


def _keeping_gil(name: str, restype: Any, *argtypes: Any) -> Callable[..., Any]:
    return ctypes.PYFUNCTYPE(restype, *argtypes)((name, ffi.dll))


def _releasing_gil(name: str, restype: Any, *argtypes: Any) -> Callable[..., Any]:
    return ctypes.CFUNCTYPE(restype, *argtypes)((name, ffi.dll))


_store_new = _keeping_gil("wasmtime_store_new", _P, _P, _P, _P)
_store_context = _keeping_gil("wasmtime_store_context", _P, _P)
_store_delete = _keeping_gil("wasmtime_store_delete", None, _P)
_store_limiter = _keeping_gil("wasmtime_store_limiter", None, _P, _I64, _I64, _I64, _I64, _I64)
_set_fuel = _keeping_gil("wasmtime_context_set_fuel", _P, _P, _U64)
_get_fuel = _keeping_gil("wasmtime_context_get_fuel", _P, _P, _P)
_set_epoch_deadline = _keeping_gil("wasmtime_context_set_epoch_deadline", None, _P, _U64)
_set_wasi = _keeping_gil("wasmtime_context_set_wasi", _P, _P, _P)
_export_nth = _keeping_gil("wasmtime_instance_export_nth", ctypes.c_bool, _P, _P, ctypes.c_size_t,
                           _P, _P, _P)
_memory_data = _keeping_gil("wasmtime_memory_data", _P, _P, _P)
_memory_size = _keeping_gil("wasmtime_memory_data_size", ctypes.c_size_t, _P, _P)
_memory_grow = _keeping_gil("wasmtime_memory_grow", _P, _P, _P, _U64, _P)
#: Advances an engine's epoch (the engine's address, see ``address_of``). It keeps the GIL: the
#: ticker's thread would otherwise have to win it back after every increment, and while a guest
#: loops through host calls (Python) that takes up to the interpreter's switch interval (5 ms).
increment_epoch = _keeping_gil("wasmtime_engine_increment_epoch", None, _P)
_instantiate = _releasing_gil("wasmtime_instance_pre_instantiate", _P, _P, _P, _P, _P)
_call_unchecked = _releasing_gil("wasmtime_func_call_unchecked", _P, _P, _P, _P, ctypes.c_size_t, _P)

_FUNC = ffi.WASMTIME_EXTERN_FUNC.value
_MEMORY = ffi.WASMTIME_EXTERN_MEMORY.value
#: Where an extern's function or memory sits inside ``wasmtime_extern_t`` (after its kind).
_OF = ffi.wasmtime_extern_t.of.offset
#: Arguments of a guest call: i32 params only (signatures are checked at load), at most two.
MAX_ARGS = 2
_VAL_RAW_SLOTS = ctypes.sizeof(ffi.wasmtime_val_raw_t) // ctypes.sizeof(ctypes.c_int32)


def address_of(handle: wasmtime.Engine | wasmtime.InstancePre) -> int:
    """The C object behind a wasmtime-py handle (found once: ``ptr()`` and ``cast`` cost
    ~1.5 µs together). The handle must outlive every use of the address."""
    return _address(handle.ptr())


def _address(pointer: Any) -> int:
    return ctypes.cast(pointer, _P).value or 0


def _kind(extern: ffi.wasmtime_extern_t) -> int:
    return cast(int, extern.kind)  # a plain int at run time (the stubs say c_uint8)


class GuestExportError(Exception):
    """An export the plugin's description promised is missing or of another kind."""


class BadAllocation(Exception):
    """The allocator returned a null pointer (``ptr`` 0) or one whose input range runs past the
    end of memory."""

    def __init__(self, ptr: int) -> None:
        super().__init__(ptr)
        self.ptr = ptr


class _Handles(ctypes.Structure):
    """What one guest keeps between steps, in one allocation: its instance and its memory."""

    _fields_ = [("instance", ffi.wasmtime_instance_t), ("memory", ffi.wasmtime_extern_t)]


class _Scratch(ctypes.Structure):
    """Out-parameters and arguments of one step at a time: guests run one at a time in a
    worker's main thread (host functions and the epoch ticker never use them), so all share
    one, and making a guest allocates one structure instead of seven."""

    _fields_ = [("trap", _P), ("fuel", _U64), ("pages", _U64), ("name", _P),
                ("name_length", ctypes.c_size_t),
                ("func", ffi.wasmtime_extern_t), ("values", ffi.wasmtime_val_raw_t * MAX_ARGS),
                ("error", _P), ("result", _U64)]


_scratch = _Scratch()
_SCRATCH = ctypes.addressof(_scratch)
_TRAP = _SCRATCH + _Scratch.trap.offset
_FUEL = _SCRATCH + _Scratch.fuel.offset
_PAGES = _SCRATCH + _Scratch.pages.offset
_NAME = _SCRATCH + _Scratch.name.offset
_NAME_LENGTH = _SCRATCH + _Scratch.name_length.offset
_FUNC_EXTERN = _SCRATCH + _Scratch.func.offset
_VALUES = _SCRATCH + _Scratch.values.offset
#: The arguments' bytes seen as i32s: argument i at [i * _VAL_RAW_SLOTS], the result at [0].
_ARGS = (ctypes.c_int32 * (MAX_ARGS * _VAL_RAW_SLOTS)).from_address(_VALUES)
_INSTANCE_OFFSET = _Handles.instance.offset
_MEMORY_OFFSET = _Handles.memory.offset
_ERROR = _SCRATCH + _Scratch.error.offset
_RESULT = _SCRATCH + _Scratch.result.offset
#: The one thread guests may run in: the first that makes one.
_owner: int | None = None


class _Native:
    """sandbox/_guest_native.so (scripts/build-native): a step of several C API calls in one
    foreign call. Those that run guest code release the GIL, as ``_releasing_gil`` does."""

    _WASMTIME = ("wasmtime_instance_export_nth", "wasmtime_func_call_unchecked",
                 "wasmtime_memory_data", "wasmtime_memory_data_size", "wasmtime_store_new",
                 "wasmtime_store_context", "wasmtime_store_limiter", "wasmtime_context_set_fuel",
                 "wasmtime_context_set_epoch_deadline", "wasmtime_instance_pre_instantiate",
                 "wasmtime_memory_grow", "wasmtime_module_exports", "wasmtime_module_imports",
                 "wasm_exporttype_vec_delete", "wasm_importtype_vec_delete", "wasm_exporttype_name",
                 "wasm_exporttype_type", "wasm_importtype_module", "wasm_importtype_name",
                 "wasm_importtype_type", "wasm_externtype_kind", "wasm_externtype_as_functype_const",
                 "wasm_externtype_as_memorytype_const", "wasm_functype_params",
                 "wasm_functype_results", "wasm_valtype_kind", "wasmtime_memorytype_minimum",
                 "wasmtime_memorytype_maximum", "wasmtime_memorytype_is64",
                 "wasmtime_memorytype_isshared")

    def __init__(self, library: ctypes.CDLL) -> None:
        size, i32, i64 = ctypes.c_size_t, ctypes.c_int32, _I64
        functions = (_P * len(self._WASMTIME))(
            *(ctypes.cast(getattr(ffi.dll, name), _P).value for name in self._WASMTIME))
        init = ctypes.PYFUNCTYPE(None, _P, size, ctypes.c_uint8, ctypes.c_uint8, size, size, _P,
                                 _P, _P, _P, _P, _P, _P)(("cortex_native_init", library))
        init(ctypes.addressof(functions), _OF, _FUNC, _MEMORY,
             ctypes.sizeof(ffi.wasmtime_val_raw_t), MAX_ARGS, _TRAP, _NAME, _NAME_LENGTH,
             _FUNC_EXTERN, _VALUES, _ERROR, _RESULT)
        self.store = ctypes.PYFUNCTYPE(_P, _P, _U64, _U64, i64, i64, i64, i64, i64)(
            ("cortex_store", library))
        self.instantiate = ctypes.CFUNCTYPE(i32, _P, _P, _P, _P, size)(
            ("cortex_instantiate", library))
        self.call = ctypes.CFUNCTYPE(i32, _P, _P, size, i32, i32)(("cortex_call", library))
        self.run = ctypes.CFUNCTYPE(i32, _P, _P, _P, size, size, ctypes.c_char_p, size)(
            ("cortex_run", library))
        self.invoke = ctypes.CFUNCTYPE(i32, _P, _P, _P, _P, size, _U64, size, size, size,
                                       ctypes.c_char_p, size, _U64, _P)(("cortex_invoke", library))
        self.describe = ctypes.PYFUNCTYPE(size, _P, i32, _P, size)(("cortex_describe", library))


def _load_native(library: Path | None = None) -> _Native | None:
    """The native library, set up with this module's scratch space and Wasmtime's functions;
    None if it was not built, will not load, or was built from other source than this module
    expects (a stale build: ``NATIVE_ABI``): :class:`Guest` then takes each step in Python."""
    library = library or Path(__file__).with_name(NATIVE_LIBRARY)
    if not library.is_file():
        return None
    try:
        loaded = ctypes.CDLL(str(library))
        abi = ctypes.PYFUNCTYPE(ctypes.c_int32)(("cortex_native_abi", loaded))
        if abi() != NATIVE_ABI:
            return None
        return _Native(loaded)
    except (OSError, AttributeError):
        return None


#: CORTEX_NATIVE_ABI in native/guest_native.c: the functions' parameters and the scratch layout.
NATIVE_ABI = 4
_native = _load_native()
#: Whether :class:`Guest` goes through the native library (tests turn it off to compare).
native = _native is not None


def describe_natively(module: int, *, imports: bool) -> bytes | None:
    """A module's (an address) exports, or imports, as the JSON ``sandbox/describe.py`` builds
    step by step, in one foreign call; None without the native library (or with ``native``
    off: tests compare the two)."""
    if not native or _native is None:
        return None
    capacity = 4096
    while True:
        buffer = ctypes.create_string_buffer(capacity)
        length = int(_native.describe(module, int(imports), buffer, capacity))
        if length <= capacity:
            return buffer.raw[:length]
        capacity = length

_RUN_OK, _ALLOC_NOT_FUNC, _ALLOC_FAILED, _ALLOC_NULL, _ALLOC_OUT_OF_RANGE = range(5)
_EXPORT_NOT_FUNC, _EXPORT_FAILED, _TOO_LONG = range(5, 8)
#: Guest.invoke's outcomes past the capability's call (cortex_invoke's INVOKE_*).
(INSTANTIATE_FAILED, NO_MEMORY, GROW_FAILED, INIT_NOT_FUNC, INIT_FAILED, RESULT_NULL,
 RESULT_OUT_OF_RANGE, RESULT_TOO_LONG, RESULT_BODY_OUT_OF_RANGE) = range(8, 17)
#: ``Guest.invoke``'s ``initialize`` when the module has no ``_initialize`` (C's SIZE_MAX).
NO_EXPORT = 2**64 - 1 if ctypes.sizeof(ctypes.c_size_t) == 8 else 2**32 - 1


class Invocation(ctypes.Structure):
    """What ``Guest.invoke`` found (cortex_invoke's ``struct invocation``)."""

    _fields_ = [("setup_bytes", _U64), ("result", _U64), ("length", _U64), ("base", _U64)]


#: One for the process, like the scratch space: guests run one at a time.
invocation = Invocation()
_INVOCATION = ctypes.addressof(invocation)


def _claim_thread() -> None:
    """Guests share the scratch space: the first thread to make one is the only one allowed."""
    global _owner
    if _owner != threading.get_ident():
        if _owner is not None:
            raise RuntimeError("guests share scratch space: they run in one thread only")
        _owner = threading.get_ident()


class Guest:
    """A fresh store with one instance: made, called, then closed exactly once. Guests are
    driven from one thread (a worker's main thread): they share their scratch space."""

    __slots__ = ("_context", "_handles", "_instance_address", "_memory_address", "_store")

    def __init__(self, engine: int) -> None:
        """A new store in ``engine`` (an ``address_of`` an engine)."""
        self._store = 0  # until made: ``close`` (and ``__del__``) have nothing to free
        self._memory_address = 0
        _claim_thread()
        self._hold(_store_new(engine, None, None))

    @classmethod
    def configured(cls, engine: int, *, fuel: int, ticks: int, memory_bytes: int,
                   table_elements: int, instances: int, tables: int, memories: int) -> Guest:
        """A new store with its fuel, epoch deadline (``ticks``) and limits set."""
        if not native or _native is None:
            guest = cls(engine)
            guest.set_fuel(fuel)
            guest.set_deadline(ticks)
            guest.limit(memory_bytes=memory_bytes, table_elements=table_elements,
                        instances=instances, tables=tables, memories=memories)
            return guest
        guest = cls.__new__(cls)
        guest._store = guest._memory_address = 0
        _claim_thread()
        guest._hold(_native.store(engine, fuel, ticks, memory_bytes, table_elements, instances,
                                  tables, memories), context=int(_scratch.result))
        error, _scratch.error = _scratch.error, None
        guest._check(error)
        return guest

    def _hold(self, store: int | None, context: int | None = None) -> None:
        """Keep ``store`` (none: Wasmtime could not make one) and its context (looked up if
        not given), with room for the instance to come."""
        if not store:
            raise MemoryError("wasmtime could not create a store")
        self._store = store
        self._context: int = context if context is not None else _store_context(store)
        self._handles = _Handles()
        self._instance_address = ctypes.addressof(self._handles) + _INSTANCE_OFFSET

    # -- the store ----------------------------------------------------------------------------

    def limit(self, *, memory_bytes: int, table_elements: int, instances: int, tables: int,
              memories: int) -> None:
        _store_limiter(self._store, memory_bytes, table_elements, instances, tables, memories)

    def set_fuel(self, fuel: int) -> None:
        self._check(_set_fuel(self._context, fuel))

    def fuel(self) -> int:
        self._check(_get_fuel(self._context, _FUEL))
        return int(_scratch.fuel)

    def set_deadline(self, ticks: int) -> None:
        _set_epoch_deadline(self._context, ticks)

    def set_wasi(self, wasi: wasmtime.WasiConfig) -> None:
        self._check(_set_wasi(self._context, _address(wasi._consume())))

    def close(self) -> None:
        """Free the store and its instance (the pooling allocator's slot with it). Idempotent."""
        if self._store:
            store, self._store, self._context, self._memory_address = self._store, 0, 0, 0
            _store_delete(store)

    def __del__(self) -> None:
        self.close()

    # -- the instance -------------------------------------------------------------------------

    def instantiate(self, pre: int, memory_export: int) -> None:
        """Instantiate ``pre`` (an ``address_of`` an ``InstancePre``: its start function runs)
        and find its memory, export number ``memory_export``."""
        memory = ctypes.addressof(self._handles) + _MEMORY_OFFSET
        if native and _native is not None:
            status = _native.instantiate(pre, self._context, self._instance_address, memory,
                                         memory_export)
            if status == 1:
                self.raise_failure()
            if status == 2:
                raise GuestExportError("the module has no linear memory")
            self._memory_address = memory + _OF
            return
        _scratch.trap = None
        error = _instantiate(pre, self._context, self._instance_address, _TRAP)
        if error or _scratch.trap:
            self._raise(error)
        if not self._export(memory_export, memory) or _kind(self._handles.memory) != _MEMORY:
            raise GuestExportError("the module has no linear memory")
        self._memory_address = memory + _OF

    def call(self, export: int, *args: int) -> int:
        """Call the function export number ``export`` with i32 ``args``; its i32 result (0 if
        it has none), as wasm's signed value."""
        if len(args) > MAX_ARGS:
            raise ValueError(f"at most {MAX_ARGS} arguments")
        if native and _native is not None:
            status = _native.call(self._context, self._instance_address, export,
                                  args[0] if args else 0, args[1] if len(args) > 1 else 0)
            if status == -1:
                raise GuestExportError(f"export number {export} is not a function")
            if status == -2:
                self.raise_failure()
            return int(_ARGS[0])
        if not self._export(export, _FUNC_EXTERN) or _kind(_scratch.func) != _FUNC:
            raise GuestExportError(f"export number {export} is not a function")
        _ARGS[0] = 0
        for i, arg in enumerate(args):
            _ARGS[i * _VAL_RAW_SLOTS] = arg
        _scratch.trap = None
        # Signatures were checked at load; the length is the buffer's, whatever the call needs.
        error = _call_unchecked(self._context, _FUNC_EXTERN + _OF, _VALUES, MAX_ARGS, _TRAP)
        if error or _scratch.trap:
            self._raise(error)
        return int(_ARGS[0])

    def run(self, alloc: int, export: int, data: bytes | memoryview) -> int:
        """The ABI's call: ``ptr = alloc(max(len, 1))``, ``data`` copied to ``ptr``, then
        ``export(ptr, len)``; returns its result as a u32. One step where the native library is
        built and ``data`` is ``bytes`` (a large input arrives as a view of its frame). Raises as
        :meth:`call` does, or ``BadAllocation`` for a null or out-of-range ``ptr``."""
        if not native or _native is None or not isinstance(data, bytes):
            ptr = self.call(alloc, max(len(data), 1)) & 0xFFFFFFFF
            if ptr == 0:
                raise BadAllocation(0)
            try:
                self.write(ptr, data)
            except IndexError:
                raise BadAllocation(ptr) from None
            return self.call(export, ptr, len(data)) & 0xFFFFFFFF
        status = _native.run(self._context, self._instance_address, self._memory_address, alloc,
                             export, data, len(data))
        if status == _RUN_OK:
            return int(_scratch.result)
        self.raise_for(status, alloc, export, len(data))

    def invoke(self, pre: int, memory_export: int, min_pages: int, initialize: int, alloc: int,
               export: int, data: bytes, max_output: int) -> int:
        """A whole call in one foreign call (native library only): with ``pre`` (not 0),
        :meth:`instantiate` it, grow the memory to ``min_pages`` and call export ``initialize``
        (``NO_EXPORT``: none); then :meth:`run` and find the result (a u32 length at the
        pointer it returned, then that many bytes, at most ``max_output``), checked against the
        memory's size. Returns 0, with ``invocation`` filled in, or the first step that failed:
        ``raise_for`` raises what the steps taken one by one would have, where they raise."""
        assert _native is not None, "Guest.invoke needs the native library"
        memory = ctypes.addressof(self._handles) + _MEMORY_OFFSET
        status = _native.invoke(pre, self._context, self._instance_address, memory, memory_export,
                                min_pages, initialize, alloc, export, data, len(data), max_output,
                                _INVOCATION)
        if status not in (INSTANTIATE_FAILED, NO_MEMORY):
            self._memory_address = memory + _OF
        return int(status)

    def raise_for(self, status: int, alloc: int, export: int, length: int, *,
                  initialize: int = NO_EXPORT) -> NoReturn:
        """Raise what a failed :meth:`run` or :meth:`invoke` ``status`` stands for, as the
        step that failed raises it: the guest's trap or error (instantiation, growth, a guest
        call), ``BadAllocation``, or ``GuestExportError``. Not for the ``RESULT_*`` outcomes:
        the guest did not fail there, its result is bad (the caller says how)."""
        if status in (_ALLOC_NULL, _ALLOC_OUT_OF_RANGE):
            raise BadAllocation(int(_scratch.result))
        if status in (_ALLOC_NOT_FUNC, _EXPORT_NOT_FUNC, INIT_NOT_FUNC):
            number = {_ALLOC_NOT_FUNC: alloc, _EXPORT_NOT_FUNC: export}.get(status, initialize)
            raise GuestExportError(f"export number {number} is not a function")
        if status == NO_MEMORY:
            raise GuestExportError("the module has no linear memory")
        if status == _TOO_LONG:
            raise ValueError(f"an input of {length} bytes is too long for a wasm call")
        self.raise_failure()

    def raise_failure(self) -> NoReturn:
        """Raise the trap or error the last failed native step left (see :meth:`_raise`)."""
        error, _scratch.error = _scratch.error, None
        self._raise(error)

    def _export(self, index: int, into: int) -> bool:
        """Write export number ``index`` as a ``wasmtime_extern_t`` at address ``into``."""
        return bool(_export_nth(self._context, self._instance_address, index, _NAME, _NAME_LENGTH,
                                into))

    # -- its memory ---------------------------------------------------------------------------

    def memory_size(self) -> int:
        """Bytes of linear memory now (0 before instantiation or after close)."""
        if not self._memory_address:
            return 0
        return int(_memory_size(self._context, self._memory_address))

    def grow_memory(self, pages: int) -> None:
        self._check(_memory_grow(self._context, self._memory_address, pages, _PAGES))

    def read(self, ptr: int, length: int) -> bytes:
        """Copy ``length`` bytes at ``ptr`` out of memory, or raise ``IndexError``."""
        if ptr < 0 or length < 0 or ptr + length > self.memory_size():
            raise IndexError(f"range {ptr}+{length} is past the end of memory")
        if length == 0:
            return b""
        return ctypes.string_at(_memory_data(self._context, self._memory_address) + ptr, length)

    def view(self, ptr: int, length: int) -> memoryview:
        """The ``length`` bytes at ``ptr`` where they lie (no copy), or raise ``IndexError``.

        Valid only until guest code runs again (it may grow, and so move, the memory) or the
        guest is closed: a large result is checked and written out from here, before either."""
        if ptr < 0 or length < 0 or ptr + length > self.memory_size():
            raise IndexError(f"range {ptr}+{length} is past the end of memory")
        if length == 0:
            return memoryview(b"")
        base = _memory_data(self._context, self._memory_address)
        return memoryview((ctypes.c_ubyte * length).from_address(base + ptr)).cast("B")

    def write(self, ptr: int, data: bytes | memoryview) -> None:
        """Copy ``data`` into memory at ``ptr``, or raise ``IndexError``."""
        if ptr < 0 or ptr + len(data) > self.memory_size():
            raise IndexError(f"range {ptr}+{len(data)} is past the end of memory")
        if not data:
            return
        if isinstance(data, bytes):
            ctypes.memmove(_memory_data(self._context, self._memory_address) + ptr, data,
                           len(data))
        else:  # a view (a large input, in the frame it arrived in)
            self.view(ptr, len(data))[:] = data

    # -- failures -----------------------------------------------------------------------------

    @staticmethod
    def _check(error: int | None) -> None:
        if error:
            raise wasmtime.WasmtimeError._from_ptr(
                ctypes.cast(error, ctypes.POINTER(ffi.wasmtime_error_t)))

    @staticmethod
    def _raise(error: int | None) -> NoReturn:
        """Raise what wasmtime-py would have: the host function's own exception if one raised,
        else the trap (``wasmtime.Trap``) or the error (``WasmtimeError``, ``ExitTrap``)."""
        trap = _scratch.trap
        _scratch.trap = None
        if trap:
            if error:  # both set never happens; free the error all the same
                wasmtime.WasmtimeError._from_ptr(
                    ctypes.cast(error, ctypes.POINTER(ffi.wasmtime_error_t)))
            raised: Exception = wasmtime.Trap._from_ptr(
                ctypes.cast(trap, ctypes.POINTER(ffi.wasm_trap_t)))
        else:
            assert error, "called without an error or a trap"
            raised = wasmtime.WasmtimeError._from_ptr(
                ctypes.cast(error, ctypes.POINTER(ffi.wasmtime_error_t)))
        maybe_raise_last_exn()
        raise raised
