"""The benchmark suite: Cortex Runtime (A) against in-process wasmtime-py (B), Extism's Python SDK
(C, and C′ with a fresh instance per call) and the IPC floor (D), all in one process run.

Entry point: :func:`run_suite` (used by ``python -m benchmarks`` and tests/test_benchmarks.py).
Every scenario interleaves the backends inside each repetition (A, B, C, C′, D, then again), so
that the noise of a shared machine falls on all of them alike; figures are medians over the
repetitions, and every figure is also given as a ratio to B and to C from the same run.

A benchmark is not a test: nothing here asserts a timing. The issue's targets are evaluated
and *reported* (pass/fail) from the measured numbers.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import math
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import anyio
import orjson
import psutil

from . import build, workloads
from .build import PLUGIN_DIR, PLUGIN_NAME, PluginCopy, make_copies
from .stats import median, percentile, us
from .wasmtime_host import WasmtimeHost

A, B, C, CF, D = "A", "B", "C", "C'", "D"
BACKENDS = (A, B, C, CF, D)
BACKEND_LABELS = {
    A: "A Cortex",
    B: "B wasmtime-py",
    C: "C Extism",
    CF: "C′ Extism fresh",
    D: "D IPC floor",
}
BACKEND_DESCRIPTIONS = {
    A: "Cortex Runtime through its public API (`Runtime.call`): sandboxed worker processes, "
       "a fresh instance per call",
    B: "in-process wasmtime-py the careful way: compiled `Module`, `Linker` with WASI and the "
       "`cortex` imports, `InstancePre`, a fresh `Store` + instance per call, ABI v1",
    C: "Extism's Python SDK, in-process, the SDK's normal use: one `Plugin` called repeatedly "
       "(the instance is reused between calls)",
    CF: "Extism's Python SDK with a new `Plugin` from a `CompiledPlugin` per call (fresh "
        "instance per call, the isolation A and B give)",
    D: "a raw length-prefixed echo of the same bytes over the same kind of pipes to a child "
       "process, driven by the same event loop (IPC alone)",
}


@dataclass(frozen=True)
class Settings:
    """Iteration counts. ``quick`` keeps the whole suite to well under a minute."""

    quick: bool
    reps: int
    tiny_calls: int
    warmup_calls: int
    throughput_calls: dict[int, int]
    large_reps: int
    parse_reps: int
    cold_reps: int
    restart_reps: int
    scaling_levels: tuple[int, ...]
    scaling_calls: int
    #: Rounds alternating the top level with the one-plugin miss path (A) or one plugin (B):
    #: the two ends of the scaling target measured side by side, not minutes apart.
    scaling_rounds: int
    profile_calls: int

    @property
    def mode(self) -> str:
        return "quick" if self.quick else "full"


QUICK = Settings(quick=True, reps=3, tiny_calls=200, warmup_calls=30,
                 throughput_calls={1: 200, 8: 400, 64: 640}, large_reps=5, parse_reps=20,
                 cold_reps=3, restart_reps=3, scaling_levels=(1, 10), scaling_calls=200,
                 scaling_rounds=2, profile_calls=300)
FULL = Settings(quick=False, reps=7, tiny_calls=2000, warmup_calls=200,
                throughput_calls={1: 2000, 8: 4000, 64: 6400}, large_reps=40, parse_reps=200,
                cold_reps=10, restart_reps=15, scaling_levels=(1, 10, 100, 1000),
                scaling_calls=2000, scaling_rounds=7, profile_calls=2000)

SCENARIOS = ("tiny", "throughput", "large", "parse", "memory", "profile", "cold", "restart",
             "scaling", "uvloop")


# -- results ----------------------------------------------------------------------------------


@dataclass
class Row:
    """One line of the results table: a figure for each backend that has one."""

    id: str
    group: str
    label: str
    unit: str
    better: str  # "lower" or "higher"
    values: dict[str, float] = field(default_factory=dict)
    note: str = ""

    @property
    def ratios(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for num in (A, D):
            for den in (B, C):
                a, b = self.values.get(num), self.values.get(den)
                if a is not None and b is not None and b > 0:
                    out[f"{num}/{den}"] = a / b
        return out


class Recorder:
    """Collects rows, raw samples and details while the scenarios run."""

    def __init__(self, settings: Settings, available: dict[str, bool]) -> None:
        self.settings = settings
        self.available = available
        self.rows: list[Row] = []
        self.samples: dict[str, dict[str, list[float]]] = {}
        self.details: dict[str, Any] = {}
        self.timings: dict[str, float] = {}

    def row(self, id: str, group: str, label: str, unit: str, better: str,
            samples: dict[str, list[float]], note: str = "", reduce: str = "median") -> Row:
        values: dict[str, float] = {}
        for backend, values_of in samples.items():
            clean = [v for v in values_of if v is not None and math.isfinite(v)]
            if clean:
                values[backend] = median(clean) if reduce == "median" else max(clean)
        row = Row(id, group, label, unit, better, values, note)
        self.rows.append(row)
        self.samples[id] = {k: [round(x, 6) for x in v] for k, v in samples.items()}
        return row


def _log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def _phase(rec: Recorder, name: str) -> Iterator[None]:
    _log(f"{name} ...")
    started = time.perf_counter()
    try:
        yield
    finally:
        rec.timings[name] = round(time.perf_counter() - started, 2)
        _log(f"{name} done in {rec.timings[name]:.1f}s")


# -- the hosts under test ---------------------------------------------------------------------


class Hosts:
    """Everything the scenarios call: A's runtime, B's and C's plugins, D's echo pool."""

    def __init__(self, rt: Any, echo: Any, bplugin: Any, cplugin: Any) -> None:
        self.rt = rt
        self.echo = echo
        self.bplugin = bplugin
        self.cplugin = cplugin

    # A
    async def a_tiny(self) -> Any:
        return await self.rt.call(PLUGIN_NAME, "transform", workloads.TINY_INPUT)

    # B
    def b_tiny(self) -> Any:
        return self.bplugin.call("transform", orjson.dumps(workloads.TINY_INPUT))

    # C
    def c_tiny(self, plugin: Any = None) -> Any:
        return self.cplugin.call("transform", orjson.dumps(workloads.TINY_INPUT), plugin)

    def cf_tiny(self) -> Any:
        return self.cplugin.call_fresh("transform", orjson.dumps(workloads.TINY_INPUT))


def request_body(payload: bytes, export: str = "transform") -> bytes:
    """A frame body the size of the one Cortex sends for ``payload`` (D echoes it)."""
    return orjson.dumps({
        "op": "call", "digest": "0" * 64, "export": export, "fuel": 1_000_000_000,
        "timeout_ms": 1000.0, "min_pages": 1, "max_pages": 512, "allocator": "cortex_alloc",
        "max_output": 4194304, "max_log": 65536, "id": 1, "input_json": payload.decode(),
    })


async def _time_async(fn: Callable[[], Awaitable[Any]]) -> float:
    started = time.perf_counter()
    await fn()
    return time.perf_counter() - started


def _time_sync(fn: Callable[[], Any]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


# -- scenarios --------------------------------------------------------------------------------


async def scenario_tiny(rec: Recorder, h: Hosts, tiny_body: bytes) -> None:
    s = rec.settings
    for _ in range(s.warmup_calls):
        await h.a_tiny()
        h.b_tiny()
        if h.cplugin:
            h.c_tiny()
            h.cf_tiny()
        await h.echo.request(tiny_body)
    p50: dict[str, list[float]] = {b: [] for b in BACKENDS}
    p99: dict[str, list[float]] = {b: [] for b in BACKENDS}
    every: dict[str, list[float]] = {b: [] for b in BACKENDS}

    def keep(backend: str, samples: list[float]) -> None:
        p50[backend].append(us(median(samples)))
        p99[backend].append(us(percentile(samples, 99)))
        every[backend].extend(us(x) for x in samples)

    for _ in range(s.reps):
        keep(A, [await _time_async(h.a_tiny) for _ in range(s.tiny_calls)])
        keep(B, [_time_sync(h.b_tiny) for _ in range(s.tiny_calls)])
        if h.cplugin:
            keep(C, [_time_sync(h.c_tiny) for _ in range(s.tiny_calls)])
            keep(CF, [_time_sync(h.cf_tiny) for _ in range(max(s.tiny_calls // 2, 20))])
        keep(D, [await _time_async(lambda: h.echo.request(tiny_body)) for _ in range(s.tiny_calls)])
    rec.row("tiny_p50", "Tiny call (transform of a 33-byte input)", "Tiny call latency p50, concurrency 1",
            "µs", "lower", p50)
    rec.row("tiny_p99", "Tiny call (transform of a 33-byte input)", "Tiny call latency p99, concurrency 1",
            "µs", "lower", p99)
    rec.details["tiny_histogram_us"] = {
        b: {q: round(percentile(v, q), 1) for q in (1, 10, 25, 50, 75, 90, 99, 99.9)}
        for b, v in every.items() if v
    }


async def _a_throughput(h: Hosts, conc: int, total: int) -> float:
    per = max(total // conc, 1)

    async def loop() -> None:
        for _ in range(per):
            await h.a_tiny()

    started = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for _ in range(conc):
            tg.start_soon(loop)
    return per * conc / (time.perf_counter() - started)


async def _d_throughput(h: Hosts, conc: int, total: int, body: bytes) -> float:
    per = max(total // conc, 1)

    async def loop() -> None:
        for _ in range(per):
            await h.echo.request(body)

    started = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for _ in range(conc):
            tg.start_soon(loop)
    return per * conc / (time.perf_counter() - started)


def _threads_throughput(conc: int, total: int, make_call: Callable[[int], Callable[[], Any]]) -> float:
    """``conc`` threads, each calling its own ``make_call(i)`` (B and C are synchronous APIs:
    threads are how an application runs them concurrently; wasmtime releases the GIL while wasm
    runs, but most of a tiny call is Python)."""
    per = max(total // conc, 1)
    calls = [make_call(i) for i in range(conc)]
    if conc == 1:
        started = time.perf_counter()
        for _ in range(per):
            calls[0]()
        return per / (time.perf_counter() - started)
    barrier = threading.Barrier(conc + 1)
    errors: list[BaseException] = []

    def work(call: Callable[[], Any]) -> None:
        barrier.wait()
        try:
            for _ in range(per):
                call()
        except BaseException as exc:  # reported after the run
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise errors[0]
    return per * conc / elapsed


async def scenario_throughput(rec: Recorder, h: Hosts, tiny_body: bytes) -> None:
    """Calls/s with ``conc`` callers. A and D: ``conc`` asyncio tasks. B and C: a thread pool of
    min(conc, cores) threads, what a careful user runs a synchronous in-process API with (more
    threads only fight over the GIL: that figure is kept in the details, measured once)."""
    s = rec.settings
    cores = os.cpu_count() or 1
    uncapped: dict[str, dict[int, float]] = {B: {}, C: {}}
    for conc, total in s.throughput_calls.items():
        threads = min(conc, cores)
        samples: dict[str, list[float]] = {b: [] for b in (A, B, C, D)}
        c_instances = [h.cplugin.new_instance() for _ in range(conc)] if h.cplugin else []

        def c_call(i: int, instances: list[Any] = c_instances) -> Callable[[], Any]:
            return lambda: h.c_tiny(instances[i])

        for _ in range(s.reps):
            samples[A].append(await _a_throughput(h, conc, total))
            samples[B].append(_threads_throughput(threads, total, lambda i: h.b_tiny))
            if h.cplugin:
                samples[C].append(_threads_throughput(threads, total, c_call))
            samples[D].append(await _d_throughput(h, conc, total, tiny_body))
        if conc > threads:
            uncapped[B][conc] = _threads_throughput(conc, total, lambda i: h.b_tiny)
            if h.cplugin:
                uncapped[C][conc] = _threads_throughput(conc, total, c_call)
        rec.row(f"throughput_{conc}", "Throughput (tiny calls)", f"Throughput, concurrency {conc}",
                "calls/s", "higher", samples,
                note=f"A, D: {conc} asyncio tasks; B, C: {threads} thread(s)")
    rec.details["throughput_one_thread_per_caller"] = uncapped


async def scenario_large(rec: Recorder, h: Hosts) -> None:
    s = rec.settings
    value = workloads.large_transform_input()
    body = request_body(orjson.dumps(value))
    samples: dict[str, list[float]] = {b: [] for b in BACKENDS}
    for rep in range(s.large_reps + 1):  # the first round is a warm-up
        timings = {
            A: await _time_async(lambda: h.rt.call(PLUGIN_NAME, "transform", value)),
            B: _time_sync(lambda: h.bplugin.call("transform", orjson.dumps(value))),
            D: await _time_async(lambda: h.echo.request(body)),
        }
        if h.cplugin:
            timings[C] = _time_sync(lambda: h.cplugin.call("transform", orjson.dumps(value)))
            timings[CF] = _time_sync(lambda: h.cplugin.call_fresh("transform", orjson.dumps(value)))
        if rep:
            for backend, seconds in timings.items():
                samples[backend].append(seconds * 1e3)
    rec.row("large_transform", "Large payloads", "1 MB text transform round trip", "ms", "lower",
            samples, note="input {text: 1,000,000 ASCII chars, mode: reverse} as a Python dict; "
                          "result decoded")


async def scenario_parse(rec: Recorder, h: Hosts) -> None:
    s = rec.settings
    document = workloads.json_document()
    body = request_body(document, "parse")
    samples: dict[str, list[float]] = {b: [] for b in BACKENDS}
    for rep in range(s.parse_reps + 1):
        timings = {
            A: await _time_async(lambda: h.rt.call_json(PLUGIN_NAME, "parse", document)),
            B: _time_sync(lambda: h.bplugin.call("parse", document)),
            D: await _time_async(lambda: h.echo.request(body)),
        }
        if h.cplugin:
            timings[C] = _time_sync(lambda: h.cplugin.call("parse", document))
            timings[CF] = _time_sync(lambda: h.cplugin.call_fresh("parse", document))
        if rep:
            for backend, seconds in timings.items():
                samples[backend].append(seconds * 1e3)
    rec.row("parse_100k", "Large payloads", "100 KB JSON parse round trip", "ms", "lower", samples,
            note=f"a {len(document):,}-byte document given as JSON text (A: Runtime.call_json)")


def _rss(pid: int) -> int | None:
    try:
        return int(psutil.Process(pid).memory_info().rss)
    except psutil.Error:
        return None


async def scenario_profile(rec: Recorder, h: Hosts) -> None:
    """Where A's time goes: the same tiny call measured layer by layer."""
    s = rec.settings
    n = s.profile_calls
    payload = orjson.dumps(workloads.TINY_INPUT)
    out: dict[str, Any] = {}
    # 1. the public API
    out["runtime_call_us"] = us(median([await _time_async(h.a_tiny) for _ in range(n)]))
    # 2. one request/reply over the worker protocol, bypassing Runtime.call and the pool
    #    (private API: skipped if it changed)
    try:
        rt = h.rt
        info = rt.plugins[PLUGIN_NAME]
        limits = info.manifest.limits_for("transform")
        request = {
            "op": "call", "digest": info.sha256, "export": "transform", "fuel": limits.fuel,
            "timeout_ms": float(limits.timeout_ms), "min_pages": info.manifest.memory_pages,
            "max_pages": info.manifest.max_memory_pages, "allocator": info.allocator_export,
            "max_output": info.manifest.max_output_bytes, "max_log": info.manifest.max_log_bytes,
        }
        raw: list[float] = []
        elapsed: list[float] = []
        # A worker that has the plugin (the pool sends its calls to one that has it; another
        # may never have loaded it)
        worker = await rt._pool.acquire(prefer=info.sha256)
        try:
            for _ in range(n):
                started = time.perf_counter()
                reply = await worker.request(request, payload=payload)
                raw.append(time.perf_counter() - started)
                if "elapsed_us" not in reply:
                    raise RuntimeError(f"the worker answered {reply!r}"[:300])
                elapsed.append(float(reply["elapsed_us"]))
        finally:
            rt._pool.release(worker)
        out["worker_request_us"] = us(median(raw))
        out["worker_elapsed_us"] = median(elapsed)
    except Exception as exc:  # pragma: no cover - depends on private internals
        out["worker_request_error"] = repr(exc)
    # 3. the worker's executor in this process: what a worker does per call, minus IPC (the
    #    executor is internal and evolving: whatever of it is there is used, else skipped)
    try:
        out.update(_executor_in_process(payload, n, s.warmup_calls))
    except Exception as exc:  # pragma: no cover
        out["executor_error"] = repr(exc)
    # 4. B's per-call steps with the public wasmtime-py API, one by one
    try:
        out["b_parts_us"] = _wasmtime_parts(payload, n)
    except Exception as exc:  # pragma: no cover
        out["b_parts_error"] = repr(exc)
    # 5. the supervisor side under cProfile: which Python functions A's calls spend time in
    out["supervisor_profile"] = await _supervisor_profile(h, min(n, 500))
    # 6. the same calls through a pool of one worker (and no spare): sequential calls then always
    #    reach the same, recently busy worker instead of alternating between workers
    try:
        from cortex_runtime import Runtime

        async with Runtime(cache_dir=h.rt.cache_dir, workers=1, spare_workers=0) as single:
            await single.load(PLUGIN_DIR)
            for _ in range(s.warmup_calls):
                await single.call(PLUGIN_NAME, "transform", workloads.TINY_INPUT)
            out["runtime_call_one_worker_us"] = us(median([
                await _time_async(lambda: single.call(PLUGIN_NAME, "transform", workloads.TINY_INPUT))
                for _ in range(n)]))
        out["runtime_call_default_pool_again_us"] = us(median([await _time_async(h.a_tiny)
                                                               for _ in range(n)]))
    except Exception as exc:  # pragma: no cover
        out["one_worker_error"] = repr(exc)
    out["b_call_us"] = us(median([_time_sync(h.b_tiny) for _ in range(n)]))
    tiny_body = request_body(payload)
    out["d_echo_us"] = us(median([await _time_async(lambda: h.echo.request(tiny_body))
                                  for _ in range(n)]))
    rec.details["profile"] = out


def _executor_in_process(payload: bytes, n: int, warmup: int) -> dict[str, float]:
    """``sandbox.execute.Executor.call`` in this process, as a worker runs it (including its
    idle-time ``prepare`` and post-reply ``release`` if the executor has them, untimed)."""
    from sandbox.execute import Executor

    wasm_path = build.CORTEX_WASM
    digest = hashlib.sha256(wasm_path.read_bytes()).hexdigest()
    executor = Executor()
    loaded = executor.load(str(wasm_path), digest)
    limits = {"fuel": 1_000_000_000, "timeout_ms": 1000.0, "min_pages": 1, "max_pages": 512,
              "max_log": 65536}
    prepare = getattr(executor, "prepare", None)
    release = getattr(executor, "release", None)

    def run(with_prepare: bool) -> float:
        if with_prepare and prepare is not None:
            prepare(loaded, **limits)
        started = time.perf_counter()
        executor.call(loaded, "transform", payload, allocator="cortex_alloc",
                      max_output=4 << 20, **limits)
        took = time.perf_counter() - started
        if release is not None:
            release()
        return took

    for _ in range(warmup):
        run(True)
    out = {"executor_call_us": us(median([run(False) for _ in range(n)]))}
    if prepare is not None:
        out["executor_call_prepared_us"] = us(median([run(True) for _ in range(n)]))
    return out


def _wasmtime_parts(payload: bytes, n: int) -> dict[str, float]:
    """B's fresh-instance call, step by step (medians, µs), with the public wasmtime-py API."""
    import wasmtime

    bhost = WasmtimeHost()
    plugin = bhost.load(build.CORTEX_WASM.read_bytes())
    parts: dict[str, list[float]] = {k: [] for k in (
        "store_setup", "instantiate", "initialize", "alloc_and_write", "capability",
        "read_and_decode", "store_free")}
    for _ in range(n + 20):
        t0 = time.perf_counter()
        store = wasmtime.Store(bhost.engine)
        store.set_fuel(1_000_000_000)
        store.set_epoch_deadline(1 << 62)
        store.set_limits(memory_size=512 * 65536)
        store.set_wasi(wasmtime.WasiConfig())
        t1 = time.perf_counter()
        instance = plugin.pre.instantiate(store)
        exports = instance.exports(store)
        memory = exports["memory"]
        t2 = time.perf_counter()
        exports["_initialize"](store)
        t3 = time.perf_counter()
        ptr = exports["cortex_alloc"](store, len(payload)) & 0xFFFFFFFF
        memory.write(store, payload, ptr)
        t4 = time.perf_counter()
        result = exports["transform"](store, ptr, len(payload)) & 0xFFFFFFFF
        t5 = time.perf_counter()
        length = int.from_bytes(memory.read(store, result, result + 4), "little")
        orjson.loads(memory.read(store, result + 4, result + 4 + length))
        t6 = time.perf_counter()
        del exports, memory, instance, store
        t7 = time.perf_counter()
        for key, a, b in (("store_setup", t0, t1), ("instantiate", t1, t2), ("initialize", t2, t3),
                          ("alloc_and_write", t3, t4), ("capability", t4, t5),
                          ("read_and_decode", t5, t6), ("store_free", t6, t7)):
            parts[key].append(b - a)
    return {k: round(us(median(v[20:])), 2) for k, v in parts.items()}


async def _supervisor_profile(h: Hosts, n: int) -> list[dict[str, Any]]:
    """cProfile of ``n`` tiny A calls in this (the supervisor's) process: top functions by own
    time, excluding the event loop's wait for I/O. cProfile inflates every Python call, so the
    shares, not the absolute figures, are what it tells."""
    import cProfile
    import pstats

    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(n):
        await h.a_tiny()
    profiler.disable()
    stats = pstats.Stats(profiler)
    entries = []
    total = 0.0
    for (filename, line, func), (_cc, nc, tt, ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        if func in ("poll", "select", "epoll.poll") or "method 'poll'" in func or "method 'select'" in func:
            continue
        total += tt
        entries.append((tt, nc, ct, f"{Path(filename).name}:{line}({func})"))
    entries.sort(reverse=True)
    return [{"function": name, "calls_per_call": round(nc / n, 1), "own_us_per_call": round(tt / n * 1e6, 2),
             "share": round(tt / total, 3) if total else 0.0}
            for tt, nc, ct, name in entries[:15]]


async def scenario_cold(rec: Recorder, scratch: Path, available_c: bool) -> None:
    """First call after load, with a fresh and with a warm on-disk compiled-code cache."""
    from cortex_runtime import Runtime

    s = rec.settings
    r = s.cold_reps
    copies = make_copies(scratch / "cold-copies", 6 * r, tag="cold")
    groups = {name: copies[i * r:(i + 1) * r]
              for i, name in enumerate(("a_cold", "a_warm", "b_cold", "b_warm", "c_cold", "c_warm"))}
    cold: dict[str, list[float]] = {b: [] for b in (A, B, C)}
    warm: dict[str, list[float]] = {b: [] for b in (A, B, C)}
    detail: dict[str, Any] = {"A_cold": [], "A_warm": []}

    async def a_run(rt: Any, copy: PluginCopy) -> tuple[float, dict[str, Any]]:
        t0 = time.perf_counter()
        info = await rt.load(copy.folder)
        t1 = time.perf_counter()
        await rt.call(copy.name, "transform", workloads.TINY_INPUT)
        t2 = time.perf_counter()
        detail_entry = {"load_ms": (t1 - t0) * 1e3, "first_call_ms": (t2 - t1) * 1e3,
                        "worker_load_ms": info.facts.get("load_ms"), "cache": info.facts.get("cache")}
        return t2 - t0, detail_entry

    # A, fresh cache: a new cache_dir, plugins never seen
    async with Runtime(cache_dir=scratch / "cold-a-fresh") as rt:
        await rt.load(PLUGIN_DIR)
        await rt.call(PLUGIN_NAME, "transform", workloads.TINY_INPUT)
        for copy in groups["a_cold"]:
            total, entry = await a_run(rt, copy)
            cold[A].append(total * 1e3)
            detail["A_cold"].append(entry)
        compiler = rt.compiler_pid  # it compiled every copy; it exits once idle
        if compiler:
            rec.details.setdefault("memory", {})["A_compiler_rss"] = _rss(compiler)
    # A, warm cache: a first runtime compiles the copies and stores their artifacts; a second
    # runtime (new workers, same cache_dir) loads them again
    warm_dir = scratch / "cold-a-warm"
    async with Runtime(cache_dir=warm_dir) as rt:
        for copy in groups["a_warm"]:
            await rt.load(copy.folder)
    async with Runtime(cache_dir=warm_dir) as rt:
        await rt.load(PLUGIN_DIR)
        await rt.call(PLUGIN_NAME, "transform", workloads.TINY_INPUT)
        for copy in groups["a_warm"]:
            total, entry = await a_run(rt, copy)
            warm[A].append(total * 1e3)
            detail["A_warm"].append(entry)

    # B: compile + InstancePre + first call; warm: deserialise a serialised module instead
    bhost = WasmtimeHost()
    payload = orjson.dumps(workloads.TINY_INPUT)
    bhost.load(build.CORTEX_WASM.read_bytes()).call("transform", payload)
    for copy in groups["b_cold"]:
        wasm = copy.cortex_wasm
        cold[B].append(_time_sync(lambda w=wasm: bhost.load(w).call("transform", payload)) * 1e3)
    import wasmtime

    serialized = []
    for copy in groups["b_warm"]:
        path = scratch / f"{copy.name}.cwasm"
        path.write_bytes(wasmtime.Module(bhost.engine, copy.cortex_wasm).serialize())
        serialized.append(path)
    for path in serialized:
        warm[B].append(_time_sync(lambda p=path: bhost.load_serialized(p).call("transform", payload)) * 1e3)

    # C: CompiledPlugin + Plugin + first call; warm: Extism's wasmtime disk cache already holds it
    if available_c:
        from .extism_host import ExtismPluginHost

        ExtismPluginHost(build.EXTISM_WASM.read_bytes()).call("transform", payload)
        for copy in groups["c_cold"]:
            wasm = copy.extism_wasm
            cold[C].append(_time_sync(lambda w=wasm: ExtismPluginHost(w).call("transform", payload)) * 1e3)
        for copy in groups["c_warm"]:
            ExtismPluginHost(copy.extism_wasm)  # compiles and fills the disk cache
        gc.collect()
        for copy in groups["c_warm"]:
            wasm = copy.extism_wasm
            warm[C].append(_time_sync(lambda w=wasm: ExtismPluginHost(w).call("transform", payload)) * 1e3)
    rec.row("cold_fresh", "Plugin cold start (load + first call)",
            "Cold start, fresh compiled cache", "ms", "lower", cold,
            note="A: Runtime.load + first call with a new cache_dir; B: Module() + InstancePre + "
                 "call; C: CompiledPlugin + Plugin + call")
    rec.row("cold_warm", "Plugin cold start (load + first call)",
            "Cold start, warm compiled cache", "ms", "lower", warm,
            note="A: same cache_dir, new workers; B: Module.deserialize_file; C: Extism's "
                 "wasmtime disk cache")
    rec.details["cold_start"] = detail


async def _wait_for_pool(rt: Any, expected: int, timeout: float = 20.0) -> None:
    """Until the pool has its workers and spare again (a replacement boots in ~0.3 s), then a
    moment for the new spare's warm-up (it loads the recently used plugins)."""
    deadline = time.monotonic() + timeout
    while len(rt.worker_pids) < expected and time.monotonic() < deadline:  # noqa: ASYNC110
        await anyio.sleep(0.02)
    await anyio.sleep(0.5)


async def scenario_restart(rec: Recorder, scratch: Path, cplugin: Any) -> None:
    """The next call after a trap (the trapped worker is killed; a spare takes its place)."""
    from cortex_runtime import PluginTrap, Runtime

    s = rec.settings
    nxt: dict[str, list[float]] = {b: [] for b in (A, B, C)}
    nxt_default: dict[str, list[float]] = {A: []}
    baseline: dict[str, float] = {}
    detail: dict[str, Any] = {}

    async def measure(rt: Any, out: list[float], key: str) -> None:
        await rt.load(PLUGIN_DIR)
        for _ in range(50):
            await rt.call(PLUGIN_NAME, "transform", workloads.TINY_INPUT)
        base = [await _time_async(lambda: rt.call(PLUGIN_NAME, "transform", workloads.TINY_INPUT))
                for _ in range(100)]
        baseline[key] = us(median(base))
        expected = len(rt.worker_pids)
        after: list[list[float]] = []
        paused: list[list[float]] = []
        for _ in range(s.restart_reps):
            # The control: the same pause (waiting for the pool to be whole again) without a
            # trap. The first call after any pause is slower (idle CPUs, cold caches), and that
            # is no restart cost.
            for trap in (False, True):
                await _wait_for_pool(rt, expected)
                if trap:
                    with contextlib.suppress(PluginTrap):
                        await rt.call(PLUGIN_NAME, "trap", {})
                following = [await _time_async(lambda: rt.call(PLUGIN_NAME, "transform",
                                                                workloads.TINY_INPUT))
                             for _ in range(3)]
                (after if trap else paused).append([round(us(x), 1) for x in following])
            out.append(after[-1][0])
        detail[key] = {"baseline_p50_us": baseline[key], "next_three_calls_us": after,
                       "after_pause_without_trap_us": paused,
                       "after_pause_p50_us": median([p[0] for p in paused]),
                       "stats": dict(rt.stats)}

    # Traps on purpose, again and again: raise the quarantine threshold and the restart
    # intensity, which exist to stop crash loops, so that every trap takes the restart path.
    protection = {"quarantine_after": 1_000_000, "max_restarts": 1_000_000}
    # one worker + one spare: the next call necessarily runs on the spare
    async with Runtime(cache_dir=scratch / "restart", workers=1, spare_workers=1, **protection) as rt:
        await measure(rt, nxt[A], "A_1_worker")
    # the default pool (a worker per core + one spare)
    async with Runtime(cache_dir=scratch / "restart", **protection) as rt:
        await measure(rt, nxt_default[A], "A_default_pool")

    bhost = WasmtimeHost()
    bplugin = bhost.load(build.CORTEX_WASM.read_bytes())
    payload = orjson.dumps(workloads.TINY_INPUT)
    for _ in range(50):
        bplugin.call("transform", payload)
    baseline[B] = us(median([_time_sync(lambda: bplugin.call("transform", payload)) for _ in range(100)]))
    import wasmtime

    for _ in range(s.restart_reps):
        with contextlib.suppress(wasmtime.Trap):
            bplugin.call("trap", b"{}")
        nxt[B].append(us(_time_sync(lambda: bplugin.call("transform", payload))))
    if cplugin is not None:
        from .extism_host import error_type

        baseline[C] = us(median([_time_sync(lambda: cplugin.call("transform", payload))
                                 for _ in range(100)]))
        for _ in range(s.restart_reps):
            with contextlib.suppress(error_type()):
                cplugin.call("trap", b"{}")
            nxt[C].append(us(_time_sync(lambda: cplugin.call("transform", payload))))
    rec.row("restart_next", "Worker restart", "Next call after a trap (1 worker + 1 spare)", "µs",
            "lower", nxt, note="A: the trapped worker is killed, the spare takes the call; "
                               "B, C: the same in-process plugin object")
    rec.row("restart_next_default", "Worker restart", "Next call after a trap (default pool)", "µs",
            "lower", {A: nxt_default[A], B: nxt[B], C: nxt[C]},
            note="A: 2 workers + 1 spare; the next call may go to the healthy worker")
    detail["baseline_p50_us"] = baseline
    rec.details["restart"] = detail


async def scenario_memory(rec: Recorder, h: Hosts) -> None:
    worker_rss = [r for r in (_rss(pid) for pid in h.rt.worker_pids) if r]
    echo_rss = [r for r in (_rss(pid) for pid in h.echo.pids) if r]
    rec.details["memory"] = {"A_worker_rss": worker_rss, "D_child_rss": echo_rss,
                             "suite_process_rss": _rss(os.getpid())}


def _run_probe(host: str, copies_dir: Path, levels: tuple[int, ...], calls: int,
               rounds: int = 0) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.probe", "--host", host, "--copies", str(copies_dir),
         "--levels", ",".join(map(str, levels)), "--calls", str(calls), "--rounds", str(rounds)],
        capture_output=True, text=True, cwd=str(build.ROOT), check=False, env=dict(os.environ),
    )
    if proc.returncode != 0:
        raise RuntimeError(f"probe {host} failed: {proc.stderr[-2000:]}")
    return orjson.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


async def scenario_scaling(rec: Recorder, scratch: Path, available_c: bool) -> None:
    """1, 10, 100, 1,000 distinct plugins loaded; tiny calls spread round-robin over all of them."""
    from cortex_runtime import Runtime
    from sandbox.engine import POOL_SLOTS

    s = rec.settings
    levels = s.scaling_levels
    copies_dir = scratch / "scale-copies"
    copies = make_copies(copies_dir, levels[-1], tag="scale")
    a_levels: list[dict[str, Any]] = []
    async with Runtime(cache_dir=scratch / "scale-a") as rt:
        # Instances come from each worker's pooling-allocator slots, which keep the memory image
        # of the module they last held (a module with more than a few KiB of data has one), and
        # workers prepare instances for fewer plugins: past this many plugins, round-robin
        # misses every cache.
        cache_capacity = POOL_SLOTS * len(rt.worker_pids)
        loaded: list[PluginCopy] = []
        for level in levels:
            load_times: list[float] = []
            first_calls: list[float] = []
            new = copies[len(loaded):level]
            for copy in new:
                load_times.append(await _time_async(lambda c=copy: rt.load(c.folder)))
            for copy in new:
                # Its first call, timed, then one more (sequential calls stay on one worker).
                first_calls.append(await _time_async(
                    lambda c=copy: rt.call(c.name, "transform", workloads.TINY_INPUT)))
                await rt.call(copy.name, "transform", workloads.TINY_INPUT)
            loaded.extend(new)
            await _round_robin(rt, loaded, min(s.warmup_calls, s.scaling_calls))
            samples = await _round_robin(rt, loaded, s.scaling_calls)
            a_levels.append({
                "plugins": level, "load_ms_median": median(load_times) * 1e3,
                "first_call_us_median": us(median(first_calls)),
                "p50_us": us(median(samples)), "p99_us": us(percentile(samples, 99)),
                "worker_rss": {str(pid): _rss(pid) for pid in rt.worker_pids},
                "pool_stats": dict(rt.stats),
            })
            _log(f"  A with {level} plugins: p50 {a_levels[-1]['p50_us']:.0f} µs")
        # The miss path: one plugin, no instance made ahead, so every call instantiates on its
        # path (what round-robin over more plugins than the bounded caches hold costs each call).
        # It and the top level are the target's two ends: measured in alternating rounds, so
        # that a phase of the shared machine falls on both, and their medians reported.
        # So are calls over the first level past the caches' capacity, among the same plugins.
        top_level = a_levels[-1]
        past = next((level for level in levels[:-1] if level > cache_capacity), None)
        top_rounds: list[float] = []
        miss_rounds: list[float] = []
        past_rounds: list[float] = []
        async with Runtime(cache_dir=scratch / "scale-a", prepared_instances=0) as miss_rt:
            await miss_rt.load(copies[0].folder)
            await _round_robin(miss_rt, copies[:1], min(s.warmup_calls, s.scaling_calls))
            for turn in range(s.scaling_rounds):
                sides = [(rt, loaded, top_rounds), (miss_rt, copies[:1], miss_rounds)]
                if past is not None:
                    sides.insert(1, (rt, loaded[:past], past_rounds))
                for runtime, plugins, out in sides[::-1] if turn % 2 else sides:
                    out.append(us(median(await _round_robin(runtime, plugins, s.scaling_calls))))
        top_level["p50_us_sweep"], top_level["p50_us"] = top_level["p50_us"], median(top_rounds)
        top_level["p50_us_rounds"] = top_rounds
    miss_p50 = median(miss_rounds)
    _log(f"  A with 1 plugin, no prepared instances: p50 {miss_p50:.0f} µs; with "
         f"{top_level['plugins']:,} plugins {top_level['p50_us']:.0f} µs "
         f"({s.scaling_rounds} rounds each)")
    bounded = await _scaling_again(copies, s.scaling_calls, scratch / "scale-a")
    _log(f"  A with {len(copies)} plugins, {bounded['max_resident_plugins']} kept per worker: "
         f"p50 {bounded['p50_us']:.0f} µs")
    restarted = await _scaling_again(copies, s.scaling_calls, scratch / "scale-a", bound=False)
    _log(f"  A with {len(copies)} plugins loaded from a warm cache: p50 {restarted['p50_us']:.0f} µs")
    b_result = _run_probe("wasmtime", copies_dir, levels, s.scaling_calls, s.scaling_rounds)
    _log("  B probe done")
    c_result = _run_probe("extism", copies_dir, levels, s.scaling_calls) if available_c else None
    if c_result:
        _log("  C probe done")
    rounds_note = {
        0: f"; B: median of {s.scaling_rounds} rounds alternating with B over every plugin",
        len(levels) - 1: f"; median of {s.scaling_rounds} rounds alternating with A's miss path "
                         "(A) or with one plugin (B)",
    } if s.scaling_rounds and len(levels) > 1 else {}
    for index, level in enumerate(levels):
        samples_p50 = {A: [a_levels[index]["p50_us"]], B: [b_result["levels"][index]["p50_us"]]}
        if c_result:
            samples_p50[C] = [c_result["levels"][index]["p50_us"]]
        rec.row(f"scale_p50_{level}", "Many loaded plugins",
                f"Tiny call p50 with {level:,} plugin{'s' if level > 1 else ''} loaded", "µs",
                "lower", samples_p50,
                note="calls spread round-robin over every loaded plugin" + rounds_note.get(index, ""))
    top = levels[-1]
    first = {A: [a_levels[-1]["first_call_us_median"]],
             B: [b_result["levels"][-1]["first_call_us_median"]]}
    loads = {A: [a_levels[-1]["load_ms_median"]], B: [b_result["levels"][-1]["load_ms_median"]]}
    if c_result:
        first[C] = [c_result["levels"][-1]["first_call_us_median"]]
        loads[C] = [c_result["levels"][-1]["load_ms_median"]]
    rec.row(f"scale_load_{top}", "Many loaded plugins",
            f"Load one plugin (median of the last {top - (levels[-2] if len(levels) > 1 else 0):,}"
            f" loaded, {top:,} in all)", "ms", "lower", loads,
            note="A: Runtime.load (compiles in a worker, stores the artifact); B: Module + "
                 "InstancePre; C: CompiledPlugin + Plugin")
    rec.row(f"scale_first_{top}", "Many loaded plugins",
            f"First call of a newly loaded plugin ({top:,} loaded)", "µs", "lower", first,
            note="A: the call right after Runtime.load returned (a new copy, compiled: the worker "
                 "that loaded it has its first instance made)")
    rec.row("scale_p50_1_miss", "Many loaded plugins",
            "Tiny call p50 with 1 plugin loaded, no instance made ahead (every call instantiates)",
            "µs", "lower", {A: [miss_p50], B: [b_result["levels"][0]["p50_us"]]},
            note="A: Runtime(prepared_instances=0): the cost of a miss of the bounded caches")
    kept = bounded["max_resident_plugins"]
    rec.row(f"scale_p50_{top}_bounded", "Many loaded plugins",
            f"Tiny call p50 with {top:,} plugins loaded, each worker keeping {kept:,}",
            "µs", "lower", {A: [bounded["p50_us"]], B: [b_result["levels"][-1]["p50_us"]]},
            note=f"A: Runtime(max_resident_plugins={kept}): round-robin, so every call loads its "
                 "plugin again from the compiled cache (a miss of that bounded cache); B keeps "
                 "every module")
    rec.row(f"scale_p50_{top}_restarted", "Many loaded plugins",
            f"Tiny call p50 with {top:,} plugins loaded from a warm compiled cache",
            "µs", "lower", {A: [restarted["p50_us"]], B: [b_result["levels"][-1]["p50_us"]]},
            note="A: a new runtime on the same cache loads every copy (each load sent ahead to a "
                 "worker without waiting for its reply, as when an application starts again), "
                 "then the same round-robin")
    rec.details["scaling"] = {"A": a_levels, "B": b_result, "C": c_result,
                              "A_miss_path_p50_us": miss_p50, "A_miss_path_rounds": miss_rounds,
                              "A_past_caches_rounds": {"plugins": past, "p50_us_rounds": past_rounds}
                              if past_rounds else None,
                              "A_cache_capacity": cache_capacity, "A_bounded": bounded,
                              "A_restarted": restarted}


async def _round_robin(rt: Any, plugins: list[PluginCopy], calls: int) -> list[float]:
    """``calls`` tiny calls spread round-robin over ``plugins``, one at a time: their times."""
    samples: list[float] = []
    for i in range(calls):
        name = plugins[i % len(plugins)].name
        samples.append(await _time_async(
            lambda n=name: rt.call(n, "transform", workloads.TINY_INPUT)))
    return samples


async def _scaling_again(copies: list[PluginCopy], calls: int, cache: Path, *,
                           bound: bool = True) -> dict[str, Any]:
    """Round-robin over every copy with a new runtime on the warm compiled cache, whose workers
    keep a tenth of them (``bound``: each call misses the bounded set of plugins a worker keeps
    and loads its plugin again) or every one. Its p50, and the workers' RSS."""
    from cortex_runtime import Runtime

    kept = max(1, len(copies) // 10) if bound else None
    async with Runtime(cache_dir=cache, max_resident_plugins=kept) as rt:
        for copy in copies:
            await rt.load(copy.folder)
        await _round_robin(rt, copies, len(copies))
        samples = await _round_robin(rt, copies, calls)
        return {"max_resident_plugins": kept, "p50_us": us(median(samples)),
                "p99_us": us(percentile(samples, 99)),
                "worker_rss": {str(pid): _rss(pid) for pid in rt.worker_pids},
                "unloaded": rt.stats.get("unloaded", 0)}


def _memory_rows(rec: Recorder) -> None:
    mem = rec.details.get("memory", {})
    scaling = rec.details.get("scaling", {})
    mb = 1e6
    per_worker: dict[str, list[float]] = {}
    largest: dict[str, list[float]] = {}
    if mem.get("A_worker_rss"):
        per_worker[A] = [median(mem["A_worker_rss"]) / mb]
        largest[A] = [max(mem["A_worker_rss"]) / mb]
    if mem.get("D_child_rss"):
        per_worker[D] = [median(mem["D_child_rss"]) / mb]
    b_res, c_res = scaling.get("B"), scaling.get("C")
    if b_res:
        per_worker[B] = [b_res["levels"][0]["rss"] / mb]
    if c_res:
        per_worker[C] = [c_res["levels"][0]["rss"] / mb]
    if per_worker:
        rec.row("rss_worker", "Memory", "RSS per worker process (1 plugin loaded)", "MB", "lower",
                per_worker, note="A: median over the pool's processes (workers and spare); B, C: a "
                                 "Python process hosting the plugin in-process; D: the echo child "
                                 "(a bare Python process)")
    if largest:
        rec.row("rss_worker_max", "Memory", "RSS of the largest worker (1 plugin loaded)", "MB",
                "lower", largest, note="A: serving workers only deserialise compiled modules")
    if mem.get("A_compiler_rss"):
        rec.row("rss_compiler", "Memory",
                "RSS of the compiler process (after compiling the cold-start copies)", "MB", "lower",
                {A: [mem["A_compiler_rss"] / mb]},
                note="A: the process that compiles cache misses; it runs no guest code and exits "
                     "after 10 s without work")
    a_levels = scaling.get("A") or []
    if len(a_levels) >= 2 and b_res:
        # The widest span over which some worker lived (a worker past max_worker_rss is recycled).
        first_level, last_level = a_levels[0], a_levels[-1]
        slopes: list[float] = []
        for candidate in reversed(a_levels[1:]):
            span = candidate["plugins"] - first_level["plugins"]
            slopes = [(rss - first_level["worker_rss"][pid]) / span / mb
                      for pid, rss in candidate["worker_rss"].items()
                      if rss and first_level["worker_rss"].get(pid)]
            if slopes:
                last_level = candidate
                break
        per_plugin: dict[str, list[float]] = {}
        if slopes:
            per_plugin[A] = [max(slopes)]
        for key, res in ((B, b_res), (C, c_res)):
            if res:
                lv = res["levels"]
                span_plugins = lv[-1]["plugins"] - lv[0]["plugins"]
                per_plugin[key] = [(lv[-1]["rss"] - lv[0]["rss"]) / span_plugins / mb]
        # a plugin costs at least something; clamp tiny negative noise to keep the unit positive
        per_plugin = {k: [max(v[0], 1e-3)] for k, v in per_plugin.items()}
        rec.row("rss_per_plugin", "Memory", "RSS per additional loaded plugin", "MB", "lower",
                per_plugin, note=f"A: slope from {first_level['plugins']} to {last_level['plugins']} "
                                 "plugins, per worker (each worker holds every plugin it ran); B, C: "
                                 "from the fewest to the most plugins")


# -- the run ----------------------------------------------------------------------------------


def machine_info() -> dict[str, Any]:
    import platform
    from importlib.metadata import PackageNotFoundError, version

    def ver(name: str) -> str | None:
        try:
            return version(name)
        except PackageNotFoundError:
            return None

    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_total = psutil.virtual_memory().total
    git = "?"
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=build.ROOT,
                              capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "cortex_runtime", "sandbox"],
                               cwd=build.ROOT, capture_output=True, text=True, check=True).stdout
        git = head + (" + uncommitted changes in cortex_runtime/ or sandbox/" if dirty.strip() else "")
    return {
        "git": git,
        "cpu": cpu, "cores": os.cpu_count(), "memory_gb": round(mem_total / 1e9, 1),
        "os": f"{platform.system()} {platform.release()}", "python": platform.python_version(),
        "wasmtime_py": ver("wasmtime"), "extism": ver("extism"), "extism_sys": ver("extism-sys"),
        "anyio": ver("anyio"), "orjson": ver("orjson"), "cortex_runtime": ver("cortex-runtime"),
        "virtualised": Path("/sys/hypervisor").exists() or "hypervisor" in
        (Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""),
    }


def _check_correctness(h: Hosts, results: dict[str, Any]) -> None:
    """Every host must compute the same thing before anything is timed."""
    expected_tiny = workloads.expected_transform(workloads.TINY_INPUT)
    document = workloads.json_document()
    expected_parse = workloads.expected_parse_summary(document)
    for backend, value in results.items():
        if backend.endswith("tiny") and value != expected_tiny:
            raise AssertionError(f"{backend} returned {value!r}, expected {expected_tiny!r}")
        if backend.endswith("parse") and value != expected_parse:
            raise AssertionError(f"{backend} returned {value!r}, expected {expected_parse!r}")


async def _main(settings: Settings, scratch: Path, only: set[str], available_c: bool,
                rec: Recorder) -> None:
    from cortex_runtime import Runtime

    from .floor import echo_pool

    payload = orjson.dumps(workloads.TINY_INPUT)
    tiny_body = request_body(payload)
    bplugin = WasmtimeHost().load(build.CORTEX_WASM.read_bytes())
    cplugin = None
    if available_c:
        from .extism_host import ExtismPluginHost

        cplugin = ExtismPluginHost(build.EXTISM_WASM.read_bytes())

    main_scenarios = {"tiny", "throughput", "large", "parse", "memory", "profile"}
    if only & main_scenarios:
        async with Runtime(cache_dir=scratch / "main") as rt:
            await rt.load(PLUGIN_DIR)
            rec.details["runtime"] = {"workers": len(rt.worker_pids),
                                      "confinement": {ly["name"]: ly["active"] for ly in rt.confinement}}
            # as many echo children as the runtime has workers (one per core by default)
            async with echo_pool(os.cpu_count() or 1) as echo:
                h = Hosts(rt, echo, bplugin, cplugin)
                document = workloads.json_document()
                checks = {
                    "A tiny": await h.a_tiny(), "B tiny": h.b_tiny(),
                    "A parse": await rt.call_json(PLUGIN_NAME, "parse", document),
                    "B parse": bplugin.call("parse", document),
                }
                if cplugin:
                    checks.update({"C tiny": h.c_tiny(), "C' tiny": h.cf_tiny(),
                                   "C parse": cplugin.call("parse", document)})
                _check_correctness(h, checks)
                big = workloads.large_transform_input(20_000)
                want = workloads.expected_transform(big)
                got = {"A": await rt.call(PLUGIN_NAME, "transform", big),
                       "B": bplugin.call("transform", orjson.dumps(big))}
                if cplugin:
                    got["C"] = cplugin.call("transform", orjson.dumps(big))
                for backend, value in got.items():
                    if value != want:
                        raise AssertionError(f"{backend}: wrong transform of a 20 kB text")
                if "tiny" in only:
                    with _phase(rec, "tiny call latency"):
                        await scenario_tiny(rec, h, tiny_body)
                if "throughput" in only:
                    with _phase(rec, "throughput"):
                        await scenario_throughput(rec, h, tiny_body)
                if "large" in only:
                    with _phase(rec, "1 MB transform"):
                        await scenario_large(rec, h)
                if "parse" in only:
                    with _phase(rec, "100 KB parse"):
                        await scenario_parse(rec, h)
                if "memory" in only:
                    await scenario_memory(rec, h)
                if "profile" in only:
                    with _phase(rec, "profile of A's hot path"):
                        await scenario_profile(rec, h)
    if "cold" in only:
        with _phase(rec, "cold start"):
            await scenario_cold(rec, scratch, available_c)
    if "restart" in only:
        with _phase(rec, "restart penalty"):
            await scenario_restart(rec, scratch, cplugin)
    if "scaling" in only:
        with _phase(rec, "many plugins"):
            await scenario_scaling(rec, scratch, available_c)
    _memory_rows(rec)


def uvloop_available() -> bool:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return True


async def scenario_uvloop(rec: Recorder, scratch: Path) -> None:
    """The tiny call and throughput at concurrency 64 again, with asyncio on uvloop (run by its
    own ``anyio.run``). Only A and D have an event loop; B and C are copied from the default-loop
    rows of the same run, so the ratios compare like with like."""
    from cortex_runtime import Runtime

    from .floor import echo_pool

    s = rec.settings
    tiny_body = request_body(orjson.dumps(workloads.TINY_INPUT))
    p50: dict[str, list[float]] = {A: [], D: []}
    throughput: dict[str, list[float]] = {A: [], D: []}
    async with Runtime(cache_dir=scratch / "uvloop") as rt:
        await rt.load(PLUGIN_DIR)
        async with echo_pool(os.cpu_count() or 1) as echo:
            h = Hosts(rt, echo, None, None)
            for _ in range(s.warmup_calls):
                await h.a_tiny()
                await echo.request(tiny_body)
            for _ in range(s.reps):
                p50[A].append(us(median([await _time_async(h.a_tiny) for _ in range(s.tiny_calls)])))
                p50[D].append(us(median([await _time_async(lambda: echo.request(tiny_body))
                                         for _ in range(s.tiny_calls)])))
            total = s.throughput_calls[64]
            for _ in range(s.reps):
                throughput[A].append(await _a_throughput(h, 64, total))
                throughput[D].append(await _d_throughput(h, 64, total, tiny_body))
    # D right after A's calls is not comparable with the default-loop D (measured after B and C):
    # on this VM it swings from ~10 to ~90 µs with where the scheduler wakes the echo child.
    rec.details["uvloop_D"] = {"tiny_p50_us": p50.pop(D), "throughput_64": throughput.pop(D)}
    for row_id, samples in (("tiny_p50", p50), ("throughput_64", throughput)):
        base = _row_values(rec, row_id)
        for backend in (B, C, CF):
            if backend in base:
                samples[backend] = [base[backend]]
    note = "A on uvloop; B and C (no event loop) from the default-loop row of this run"
    rec.row("uvloop_tiny_p50", "On uvloop (asyncio's loop replaced)",
            "Tiny call latency p50, concurrency 1, uvloop", "µs", "lower", p50, note=note)
    rec.row("uvloop_throughput_64", "On uvloop (asyncio's loop replaced)",
            "Throughput, concurrency 64, uvloop", "calls/s", "higher", throughput, note=note)


def _row_values(rec: Recorder, row_id: str) -> dict[str, float]:
    for row in rec.rows:
        if row.id == row_id:
            return dict(row.values)
    return {}


def run_suite(*, quick: bool = False, out_dir: Path | None = None, write_docs: bool = False,
              only: set[str] | None = None, skip_extism: bool = False,
              docs_dir: Path | None = None) -> dict[str, Any]:
    """Run the suite; write the JSON of raw results, the Markdown report and the PNG chart.

    ``out_dir`` receives ``benchmarks.json``, ``benchmarks.md`` and ``benchmarks.png``;
    ``write_docs`` also writes ``docs/benchmarks.md`` and ``docs/benchmarks.png``. Returns the
    results (the JSON document) as a dict.
    """
    from cortex_runtime.logs import configure_logging

    from . import extism_host, report

    settings = QUICK if quick else FULL
    selected = set(SCENARIOS) if not only else set(only)
    unknown = selected - set(SCENARIOS)
    if unknown:
        raise ValueError(f"unknown scenarios: {', '.join(sorted(unknown))}")
    configure_logging(verbose=False)
    started = time.time()
    original_env = dict(os.environ)
    build.ensure_built(original_env)
    ok, reason = extism_host.available()
    if skip_extism:
        ok, reason = False, "skipped with --skip-extism"
    available = {A: True, B: True, C: ok, CF: ok, D: True}
    rec = Recorder(settings, available)
    scratch = Path(tempfile.mkdtemp(prefix="cortex-bench-"))
    try:
        # Extism's bundled wasmtime caches compiled modules in $XDG_CACHE_HOME/wasmtime: give
        # this run its own, so "cold" means cold and nothing is left in ~/.cache.
        os.environ["XDG_CACHE_HOME"] = str(scratch / "xdg-cache")
        anyio.run(_main, settings, scratch, selected, ok, rec)
        if "uvloop" in selected:
            if uvloop_available():
                with _phase(rec, "uvloop"):
                    anyio.run(scenario_uvloop, rec, scratch, backend_options={"use_uvloop": True})
            else:
                rec.details["uvloop"] = "not installed: rows left out"
    finally:
        os.environ.clear()
        os.environ.update(original_env)
        shutil.rmtree(scratch, ignore_errors=True)
    results = {
        "meta": {
            "mode": settings.mode, "settings": asdict(settings), "scenarios": sorted(selected),
            "started": time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(started)),
            "duration_s": round(time.time() - started, 1), "phases_s": rec.timings,
            "machine": machine_info(),
        },
        "backends": {
            b: {"label": BACKEND_LABELS[b], "description": BACKEND_DESCRIPTIONS[b],
                "available": available[b],
                **({"reason": reason} if b in (C, CF) else {})}
            for b in BACKENDS
        },
        "rows": [dict(asdict(r), ratios=r.ratios) for r in rec.rows],
        "samples": rec.samples,
        "details": rec.details,
    }
    results["targets"] = report.evaluate_targets(results)
    report.write_outputs(results, out_dir=out_dir, write_docs=write_docs, docs_dir=docs_dir)
    return results
