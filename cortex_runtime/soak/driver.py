"""The soak driver: load the plugins, drive calls at a target concurrency (or rate) with faults
mixed in, account for every call, sample resources once a second, and judge the run.

    config = SoakConfig(plugins=[Path("examples/text-processor")], duration_s=60)
    result = anyio.run(run_soak, config)
    sys.exit(0 if result.passed else 1)
"""

from __future__ import annotations

import collections
import contextlib
import datetime
import math
import random
import signal
import tempfile
import time
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import anyio
import anyio.abc

from ..errors import CortexError, WorkerCrashed
from ..runtime import PluginInfo, Runtime
from .accounting import CANCELLED, LOST, OK, UNTYPED_PREFIX, CallRecord, Ledger
from .config import SoakConfig, SoakSetupError
from .faults import (
    FAULT_MAX_INPUT,
    FAULT_PLUGIN,
    FAULT_SPECS,
    FaultPlanner,
    FaultSpec,
    WorkerKiller,
    build_fault_plugin,
)
from .metrics import Check, LatencyHistogram, ProcessProbe, Series, drift_check, leak_checks
from .mix import Expectation, Mix, Payload, bind, default_cases, load_mix

#: How long the soak waits for worker processes to disappear after the runtime closed.
EXIT_SETTLE_S = 5.0


class ProgressSink(Protocol):
    """Receives the plan once, a snapshot after every sample, and the result at the end."""

    def start(self, plan: Mapping[str, Any]) -> None: ...

    def update(self, snapshot: Mapping[str, Any]) -> None: ...

    def stop(self, result: SoakResult | None) -> None: ...


@dataclass
class SoakResult:
    """The verdict, the numbers behind it and every time series."""

    passed: bool
    checks: list[Check]
    summary: dict[str, Any]
    series: Series
    report_files: dict[str, Path] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        return 0 if self.passed else 1

    @property
    def failures(self) -> list[str]:
        return [f"{c.name}: {c.detail} (value {c.value}, limit {c.limit})"
                for c in self.checks if not c.passed]

    def to_json(self, *, series: bool = True) -> dict[str, Any]:
        data = dict(self.summary)
        data["passed"] = self.passed
        data["exit_code"] = self.exit_code
        data["checks"] = [c.to_json() for c in self.checks]
        data["failures"] = self.failures
        data["report_files"] = {k: str(v) for k, v in self.report_files.items()}
        if series:
            data["series"] = self.series.to_json()
        return data


@dataclass
class _CallPlan:
    plugin: str
    capability: str
    case: str
    payload: Payload
    expect: Expectation
    fault: FaultSpec | None
    fuel: int | None = None
    timeout: float | None = None
    cancel_after: float | None = None


class _Soak:
    """State of one run (see :func:`run_soak`)."""

    def __init__(self, config: SoakConfig, rt: Runtime, mix: Mix, seed: int,
                 progress: ProgressSink | None, probe: ProcessProbe) -> None:
        self.config = config
        self.rt = rt
        self.mix = mix
        self.progress = progress
        self.rng = random.Random(seed)
        self.planner = FaultPlanner(config.faults, random.Random(seed + 1))
        self.killer = WorkerKiller(lambda: rt.worker_pids, lambda: rt.busy_worker_pids,
                                   random.Random(seed + 2))
        self.ledger = Ledger()
        self.series = Series()
        self.probe = probe
        self.all_latency = LatencyHistogram()
        self.first_latency = LatencyHistogram()
        self.last_latency = LatencyHistogram()
        self.start = time.monotonic()
        self.claimed = 0
        self.stopping = False
        self.interrupted = False
        self.aborted = False
        self.abort_scope = anyio.CancelScope()
        self.rate_lag_events = 0
        self._last_sample = self.start
        self._previous_stats: Mapping[str, int] = rt.stats
        self._previous_kills = 0
        #: Zombie child pids and when each was first seen; the longest any stayed a zombie.
        self._zombies_since: dict[int, float] = {}
        self.longest_zombie_s = 0.0

    # -- the clock and the stop rule ------------------------------------------------------------

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def claim(self) -> bool:
        """Take the right to issue one more call (False when the soak is over)."""
        if self.stopping:
            return False
        if self.config.calls is not None:
            if self.claimed >= self.config.calls:
                return False
        elif self.config.duration_s is not None and self.elapsed() >= self.config.duration_s:
            return False
        self.claimed += 1
        return True

    def drift_phase(self, record: CallRecord) -> int:
        """0: the first 10% of the run, 2: the last 10%, 1: in between."""
        if self.config.calls is not None:
            position = self.ledger.completed / self.config.calls
        else:
            assert self.config.duration_s is not None
            position = (record.ended - self.start) / self.config.duration_s
        return 0 if position <= 0.1 else 2 if position > 0.9 else 1

    # -- issuing --------------------------------------------------------------------------------

    async def issuer(self) -> None:
        while self.claim():
            await self.one_call()

    async def dispatcher(self, rate: float, concurrency: int) -> None:
        """Issue calls at ``rate`` per second, at most ``concurrency`` in flight."""
        limiter = anyio.Semaphore(concurrency)
        interval = 1.0 / rate
        next_at = time.monotonic()

        async def run_one() -> None:
            try:
                await self.one_call()
            finally:
                limiter.release()

        async with anyio.create_task_group() as tg:
            while True:
                delay = next_at - time.monotonic()
                if delay > 0:
                    await anyio.sleep(delay)
                await limiter.acquire()
                if not self.claim():
                    limiter.release()
                    break
                tg.start_soon(run_one)
                next_at += interval
                if time.monotonic() - next_at > 1.0:  # saturated: do not burst to catch up
                    self.rate_lag_events += 1
                    next_at = time.monotonic()

    def plan(self) -> _CallPlan:
        kind = self.planner.next()
        spec = FAULT_SPECS[kind] if kind is not None else None
        if spec is not None and spec.capability is not None:
            value: dict[str, Any] = {"fault": spec.kind}
            if spec.kind == "oversize_input":
                value["padding"] = "x" * (2 * FAULT_MAX_INPUT)
            plan = _CallPlan(FAULT_PLUGIN, spec.capability, f"fault/{spec.kind}", Payload(value),
                             Expectation("error", errors=spec.expected), spec)
            if spec.kind == "tiny_timeout":
                plan.timeout = self.config.faults.tiny_timeout_s
            return plan
        entry = self.mix.pick(self.rng)
        payload = entry.case.generate(self.rng, self.ledger.issued + 1)
        faults = self.config.faults
        plan = _CallPlan(entry.plugin, entry.case.capability, entry.case.name, payload,
                         entry.case.expect, spec)
        if kind == "tiny_fuel":
            plan.fuel = faults.tiny_fuel
        elif kind == "cancel":
            median = self.all_latency.percentile(50)
            ceiling = min(faults.cancel_max_delay_s, median) if median else faults.cancel_max_delay_s
            plan.cancel_after = self.rng.uniform(0.0, ceiling)
        return plan

    async def one_call(self) -> None:
        plan = self.plan()
        record = self.ledger.issue(plan.plugin, plan.capability, plan.case,
                                   plan.fault.kind if plan.fault else None, time.monotonic())
        if plan.fault is not None and plan.fault.kind == "kill":
            self.killer.kill_one()
        result: Any = None
        error: BaseException | None = None
        cancelled = False
        with anyio.move_on_after(self.config.call_watchdog_s) as watchdog:
            try:
                if plan.cancel_after is not None:
                    with anyio.move_on_after(plan.cancel_after) as scope:
                        result = await self.invoke(plan)
                    cancelled = scope.cancelled_caught
                else:
                    result = await self.invoke(plan)
            except Exception as exc:  # typed or not: classified below
                error = exc
        now = time.monotonic()
        if watchdog.cancelled_caught:
            self.ledger.complete(record, LOST, now, expected=False,
                                 problem=f"no outcome within the {self.config.call_watchdog_s:g}s watchdog")
        else:
            outcome, expected, problem, by_kill = self.classify(plan, record, now, result, error,
                                                                cancelled)
            self.ledger.complete(record, outcome, now, expected=expected, problem=problem,
                                 by_kill=by_kill)
            if outcome == OK and problem is None and plan.fault is None:
                self.all_latency.add(record.latency)
                phase = self.drift_phase(record)
                if phase == 0:
                    self.first_latency.add(record.latency)
                elif phase == 2:
                    self.last_latency.add(record.latency)
        if self.config.leak_hook is not None:
            self.config.leak_hook(record)

    async def invoke(self, plan: _CallPlan) -> Any:
        if plan.payload.json_text is not None:
            return await self.rt.call_json(plan.plugin, plan.capability, plan.payload.json_text,
                                           timeout=plan.timeout, fuel=plan.fuel)
        return await self.rt.call(plan.plugin, plan.capability, plan.payload.value,
                                  timeout=plan.timeout, fuel=plan.fuel)

    def classify(self, plan: _CallPlan, record: CallRecord, now: float, result: Any,
                 error: BaseException | None, cancelled: bool) -> tuple[str, bool, str | None, bool]:
        """(outcome, expected, problem, explained by an injected kill) of one finished call."""
        fault = plan.fault
        if cancelled:
            ok = fault is not None and fault.kind == "cancel"
            return CANCELLED, ok, None if ok else "cancelled without an injected cancellation", False
        if error is None:
            if fault is not None and fault.capability is not None:
                return OK, False, f"fault {fault.kind} returned a result instead of an error", False
            return OK, True, plan.expect.check_result(plan.payload, result), False
        if not isinstance(error, CortexError):
            text = "".join(traceback.format_exception(error)[-6:])[-2000:]
            return f"{UNTYPED_PREFIX}{type(error).__name__}", False, text, False
        name = type(error).__name__
        by_kill = isinstance(error, WorkerCrashed) and self.killer.explains(
            str(error), record.started, now)
        expected = by_kill or (fault is not None and isinstance(error, fault.expected))
        if not expected and (fault is None or fault.capability is None):
            expected = plan.expect.accepts_error(plan.payload, error)
        problem = None if expected else f"{name}: {str(error)[:500]}"
        return name, expected, problem, by_kill

    # -- sampling -------------------------------------------------------------------------------

    async def sampler(self) -> None:
        interval = self.config.sample_interval_s
        tick = self.start
        while True:
            tick += interval
            await anyio.sleep(max(0.0, tick - time.monotonic()))
            await self.sample()

    async def sample(self) -> None:
        pids = self.rt.worker_pids
        process = await anyio.to_thread.run_sync(self.probe.sample, pids)
        # Nothing below awaits: a cancellation (the end of the run) cannot lose a taken window.
        now = time.monotonic()
        window = self.ledger.take_window()
        self._zombies_since = {pid: self._zombies_since.get(pid, now) for pid in process.zombie_pids}
        for since in self._zombies_since.values():
            self.longest_zombie_s = max(self.longest_zombie_s, now - since)
        stats = self.rt.stats
        row = self.series.add(
            now - self.start, issued=self.ledger.issued, completed=self.ledger.completed,
            in_flight=self.ledger.in_flight, window=window, interval=now - self._last_sample,
            process=process, stats=stats, previous_stats=self._previous_stats,
            kills=self.killer.kills - self._previous_kills)
        self._last_sample = now
        self._previous_stats = stats
        self._previous_kills = self.killer.kills
        if self.progress is not None:
            self.progress.update(self.snapshot(row, stats))

    def snapshot(self, row: Mapping[str, Any], stats: Mapping[str, int]) -> dict[str, Any]:
        elapsed = self.elapsed()
        if self.config.duration_s is not None:
            remaining: float | None = max(0.0, self.config.duration_s - elapsed)
            fraction = min(1.0, elapsed / self.config.duration_s)
        else:
            assert self.config.calls is not None
            done = self.ledger.completed
            rate = done / elapsed if elapsed > 0 else 0.0
            remaining = (self.config.calls - done) / rate if rate > 0 else None
            fraction = done / self.config.calls
        ledger = self.ledger
        return {
            "elapsed_s": elapsed, "remaining_s": remaining, "fraction": fraction, "row": dict(row),
            "issued": ledger.issued, "completed": ledger.completed, "in_flight": ledger.in_flight,
            "expected_errors": dict(ledger.expected_errors),
            "unexpected_errors": dict(ledger.unexpected_errors),
            "lost": ledger.lost, "wrong_results": ledger.wrong_results,
            "untyped": sum(ledger.untyped.values()), "cancelled": ledger.outcomes.get(CANCELLED, 0),
            "faults_injected": sum(self.planner.injected.values()), "kills": self.killer.kills,
            "p50_ms": _ms(self.all_latency.percentile(50)),
            "p99_ms": _ms(self.all_latency.percentile(99)),
            "stats": dict(stats), "stopping": self.stopping,
        }

    async def watch_sigint(self) -> None:
        """First Ctrl-C: stop issuing calls and finish (report included); second: abort."""
        with anyio.open_signal_receiver(signal.SIGINT) as signals:
            async for _ in signals:
                if self.stopping:
                    self.aborted = True
                    self.abort_scope.cancel()
                    return
                self.stopping = True
                self.interrupted = True


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)


def _dedupe(paths: list[Path]) -> list[Path]:
    seen: set[Path] = set()
    out = []
    for path in paths:
        key = path.resolve()
        if key not in seen:
            seen.add(key)
            out.append(path)
    return out


async def run_soak(config: SoakConfig, progress: ProgressSink | None = None, *,
                   log_events: collections.Counter[str] | None = None,
                   handle_sigint: bool = False) -> SoakResult:
    """Run one soak; returns its :class:`SoakResult` (and writes the report if ``report_dir``).

    Raises :class:`SoakSetupError` or a ``CortexError`` (e.g. a plugin that does not load) before
    any call is issued; once calls run, every problem is part of the result instead.
    """
    config.validate()
    seed = config.seed if config.seed is not None else random.SystemRandom().randrange(2**31)
    config.seed = seed
    mix_file = None
    if config.mix_path is not None:
        mix_file = load_mix(config.mix_path, random.Random(seed + 3), seed)
    config.apply_fault_settings(mix_file.faults if mix_file else {})
    started_at = datetime.datetime.now(datetime.UTC)
    with contextlib.ExitStack() as stack:
        if config.report_dir is not None:
            config.report_dir.mkdir(parents=True, exist_ok=True)
            scratch = config.report_dir
        else:
            scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="cortex-soak-")))
        fault_folder = build_fault_plugin(scratch) if config.faults.enabled else None
        probe = ProcessProbe()
        soak: _Soak | None = None
        plugins: list[PluginInfo] = []
        try:
            async with Runtime(**config.runtime_kwargs()) as rt:
                for path in _dedupe(config.plugins):
                    plugins.append(await rt.load(path))
                if any(info.name == FAULT_PLUGIN for info in plugins):
                    raise SoakSetupError(f"the plugin name {FAULT_PLUGIN!r} is reserved for the soak")
                if fault_folder is not None:
                    await rt.load(fault_folder)
                capabilities = {info.name: info.capabilities for info in plugins}
                cases = (mix_file.cases if mix_file is not None
                         else default_cases(capabilities, random.Random(seed + 4)))
                mix = bind(cases, capabilities)
                soak = _Soak(config, rt, mix, seed, progress, probe)
                if progress is not None:
                    progress.start({"duration_s": config.duration_s, "calls": config.calls,
                                    "plugins": list(capabilities), "seed": seed,
                                    "concurrency": config.effective_concurrency,
                                    "faults": config.faults.enabled})
                await _drive(soak, handle_sigint)
        except BaseException:
            if progress is not None:
                progress.stop(None)
            raise
        assert soak is not None
        end_live, end_zombies = await _settle(probe)
        result = _judge(soak, plugins, started_at, end_live, end_zombies, log_events)
        if progress is not None:
            progress.stop(result)
        if config.report_dir is not None:
            from .report import write_report

            result.report_files = await anyio.to_thread.run_sync(write_report, result,
                                                                 config.report_dir)
        return result


async def _drive(soak: _Soak, handle_sigint: bool) -> None:
    config = soak.config
    soak.start = time.monotonic()
    soak._last_sample = soak.start
    with soak.abort_scope:
        async with anyio.create_task_group() as outer:
            outer.start_soon(soak.sampler)
            if handle_sigint:
                outer.start_soon(soak.watch_sigint)
            async with anyio.create_task_group() as calls:
                if config.rate is not None:
                    calls.start_soon(soak.dispatcher, config.rate, config.effective_concurrency)
                else:
                    for _ in range(config.effective_concurrency):
                        calls.start_soon(soak.issuer)
            soak.stopping = True
            outer.cancel_scope.cancel()
    if soak.aborted:  # a second Ctrl-C: no verdict, no report
        raise KeyboardInterrupt
    await soak.sample()
    for record in soak.ledger.still_in_flight():  # cannot happen: every call ran to its watchdog
        soak.ledger.complete(record, LOST, time.monotonic(), expected=False,
                             problem="still in flight when the soak ended")


async def _settle(probe: ProcessProbe) -> tuple[int, int]:
    """Wait (briefly) for the workers to be gone; return the (live, zombie) children left."""
    deadline = time.monotonic() + EXIT_SETTLE_S
    while True:
        live, zombies = await anyio.to_thread.run_sync(probe.processes)
        if (live == 0 and zombies == 0) or time.monotonic() > deadline:
            return live, zombies
        await anyio.sleep(0.05)


def _judge(soak: _Soak, plugins: list[PluginInfo], started_at: datetime.datetime,
           end_live: int, end_zombies: int,
           log_events: collections.Counter[str] | None) -> SoakResult:
    config = soak.config
    ledger = soak.ledger
    thresholds = config.thresholds
    elapsed = soak.series.columns["t"][-1] or soak.elapsed()
    warmup = config.warmup(float(elapsed))
    unexpected = sum(ledger.unexpected_errors.values())
    untyped = sum(ledger.untyped.values())
    checks = [
        Check("lost_calls", ledger.lost == 0, ledger.lost, 0, "calls",
              "calls without an outcome within the watchdog (or at the end)"),
        Check("double_completions", ledger.double == 0, ledger.double, 0, "calls",
              "calls that ended twice"),
        Check("untyped_exceptions", untyped == 0, untyped, 0, "calls",
              "calls that raised something other than a CortexError"
              + (f": {dict(ledger.untyped)}" if untyped else "")),
        Check("wrong_results", ledger.wrong_results == 0, ledger.wrong_results, 0, "calls",
              "results that differ from the case's expectation (or a fault call that succeeded)"),
        Check("unexpected_errors", unexpected <= thresholds.max_unexpected_errors, unexpected,
              thresholds.max_unexpected_errors, "calls",
              "typed errors no injected fault or case expectation explains"
              + (f": {dict(ledger.unexpected_errors)}" if unexpected else "")),
        Check("accounting_balanced", ledger.balanced and ledger.issued == ledger.completed
              == soak.series.completed, ledger.issued - ledger.completed, 0, "calls",
              f"{ledger.issued} issued, {ledger.completed} with exactly one outcome, "
              f"{soak.series.completed} in the time series"),
    ]
    checks += leak_checks(soak.series, thresholds, warmup, soak.longest_zombie_s)
    checks.append(drift_check(soak.first_latency, soak.last_latency, thresholds))
    checks.append(Check("processes_after_close", end_live == 0 and end_zombies == 0,
                        end_live + end_zombies, 0, "processes",
                        f"{end_live} live and {end_zombies} zombie child processes "
                        f"{EXIT_SETTLE_S:g}s after the runtime closed"))
    passed = all(c.passed for c in checks)
    stats = soak.rt.stats
    cols = soak.series.columns
    warnings = _warnings(soak, stats)
    total_p = {f"p{q}": _ms(soak.all_latency.percentile(q)) for q in (50, 90, 99)}
    total_p["max"] = _ms(soak.all_latency.max_s) if soak.all_latency.total else None
    summary: dict[str, Any] = {
        "version": 1,
        "started_at": started_at.isoformat(timespec="seconds"),
        "elapsed_s": round(float(elapsed), 3),
        "warmup_s": warmup,
        "interrupted": soak.interrupted,
        "seed": config.seed,
        "config": config.describe(),
        "plugins": [{"name": p.name, "version": p.version, "sha256": p.sha256,
                     "capabilities": list(p.capabilities), "path": str(p.manifest.root)}
                    for p in plugins],
        "mix": soak.mix.describe(),
        "accounting": ledger.summary(),
        "latency_ms": {**total_p, "healthy_results": soak.all_latency.total,
                       "first_10pct_p99": _ms(soak.first_latency.percentile(99)),
                       "last_10pct_p99": _ms(soak.last_latency.percentile(99))},
        "throughput": {"calls_per_s": round(ledger.completed / max(float(elapsed), 1e-9), 2),
                       "peak_calls_per_s": max((v for v in cols["throughput"] if v is not None),
                                               default=None)},
        "faults": {"enabled": config.faults.enabled, "injected": dict(soak.planner.injected),
                   "total": sum(soak.planner.injected.values()),
                   "fraction_of_calls": round(sum(soak.planner.injected.values())
                                              / max(1, ledger.issued), 4),
                   "substituted_for_budget": soak.planner.substituted,
                   "kills": soak.killer.kills, "kills_of_busy_workers": soak.killer.kills_busy,
                   "kills_missed": soak.killer.kills_missed},
        "resources": _resources(cols),
        "supervisor_rss_trimmed": soak.probe.trim is not None,
        "runtime_stats": dict(stats),
        "log_events": dict(log_events or {}),
        "examples": {k: list(v) for k, v in ledger.examples.items()},
        "warnings": warnings,
        "after_close": {"live_children": end_live, "zombies": end_zombies},
        "rate_lag_events": soak.rate_lag_events,
    }
    return SoakResult(passed, checks, summary, soak.series)


def _resources(cols: Mapping[str, list[float | None]]) -> dict[str, Any]:
    def span(name: str) -> dict[str, float | None]:
        values = [float(v) for v in cols[name] if v is not None]
        if not values:
            return {"first": None, "last": None, "min": None, "max": None}
        return {"first": values[0], "last": values[-1], "min": min(values), "max": max(values)}

    return {name: span(name) for name in ("supervisor_rss_mib", "supervisor_rss_untrimmed_mib",
                                          "supervisor_fds", "children",
                                          "zombies", "worker_rss_max_mib", "worker_rss_sum_mib")}


def _warnings(soak: _Soak, stats: Mapping[str, int]) -> list[str]:
    notes = []
    if stats.get("backoff"):
        notes.append(f"the pool backed off restarting workers {stats['backoff']} times "
                     "(restart intensity exceeded)")
    if stats.get("start_failures"):
        notes.append(f"{stats['start_failures']} worker starts failed")
    if stats.get("overloaded"):
        notes.append(f"{stats['overloaded']} calls were refused as Overloaded")
    if soak.planner.substituted:
        notes.append(f"{soak.planner.substituted} worker-killing faults were replaced by cheap ones "
                     "to stay within the worker-fault budget")
    if soak.rate_lag_events:
        notes.append(f"the target rate could not be held {soak.rate_lag_events} times")
    tp = [float(v) for v in soak.series.columns["throughput"][1:-1] if v is not None]
    if len(tp) >= 20:
        edge = max(2, len(tp) // 10)
        head, tail = sum(tp[:edge]) / edge, sum(tp[-edge:]) / edge
        if head > 0 and tail < 0.5 * head:
            notes.append(f"throughput fell from {head:.0f} to {tail:.0f} calls/s "
                         "(first vs. last 10% of the run)")
    if soak.interrupted:
        notes.append("the soak was interrupted (Ctrl-C) before its planned end")
    if not math.isfinite(soak.config.call_watchdog_s):
        notes.append("no call watchdog")
    return notes


__all__ = ["ProgressSink", "SoakConfig", "SoakResult", "SoakSetupError", "run_soak"]
