"""Run one capability call on a fresh instance, following ABI v1 (docs/abi.md).

Everything the guest hands back (allocator pointers, result pointer, length header, bytes) is
untrusted: a guest call's i32 comes back as a *signed* Python int, so every offset is masked to
u32, and every range is checked against the memory's current size before it is read or written
(``guest.Guest.read``/``write``; host imports through wasmtime-py, ``read_guest`` below). The
instance itself is driven through Wasmtime's C API by ``sandbox/guest.py``.
"""

from __future__ import annotations

import collections
import ctypes
import gc
import math
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
import wasmtime

from . import MAX_PREPARED_PLUGINS, PREPARED_PLUGINS
from . import guest as guest_steps
from .engine import (
    CORTEX_MODULE,
    MAX_TABLE_ELEMENTS,
    MAX_TABLES,
    LoadedPlugin,
    load_plugin,
    make_engines,
)
from .framing import ATTACHMENT, LARGE_FRAME_BYTES
from .guest import BadAllocation, Guest, GuestExportError, address_of, increment_epoch
from .jsoncheck import InvalidResult, decode_result

PAGE = 65536
U32 = 0xFFFFFFFF
MAX_MESSAGE_BYTES = 4096
LOG_LINE_OVERHEAD = 16
EPOCH_TICK_SECONDS = 0.002
LEVELS = {0: "debug", 1: "info", 2: "warning", 3: "error"}
#: After a call, the plugin's next instance is prepared only if the plugin was also called within
#: the last (this many x the plugins kept) calls: for a plugin called once among many (round-robin
#: over hundreds), the instance would be thrown away, and the next call would wait behind its
#: instantiation. Twice, not once: the pool sends a call to a worker that has its plugin prepared,
#: so a 2-worker pool keeps 8 plugins ready between them (measured with round-robin over 10
#: plugins: 297 µs p50 with a window of 8, 356 µs with 5).
RECENT_CALLS_PER_PLUGIN = 2
#: A prepared instance's instantiation (start function, ``_initialize``) may run this long, not
#: the call's whole timeout: the supervisor counts a preparing worker as idle and sends it calls,
#: which would wait behind a start function that spins (a hostile plugin held calls of other
#: plugins up to its timeout, 1 s by default). Measured in process: 11-17 µs for the C, C++,
#: Rust, Zig and AssemblyScript conformance plugins, 0.7 ms for Go's runtime start (2 ms at
#: most). A plugin that takes longer is made on its call's path instead, under the call's limits.
PREPARE_TIMEOUT_MS = 50.0
#: How many unloaded plugins' facts a worker keeps (encoded, ~1 KB each), so that loading one
#: again skips describing its module (~50 µs of a reload's ~200; see ``engine.load_plugin``).
DESCRIBED_UNLOADED = 2048


def check_json(data: bytes | memoryview) -> None:
    """Accept only JSON the supervisor can decode exactly (``jsoncheck.decode_result``)."""
    try:
        decode_result(data)
    except InvalidResult as exc:
        raise CallFailed("invalid_output", str(exc)) from None


class CallFailed(Exception):
    """A call ended without a valid result; ``kind`` maps to a host error class."""

    def __init__(self, kind: str, message: str, *, trap_code: str | None = None,
                 backtrace: str = "") -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.trap_code = trap_code
        self.backtrace = backtrace


class HostTrap(Exception):
    """Raised inside a host import to trap the guest (e.g. an out-of-bounds pointer)."""


@dataclass
class CallContext:
    """What host imports may touch during one call, and what they collected."""

    max_log_bytes: int
    error: str | None = None
    logs: list[list[str]] = field(default_factory=list)
    log_bytes: int = 0
    dropped_logs: int = 0
    streams: dict[str, bytearray] = field(default_factory=dict)

    def add_log(self, level: str, stream: str, data: bytes) -> None:
        # Each line also costs a fixed overhead, so a flood of empty lines is bounded too.
        cost = len(data) + LOG_LINE_OVERHEAD
        if self.log_bytes + cost > self.max_log_bytes:
            self.dropped_logs += 1
            return
        self.log_bytes += cost
        text = data[:MAX_MESSAGE_BYTES].decode("utf-8", "replace")
        self.logs.append([level, stream, text])

    def write_stream(self, stream: str, data: bytes) -> None:
        buffer = self.streams.setdefault(stream, bytearray())
        room = self.max_log_bytes - self.log_bytes - len(buffer)
        if room <= 0:
            self.dropped_logs += 1
            return
        buffer += data[:room]

    def flush_streams(self) -> None:
        for stream, buffer in self.streams.items():
            for line in bytes(buffer).splitlines():
                if line.strip():
                    self.add_log("info", stream, line)
        self.streams.clear()


def read_guest(memory: wasmtime.Memory, store: Any, ptr: int, length: int) -> bytes:
    """Copy ``length`` bytes at ``ptr`` out of guest memory, or raise ``IndexError``."""
    ptr &= U32
    length &= U32
    if ptr + length > memory.data_len(store):
        raise IndexError(f"range {ptr}+{length} is past the end of memory")
    if length == 0:
        return b""
    return bytes(memory.get_buffer_ptr(store, length, ptr))


@dataclass
class _Prepared:
    """A fresh instance made while the worker was idle, waiting for its one and only call."""

    key: tuple[str, int, int, int]
    guest: Guest
    state: _CallState
    ctx: CallContext
    fuel: int
    fuel_used: int


@dataclass
class _CallState:
    """What the failure classifier needs to know about how far a call got."""

    instantiated: bool = False
    setup_bytes: int = 0


def _export_number(plugin: LoadedPlugin, name: str) -> int:
    """The position of export ``name`` in the module's export list (found once, at load)."""
    index = plugin.export_index.get(name)
    if index is None:
        raise CallFailed("trap", f"export {name!r} is missing", trap_code="bad_export")
    return index


class EpochTicker:
    """Advances the engines' epochs while calls run, so deadlines become traps.

    It keeps ticking between back-to-back calls and parks only after ``IDLE_PARK_SECONDS``
    without one: waking a parked thread for every call would cost a futex wake-up and a GIL
    hand-off per call, and an idle worker should not wake 500 times a second.

    The epoch follows the clock, not the thread's wake-ups: a late wake-up counts every tick
    that has fallen due. Late wake-ups are the rule under load: the worker runs under
    SCHED_BATCH, so this thread, woken on a CPU where a guest loops, waits for the scheduler's
    next tick (4 ms at 250 Hz) instead of preempting the guest; counting wake-ups made a 100 ms
    timeout fire after 200-330 ms. So that ticks owed from before a call cannot cut its time
    short, a call brings the epoch up to date (``catch_up``) before it sets its deadline.

    A guest looping through ``cortex`` host calls holds the GIL in Python for most of each turn
    and retakes it at once after each, which starved this thread of it for up to a quarter of a
    second; those host functions catch up themselves (a clock read while nothing is due)."""

    IDLE_PARK_SECONDS = 0.1

    def __init__(self, engines: Iterable[wasmtime.Engine]) -> None:
        self._engines = tuple(engines)  # kept alive for the addresses below
        self._engine_addresses = tuple(address_of(engine) for engine in self._engines)
        self._wake = threading.Event()
        self._busy = False
        self._running = False
        self._last_busy = 0.0
        #: When the last counted tick fell due (None while parked); guarded by ``_lock``, which
        #: also makes a catch-up and the ticks it counts one step.
        self._ticked: float | None = None
        self._lock = threading.Lock()
        threading.Thread(target=self._run, name="epoch-ticker", daemon=True).start()

    def _run(self) -> None:
        while True:
            self._wake.wait()
            with self._lock:
                if self._ticked is None:  # resumed: the time spent parked is no call's
                    self._ticked = time.monotonic()
            time.sleep(EPOCH_TICK_SECONDS)
            self.catch_up()
            if self._busy or time.monotonic() - self._last_busy < self.IDLE_PARK_SECONDS:
                continue
            with self._lock:
                self._ticked = None
            self._running = False
            self._wake.clear()
            if self._busy:  # a call started while we parked: keep going (see start())
                self._running = True
                self._wake.set()

    def catch_up(self) -> None:
        """Advance the epoch by every tick that has fallen due since the last one counted."""
        ticked = self._ticked
        if ticked is None or time.monotonic() - ticked < EPOCH_TICK_SECONDS:
            return  # nothing due: the usual case, without the lock (ticks are published counted)
        with self._lock:
            ticked = self._ticked
            if ticked is None:
                return
            due = int((time.monotonic() - ticked) / EPOCH_TICK_SECONDS)
            for _ in range(due):
                for engine in self._engine_addresses:
                    increment_epoch(engine)
            if due > 0:  # only once they are counted: a caller that sees it owes nothing
                self._ticked = ticked + due * EPOCH_TICK_SECONDS

    def start(self) -> None:
        # Order matters: _busy before _running, the reverse of the parking thread's order, so
        # one of the two always sees the other (the GIL makes each step atomic).
        self._busy = True
        if not self._running:
            self._running = True
            with self._lock:  # counting from now, before this thread has the CPU and the GIL
                if self._ticked is None:
                    self._ticked = time.monotonic()
            self._wake.set()

    def stop(self) -> None:
        self._busy = False
        self._last_busy = time.monotonic()


def ticks_for(timeout_ms: float) -> int:
    return max(1, math.ceil(timeout_ms / 1000 / EPOCH_TICK_SECONDS)) + 1


def _split_trap(text: str) -> tuple[str, str]:
    """Wasmtime's trap text holds a backtrace and a 'Caused by' reason; separate them."""
    backtrace, _, cause = text.partition("Caused by:")
    reason = " ".join(cause.split()) or text.strip().splitlines()[0]
    reason = reason.removeprefix("wasm trap: ")
    trace = "\n".join(
        line.strip() for line in backtrace.splitlines()
        if line.strip() and "wasm backtrace" not in line
    )
    return reason, trace


def _check_start_memory(plugin: LoadedPlugin, max_pages: int) -> None:
    if plugin.memory_min_pages > max_pages:
        raise CallFailed(
            "memory", f"the module needs {plugin.memory_min_pages} pages of memory at start, "
            f"over the limit of {max_pages} pages",
        )


class _NoSlot(Exception):
    """Instantiation found every pooling slot taken (Wasmtime's "concurrent limit")."""

    def __init__(self, error: wasmtime.WasmtimeError) -> None:
        super().__init__(str(error))
        self.error = error

    @classmethod
    def or_failure(cls, exc: wasmtime.WasmtimeError | GuestExportError) -> Exception:
        """What a failed instantiation raises: this if no slot was free, else its failure."""
        if isinstance(exc, wasmtime.WasmtimeError) and "concurrent limit" in str(exc):
            return cls(exc)
        return _instantiation_failed(exc)


def _instantiation_failed(exc: wasmtime.WasmtimeError | GuestExportError) -> CallFailed:
    reason = _split_trap(str(exc))[0] if isinstance(exc, wasmtime.WasmtimeError) else str(exc)
    prefix = "instantiation failed: " if isinstance(exc, wasmtime.WasmtimeError) else ""
    return CallFailed("trap", prefix + reason, trap_code="instantiation")


def _cannot_grow(min_pages: int) -> CallFailed:
    return CallFailed("memory", f"cannot grow memory to wasm.memoryPages={min_pages} pages")


def _bad_allocation(allocator: str, ptr: int) -> CallFailed:
    if not ptr:
        return CallFailed("invalid_output", f"allocator {allocator!r} returned a null pointer")
    return CallFailed("invalid_output", f"allocator {allocator!r} returned {ptr}, "
                      "past the end of memory")


def _null_result() -> CallFailed:
    return CallFailed("invalid_output", "the capability returned a null result pointer without "
                      "reporting an error through cortex.error")


def _result_past_end(ptr: int, memory_bytes: int) -> CallFailed:
    return CallFailed("invalid_output", f"result pointer {ptr} is past the end of memory "
                      f"({memory_bytes} bytes)")


def _result_too_long(length: int, max_output: int) -> CallFailed:
    return CallFailed("invalid_output",
                      f"output of {length} bytes exceeds the {max_output}-byte cap")


def _result_body_past_end(length: int, at: int, memory_bytes: int) -> CallFailed:
    return CallFailed("invalid_output", f"result of {length} bytes at {at} runs past the end of "
                      f"memory ({memory_bytes} bytes)")


class Executor:
    """Holds the engines and their linkers (WASI + ``cortex`` imports), loads plugins and runs
    calls one at a time."""

    def __init__(self, *, prepared_plugins: int = PREPARED_PLUGINS) -> None:
        if not 0 <= prepared_plugins <= MAX_PREPARED_PLUGINS:
            raise ValueError(f"prepared_plugins must be 0..{MAX_PREPARED_PLUGINS}")
        #: How many plugins keep a prepared instance (0: every call instantiates on its path).
        self.prepared_plugins = prepared_plugins
        self.engines = make_engines()
        self._engine_addresses = {kind: address_of(engine) for kind, engine in self.engines.items()}
        self.linkers = {kind: self._linker(engine) for kind, engine in self.engines.items()}
        self.ticker = EpochTicker(self.engines.values())
        self._ctx: CallContext | None = None
        self._spent: Guest | None = None
        #: Prepared instances by plugin digest, least recently prepared first.
        self._prepared: collections.OrderedDict[str, _Prepared] = collections.OrderedDict()
        #: Plugins whose instance could not be prepared within PREPARE_TIMEOUT_MS: their calls
        #: instantiate on their own path, under their own limits.
        self._unpreparable: set[str] = set()
        #: Facts of unloaded plugins by digest, least recently unloaded first.
        self._described: collections.OrderedDict[str, bytes] = collections.OrderedDict()
        #: Digests of the last calls' plugins (see RECENT_CALLS_PER_PLUGIN).
        self._recent: collections.deque[str] = collections.deque(
            maxlen=RECENT_CALLS_PER_PLUGIN * max(prepared_plugins, 1))
        #: What the most recent call logged and burned, kept for failure reports.
        self.last_context: CallContext | None = None
        self.last_fuel_used = 0

    def _linker(self, engine: wasmtime.Engine) -> wasmtime.Linker:
        linker = wasmtime.Linker(engine)
        linker.define_wasi()
        i32 = wasmtime.ValType.i32()
        linker.define_func(CORTEX_MODULE, "error", wasmtime.FuncType([i32, i32], []),
                           self._host_error, access_caller=True)
        linker.define_func(CORTEX_MODULE, "log", wasmtime.FuncType([i32, i32, i32], []),
                           self._host_log, access_caller=True)
        return linker

    def load(self, path: str, digest: str, artifact: str | None = None,
             memory_init: str | None = None) -> LoadedPlugin:
        """The plugin at ``path`` (see ``sandbox.engine.load_plugin``), linked here."""
        known = self._described.pop(digest, None)
        return load_plugin(self.engines, self.linkers, path, digest, artifact, memory_init,
                           described=None if known is None else orjson.loads(known))

    # -- host imports -------------------------------------------------------------------------

    def _guest_bytes(self, caller: wasmtime.Caller, ptr: int, length: int) -> bytes:
        memory = caller.get("memory")
        if not isinstance(memory, wasmtime.Memory):
            raise HostTrap("host_no_memory")
        ptr &= U32
        length &= U32
        if ptr + length > memory.data_len(caller):  # the whole claimed range, before truncating
            raise HostTrap("host_memory_out_of_bounds")
        return read_guest(memory, caller, ptr, min(length, MAX_MESSAGE_BYTES))

    def _host_error(self, caller: wasmtime.Caller, ptr: int, length: int) -> None:
        self.ticker.catch_up()  # a guest looping through host calls keeps the ticker from the GIL
        data = self._guest_bytes(caller, ptr, length)
        if self._ctx is not None and self._ctx.error is None:
            self._ctx.error = data.decode("utf-8", "replace")

    def _host_log(self, caller: wasmtime.Caller, level: int, ptr: int, length: int) -> None:
        self.ticker.catch_up()
        data = self._guest_bytes(caller, ptr, length)
        if self._ctx is not None:
            self._ctx.add_log(LEVELS.get(level, "info"), "log", data)

    # -- one call -----------------------------------------------------------------------------

    def release(self) -> None:
        """Free the last call's store and instance; called once its reply is on its way.

        Freed explicitly (not left to reference counting): a traceback or cycle could keep a
        store alive, and its instance would hold one of the pooling allocator's few slots."""
        if self._spent is not None:
            self._spent.close()
            self._spent = None

    def _discard_prepared(self, digest: str) -> None:
        prepared = self._prepared.pop(digest, None)
        if prepared is not None:
            prepared.guest.close()

    def _new_guest(self, plugin: LoadedPlugin, ctx: CallContext, *, fuel: int, timeout_ms: float,
                   max_pages: int) -> Guest:
        self.ticker.catch_up()  # the deadline counts from now (see EpochTicker)
        guest = Guest.configured(self._engine_addresses[plugin.memory_init], fuel=fuel,
                                 ticks=ticks_for(timeout_ms), memory_bytes=max_pages * PAGE,
                                 table_elements=MAX_TABLE_ELEMENTS, instances=1,
                                 tables=MAX_TABLES, memories=1)
        if plugin.uses_wasi:
            wasi = wasmtime.WasiConfig()
            wasi.stdout_custom = lambda data: ctx.write_stream("stdout", data)
            wasi.stderr_custom = lambda data: ctx.write_stream("stderr", data)
            guest.set_wasi(wasi)
        return guest

    def prepare(self, plugin: LoadedPlugin, *, fuel: int, timeout_ms: float, min_pages: int,
                max_pages: int, max_log: int) -> None:
        """While idle, instantiate (and initialise) a fresh instance for the plugin's next call.

        It is still one brand-new instance per call, never reused: it only moves instantiation
        off the next call's critical path. Any failure just drops it; the next call then runs
        the ordinary path and reports the failure properly. A worker keeps prepared instances
        for its ``prepared_plugins`` most recently prepared plugins (none if that is 0)."""
        if not self.prepared_plugins or plugin.digest in self._unpreparable:
            return
        key = (plugin.digest, min_pages, max_pages, max_log)
        existing = self._prepared.get(plugin.digest)
        if existing is not None and existing.key == key and existing.fuel == fuel:
            self._prepared.move_to_end(plugin.digest)
            return
        self._discard_prepared(plugin.digest)
        while len(self._prepared) >= self.prepared_plugins:
            self._prepared.popitem(last=False)[1].guest.close()
        ctx = CallContext(max_log_bytes=max_log)
        guest = self._new_guest(plugin, ctx, fuel=fuel,
                                timeout_ms=min(timeout_ms, PREPARE_TIMEOUT_MS), max_pages=max_pages)
        state = _CallState()
        self._ctx = ctx
        self.ticker.start()
        started = time.perf_counter()
        try:
            self._instantiate(plugin, guest, state, min_pages=min_pages, max_pages=max_pages)
            fuel_used = fuel - guest.fuel()
        except (CallFailed, HostTrap, GuestExportError, wasmtime.Trap, wasmtime.WasmtimeError,
                _NoSlot):
            guest.close()
            if time.perf_counter() - started >= PREPARE_TIMEOUT_MS / 1000:
                self._unpreparable.add(plugin.digest)  # it ran out of time: do not wait again
            return
        finally:
            self.ticker.stop()
            self._ctx = None
        if ctx.error is not None:
            guest.close()
            return
        self._prepared[plugin.digest] = _Prepared(
            key=key, guest=guest, state=state, ctx=ctx, fuel=fuel, fuel_used=fuel_used)

    def expect(self, digest: str) -> None:
        """Count an explicit request to prepare ``digest`` as a use (see ``worth_preparing``):
        a spare warmed for a plugin then keeps preparing it from its first call on."""
        self._recent.append(digest)

    def forget(self, digest: str, unloaded: LoadedPlugin | None = None) -> None:
        """Drop what is kept about ``digest`` (its prepared instance and its recent calls); keep
        the facts of the plugin ``unloaded``, if given, for its next load."""
        if unloaded is not None:
            described = self._described
            described[digest] = orjson.dumps(unloaded.facts)
            if len(described) > DESCRIBED_UNLOADED:
                described.popitem(last=False)
        self._discard_prepared(digest)
        self._unpreparable.discard(digest)
        kept = [d for d in self._recent if d != digest]
        self._recent.clear()
        self._recent.extend(kept)

    def worth_preparing(self, plugin: LoadedPlugin) -> bool:
        """Whether the plugin of the call just made was called recently before it too, so its
        next instance is likely to be used (see ``RECENT_CALLS_PER_PLUGIN``)."""
        return bool(self.prepared_plugins) and self._recent.count(plugin.digest) > 1

    def call(
        self,
        plugin: LoadedPlugin,
        export: str,
        payload: bytes | memoryview,
        *,
        fuel: int,
        timeout_ms: float,
        min_pages: int,
        max_pages: int,
        allocator: str,
        max_output: int,
        max_log: int,
    ) -> tuple[dict[str, Any], CallContext]:
        """Run ``export`` on a fresh instance; return the frame fields and the collected logs."""
        prepared = self._prepared.pop(plugin.digest, None)
        self._recent.append(plugin.digest)
        started = time.perf_counter()
        if (prepared is not None and prepared.key == (plugin.digest, min_pages, max_pages, max_log)
                and prepared.fuel_used < fuel):
            ctx, guest, state = prepared.ctx, prepared.guest, prepared.state
            guest.set_fuel(fuel - prepared.fuel_used)  # instantiation's fuel counts against the call
            self.ticker.catch_up()
            guest.set_deadline(ticks_for(timeout_ms))
        else:
            if prepared is not None:
                prepared.guest.close()
            ctx = CallContext(max_log_bytes=max_log)
            guest = self._new_guest(plugin, ctx, fuel=fuel, timeout_ms=timeout_ms,
                                    max_pages=max_pages)
            state = _CallState()
        # Freed after the reply is sent (see release()): deleting a store costs tens of µs.
        self._spent = guest
        self._ctx = ctx
        self.ticker.start()
        call = (plugin, allocator, export, payload, min_pages, max_pages, max_output, ctx)
        try:
            try:
                output = self._execute(guest, state, *call)
            except _NoSlot:
                # A slot held by an unreachable store: collect it, then once more on a new
                # store (the failed instantiation counts against this one's instance limit).
                guest.close()
                gc.collect()
                guest = self._spent = self._new_guest(plugin, ctx, fuel=fuel,
                                                      timeout_ms=timeout_ms, max_pages=max_pages)
                state = _CallState()
                try:
                    output = self._execute(guest, state, *call)
                except _NoSlot as no_slot:
                    raise _instantiation_failed(no_slot.error) from None
        except (CallFailed, HostTrap, GuestExportError, wasmtime.Trap,
                wasmtime.WasmtimeError) as exc:
            failed = self._classify(exc, ctx)
            raise self._finish_failure(failed, ctx, state, guest, max_pages) from None
        finally:
            self.ticker.stop()
            self._ctx = None
            ctx.flush_streams()
            self.last_context = ctx
            try:
                self.last_fuel_used = fuel - guest.fuel()  # instantiation's share included
            except wasmtime.WasmtimeError:
                self.last_fuel_used = fuel
        fields: dict[str, Any] = {
            "fuel_used": self.last_fuel_used,
            "elapsed_us": int((time.perf_counter() - started) * 1e6),
        }
        if isinstance(output, memoryview):  # large: the reply's attachment, sent from guest memory
            fields[ATTACHMENT] = output
        else:
            fields["result"] = orjson.Fragment(output)
        return fields, ctx

    def _execute(self, guest: Guest, state: _CallState, plugin: LoadedPlugin, allocator: str,
                 export: str, payload: bytes | memoryview, min_pages: int, max_pages: int,
                 max_output: int, ctx: CallContext) -> bytes | memoryview:
        """The call on ``guest``: in one foreign call where the native library is built, else
        step by step; its result (see ``_read_output``)."""
        if guest_steps.native and isinstance(payload, bytes) and allocator in plugin.allocators:
            return self._invoke(plugin, guest, state, allocator, export, payload,
                                min_pages=min_pages, max_pages=max_pages, max_output=max_output,
                                ctx=ctx)
        if not state.instantiated:
            self._instantiate(plugin, guest, state, min_pages=min_pages, max_pages=max_pages)
        if allocator not in plugin.allocators:  # the supervisor checked; calls are unchecked
            raise CallFailed("trap", f"{allocator!r} is not an allocator of this module",
                             trap_code="bad_export")
        result_ptr = self._run(guest, plugin, allocator, export, payload)
        return self._read_output(guest, result_ptr, max_output, ctx)

    def _instantiate(self, plugin: LoadedPlugin, guest: Guest, state: _CallState, *,
                     min_pages: int, max_pages: int) -> None:
        """A fresh instance: instantiate (start function runs), grow to ``min_pages``, and call
        ``_initialize`` for reactors."""
        _check_start_memory(plugin, max_pages)
        try:
            guest.instantiate(plugin.pre_address, _export_number(plugin, "memory"))
        except (wasmtime.Trap, wasmtime.ExitTrap):
            raise
        except (wasmtime.WasmtimeError, GuestExportError) as exc:
            raise _NoSlot.or_failure(exc) from None
        current = guest.memory_size() // PAGE
        if min_pages > current:
            try:
                guest.grow_memory(min_pages - current)
            except wasmtime.WasmtimeError:
                raise _cannot_grow(min_pages) from None
        state.setup_bytes = guest.memory_size()
        state.instantiated = True
        if plugin.has_initialize:
            guest.call(_export_number(plugin, "_initialize"))

    def _invoke(self, plugin: LoadedPlugin, guest: Guest, state: _CallState, allocator: str,
                export: str, payload: bytes, *, min_pages: int, max_pages: int, max_output: int,
                ctx: CallContext) -> bytes | memoryview:
        """``_instantiate`` (unless prepared), ``_run`` and ``_read_output`` in one foreign call
        (``Guest.invoke``): each failure is raised as the step that failed raises it, and
        tests/test_native_invoke.py holds the two paths to the same outcomes."""
        fresh = not state.instantiated
        if fresh:
            _check_start_memory(plugin, max_pages)
        initialize = (_export_number(plugin, "_initialize") if fresh and plugin.has_initialize
                      else guest_steps.NO_EXPORT)
        args = (plugin.pre_address if fresh else 0, _export_number(plugin, "memory"), min_pages,
                initialize, _export_number(plugin, allocator), _export_number(plugin, export),
                payload, max_output)
        status = guest.invoke(*args)
        found = guest_steps.invocation
        if status == guest_steps.INSTANTIATE_FAILED:
            try:
                guest.raise_failure()
            except (wasmtime.Trap, wasmtime.ExitTrap):
                raise
            except wasmtime.WasmtimeError as exc:
                raise _NoSlot.or_failure(exc) from None
        if status == guest_steps.NO_MEMORY:
            raise _instantiation_failed(GuestExportError("the module has no linear memory"))
        if status == guest_steps.GROW_FAILED:
            try:
                guest.raise_failure()
            except wasmtime.WasmtimeError:
                raise _cannot_grow(min_pages) from None
        if fresh:
            state.setup_bytes = found.setup_bytes
            state.instantiated = True
        if status == 0 and ctx.error is None:
            length = found.length
            if length >= LARGE_FRAME_BYTES:
                return guest.view(found.result, length)
            data = ctypes.string_at(found.base + found.result, length)
            check_json(data)
            return data
        if status < guest_steps.RESULT_NULL and status != 0:
            try:
                guest.raise_for(status, args[4], args[5], len(payload), initialize=initialize)
            except BadAllocation as bad:
                raise _bad_allocation(allocator, bad.ptr) from None
        if ctx.error is not None:
            raise CallFailed("plugin_error", ctx.error)
        if status == guest_steps.RESULT_NULL:
            raise _null_result()
        if status == guest_steps.RESULT_OUT_OF_RANGE:
            raise _result_past_end(found.result, guest.memory_size())
        if status == guest_steps.RESULT_TOO_LONG:
            raise _result_too_long(found.length, max_output)
        assert status == guest_steps.RESULT_BODY_OUT_OF_RANGE, status
        raise _result_body_past_end(found.length, found.result + 4, guest.memory_size())

    def _classify(self, exc: Exception, ctx: CallContext) -> CallFailed:
        if isinstance(exc, CallFailed):
            return exc
        if isinstance(exc, GuestExportError):
            return CallFailed("trap", str(exc), trap_code="bad_export")
        if isinstance(exc, HostTrap):
            return CallFailed("trap", f"host import refused the call: {exc}", trap_code=str(exc))
        if isinstance(exc, wasmtime.ExitTrap):
            return self._classify_exit(exc, ctx)
        if isinstance(exc, wasmtime.Trap):
            return self._classify_trap(exc)
        reason, trace = _split_trap(str(exc))
        return CallFailed("trap", reason, trap_code="host", backtrace=trace)

    @staticmethod
    def _run(guest: Guest, plugin: LoadedPlugin, allocator: str, export: str,
             payload: bytes | memoryview) -> int:
        try:
            return guest.run(_export_number(plugin, allocator), _export_number(plugin, export),
                             payload)
        except BadAllocation as bad:
            raise _bad_allocation(allocator, bad.ptr) from None

    @staticmethod
    def _read_output(guest: Guest, result_ptr: int, max_output: int,
                     ctx: CallContext) -> bytes | memoryview:
        """The result's JSON: copied out and checked if small; if large, a view of guest memory
        (valid until the guest is released, see ``release``), for whoever decodes it to check
        (``jsoncheck``: the supervisor does)."""
        if ctx.error is not None:
            raise CallFailed("plugin_error", ctx.error)
        if result_ptr == 0:
            raise _null_result()
        try:
            header = guest.read(result_ptr, 4)
        except IndexError:
            raise _result_past_end(result_ptr, guest.memory_size()) from None
        length = int.from_bytes(header, "little")
        if length > max_output:
            raise _result_too_long(length, max_output)
        try:
            data = (guest.view if length >= LARGE_FRAME_BYTES else guest.read)(result_ptr + 4, length)
        except IndexError:
            raise _result_body_past_end(length, result_ptr + 4, guest.memory_size()) from None
        if isinstance(data, bytes):  # a large result is checked by the supervisor as it decodes it
            check_json(data)
        return data

    @staticmethod
    def _classify_trap(trap: wasmtime.Trap) -> CallFailed:
        reason, trace = _split_trap(str(trap))
        code = trap.trap_code
        if code == wasmtime.TrapCode.OUT_OF_FUEL:
            return CallFailed("fuel", "the call ran out of fuel", backtrace=trace)
        if code == wasmtime.TrapCode.INTERRUPT:
            return CallFailed("timeout", "the call passed its wall-clock deadline", backtrace=trace)
        name = code.name.lower() if code is not None else "unknown"
        return CallFailed("trap", reason, trap_code=name, backtrace=trace)

    @staticmethod
    def _classify_exit(exit_trap: wasmtime.ExitTrap, ctx: CallContext) -> CallFailed:
        if ctx.error is not None:
            return CallFailed("plugin_error", ctx.error)
        if exit_trap.code == 0:
            return CallFailed("invalid_output", "the plugin called proc_exit(0) without a result")
        return CallFailed("trap", f"the plugin called proc_exit({exit_trap.code})", trap_code="exit")

    @staticmethod
    def _finish_failure(failed: CallFailed, ctx: CallContext, state: _CallState,
                        guest: Guest, max_pages: int) -> CallFailed:
        """A failure after the guest grew its memory to the cap is the memory limit it really is."""
        if failed.kind in ("trap", "fuel", "timeout", "invalid_output") and state.instantiated:
            size = guest.memory_size()
            grew_to_cap = size > state.setup_bytes and size + PAGE > max_pages * PAGE
            if grew_to_cap and (failed.kind != "invalid_output" or "null" in failed.message):
                return CallFailed(
                    "memory", f"memory limit of {max_pages} pages reached ({failed.message})",
                    backtrace=failed.backtrace,
                )
        if failed.kind != "plugin_error" and ctx.error is not None and failed.kind == "trap":
            failed.message += f" (the plugin reported: {ctx.error})"
        return failed
