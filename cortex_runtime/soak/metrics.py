"""Sampling (once a second: memory, descriptors, processes, latency, throughput, errors, restarts)
and the leak / drift checks that turn the samples into a verdict."""

from __future__ import annotations

import ctypes
import ctypes.util
import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import psutil

from .accounting import Window
from .config import Thresholds

MIB = 1024 * 1024


class LatencyHistogram:
    """Fixed-size log-bucketed histogram (2% resolution, 1 µs .. ~1000 s): constant memory however
    many calls it counts."""

    RATIO = 1.02
    FLOOR_S = 1e-6
    BUCKETS = 1100

    def __init__(self) -> None:
        self.counts = [0] * self.BUCKETS
        self.total = 0
        self.max_s = 0.0
        self._log_ratio = math.log(self.RATIO)

    def add(self, seconds: float) -> None:
        if seconds <= self.FLOOR_S:
            index = 0
        else:
            index = min(self.BUCKETS - 1, int(math.log(seconds / self.FLOOR_S) / self._log_ratio) + 1)
        self.counts[index] += 1
        self.total += 1
        self.max_s = max(self.max_s, seconds)

    def percentile(self, q: float) -> float | None:
        """The ``q``-th percentile (0..100) in seconds (upper bound of its bucket), None if empty."""
        if not self.total:
            return None
        rank = max(1, math.ceil(q / 100 * self.total))
        seen = 0
        for index, count in enumerate(self.counts):
            seen += count
            if seen >= rank:
                return min(self.max_s, self.FLOOR_S * self.RATIO ** index)
        return self.max_s


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile of unsorted ``values`` (None if empty)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def _malloc_trim() -> Any:
    """glibc's ``malloc_trim``, or None (another libc, or not Linux)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


@dataclass
class ProcessSample:
    rss: int
    #: RSS before ``malloc_trim``: includes freed memory the C allocator keeps cached.
    rss_untrimmed: int
    fds: int
    threads: int
    children: int
    zombies: int
    worker_rss: dict[int, int]
    zombie_pids: set[int] = field(default_factory=set)


class ProcessProbe:
    """Resource use of this (the supervisor) process, its children and the workers."""

    def __init__(self, *, trim: bool = True) -> None:
        self.me = psutil.Process()
        #: Before each RSS reading, glibc is asked to give freed memory back to the system
        #: (``malloc_trim(0)``): glibc raises its trim threshold after the first large free, and
        #: then keeps freed heap memory, which makes RSS creep without any leak.
        self.trim = _malloc_trim() if trim else None
        #: Children that existed before the soak (a test runner's helpers): not counted.
        self.baseline = {c.pid for c in self._children()}

    def _children(self) -> list[psutil.Process]:
        try:
            return list(self.me.children(recursive=True))
        except psutil.Error:
            return []

    def processes(self) -> tuple[int, int]:
        """(live children, zombie children) started since the probe was made."""
        live, zombies = self._processes()
        return live, len(zombies)

    def _processes(self) -> tuple[int, set[int]]:
        live = 0
        zombies: set[int] = set()
        for child in self._children():
            if child.pid in self.baseline:
                continue
            try:
                status = child.status()
            except psutil.Error:
                continue
            if status == psutil.STATUS_ZOMBIE:
                zombies.add(child.pid)
            else:
                live += 1
        return live, zombies

    def sample(self, worker_pids: Iterable[int]) -> ProcessSample:
        untrimmed = int(self.me.memory_info().rss)
        if self.trim is not None:
            self.trim(0)
        with self.me.oneshot():
            rss = int(self.me.memory_info().rss)
            fds = self.me.num_fds()
            threads = self.me.num_threads()
        live, zombies = self._processes()
        worker_rss: dict[int, int] = {}
        for pid in worker_pids:
            try:
                worker_rss[pid] = int(psutil.Process(pid).memory_info().rss)
            except psutil.Error:
                continue
        return ProcessSample(rss, untrimmed, fds, threads, live, len(zombies), worker_rss, zombies)


#: Columns of the time series, in report order.
COLUMNS = (
    "t", "issued", "completed", "in_flight", "throughput", "p50_ms", "p90_ms", "p99_ms", "max_ms",
    "faults", "errors_expected", "errors_unexpected", "supervisor_rss_mib",
    "supervisor_rss_untrimmed_mib", "supervisor_fds",
    "supervisor_threads", "children", "zombies", "workers", "worker_rss_max_mib",
    "worker_rss_sum_mib", "restarts", "workers_killed", "kills_injected",
)


@dataclass
class Series:
    """Every sample, stored by column (compact: a few floats per second)."""

    columns: dict[str, list[float | None]] = field(
        default_factory=lambda: {name: [] for name in COLUMNS})
    #: Per window, how many calls ended in each outcome other than ok (padded with zeros).
    errors: dict[str, list[int]] = field(default_factory=dict)
    #: Per sample, each live worker's RSS in MiB.
    worker_rss: list[dict[str, float]] = field(default_factory=list)
    #: Cumulative pool counters (``Runtime.stats``) per sample.
    stats: dict[str, list[int]] = field(default_factory=dict)
    #: Outcomes counted in windows (must equal the ledger's total at the end).
    completed: int = 0

    def __len__(self) -> int:
        return len(self.columns["t"])

    def add(self, t: float, *, issued: int, completed: int, in_flight: int, window: Window,
            interval: float, process: ProcessSample, stats: Mapping[str, int],
            previous_stats: Mapping[str, int], kills: int) -> dict[str, float | None]:
        lat = window.latencies
        workers = process.worker_rss
        expected = sum(n for k, n in window.outcomes.items() if k not in ("ok", "cancelled")) \
            - sum(window.unexpected.values())
        row: dict[str, float | None] = {
            "t": round(t, 3), "issued": issued, "completed": completed, "in_flight": in_flight,
            "throughput": round(window.completed / interval, 3) if interval > 0 else None,
            "p50_ms": _ms(percentile(lat, 50)), "p90_ms": _ms(percentile(lat, 90)),
            "p99_ms": _ms(percentile(lat, 99)), "max_ms": _ms(max(lat) if lat else None),
            "faults": window.faults, "errors_expected": max(0, expected),
            "errors_unexpected": sum(window.unexpected.values()),
            "supervisor_rss_mib": round(process.rss / MIB, 3),
            "supervisor_rss_untrimmed_mib": round(process.rss_untrimmed / MIB, 3),
            "supervisor_fds": process.fds,
            "supervisor_threads": process.threads, "children": process.children,
            "zombies": process.zombies, "workers": len(workers),
            "worker_rss_max_mib": round(max(workers.values()) / MIB, 3) if workers else None,
            "worker_rss_sum_mib": round(sum(workers.values()) / MIB, 3),
            "restarts": stats.get("started", 0) - previous_stats.get("started", 0),
            "workers_killed": stats.get("killed", 0) - previous_stats.get("killed", 0),
            "kills_injected": kills,
        }
        count = len(self)
        self.completed += window.completed
        for name in COLUMNS:
            self.columns[name].append(row[name])
        for outcome, n in window.outcomes.items():
            if outcome == "ok":
                continue
            if outcome not in self.errors:
                self.errors[outcome] = [0] * count
            self.errors[outcome].append(n)
        for column in self.errors.values():
            if len(column) == count:
                column.append(0)
        for key, value in stats.items():
            if key not in self.stats:
                self.stats[key] = [0] * count
            self.stats[key].append(int(value))
        for column in self.stats.values():
            if len(column) == count:
                column.append(column[-1] if column else 0)
        self.worker_rss.append({str(pid): round(rss / MIB, 3) for pid, rss in workers.items()})
        return row

    def to_json(self) -> dict[str, Any]:
        return {**self.columns, "errors_by_outcome": self.errors, "worker_rss_mib": self.worker_rss,
                "runtime_stats": self.stats}


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)


# -- checks ---------------------------------------------------------------------------------------


@dataclass
class Check:
    """One pass/fail rule with its measured value."""

    name: str
    passed: bool
    value: float | None
    limit: float | None
    unit: str
    detail: str
    skipped: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "passed": self.passed, "value": self.value, "limit": self.limit,
                "unit": self.unit, "detail": self.detail, "skipped": self.skipped}


def fitted_growth(ts: Sequence[float], values: Sequence[float]) -> float:
    """Least-squares slope of ``values`` over ``ts``, times the time span: how much the series grew
    from start to end along its trend (robust to a single spike, unlike last - first)."""
    n = len(ts)
    if n < 2:
        return 0.0
    mean_t = sum(ts) / n
    mean_v = sum(values) / n
    var = sum((t - mean_t) ** 2 for t in ts)
    if var == 0:
        return 0.0
    slope = sum((t - mean_t) * (v - mean_v) for t, v in zip(ts, values, strict=True)) / var
    return slope * (ts[-1] - ts[0])


def _numbers(column: Sequence[float | None], indexes: Sequence[int]) -> list[float]:
    return [float(v) for i in indexes if (v := column[i]) is not None]


def _edge_windows(column: Sequence[float | None],
                  indexes: Sequence[int]) -> tuple[list[float], list[float]]:
    """The first and the last 10% (at least 3) of ``indexes``' samples that hold a value. A
    sample may hold none (no worker alive to read while faults replace them all): it says
    nothing about growth, so the window reaches further in instead."""
    size = max(3, math.ceil(0.1 * len(indexes)))
    values = _numbers(column, indexes)
    size = min(size, len(values) // 2)
    if size == 0:
        return [], []
    return values[:size], values[-size:]


MIN_STEADY_SAMPLES = 6
#: A p99 over fewer calls is one or two outliers, not a percentile.
MIN_DRIFT_CALLS = 1000


def leak_checks(series: Series, thresholds: Thresholds, warmup_s: float,
                longest_zombie_s: float) -> list[Check]:
    """Supervisor RSS, worker RSS, descriptors, child processes and zombies over the run."""
    cols = series.columns
    max_zombies = max((int(z) for z in cols["zombies"] if z is not None), default=0)
    ts = [float(t) for t in cols["t"] if t is not None]
    steady = [i for i, t in enumerate(ts) if t >= warmup_s]
    checks: list[Check] = []
    if len(steady) < MIN_STEADY_SAMPLES:
        note = (f"run too short for drift checks: {len(steady)} samples after the {warmup_s:g}s "
                f"warm-up (need {MIN_STEADY_SAMPLES})")
        for name, unit in (("supervisor_rss_growth", "MiB"), ("worker_rss_growth", "MiB"),
                           ("fd_growth", "fds"), ("child_process_growth", "processes")):
            checks.append(Check(name, True, None, None, unit, note, skipped=True))
    else:
        rss = _numbers(cols["supervisor_rss_mib"], steady)
        growth = fitted_growth([ts[i] for i in steady], rss)
        span = ts[steady[-1]] - ts[steady[0]]
        checks.append(Check(
            "supervisor_rss_growth", growth <= thresholds.max_rss_growth_mib, round(growth, 3),
            thresholds.max_rss_growth_mib, "MiB",
            f"least-squares trend of the supervisor's RSS over {span:.0f}s after warm-up "
            f"({min(rss):.1f}..{max(rss):.1f} MiB; {growth / max(span, 1e-9) * 60:.2f} MiB/min)"))
        checks.append(_edge_check("worker_rss_growth", cols["worker_rss_max_mib"], steady,
                                  thresholds.max_worker_rss_growth_mib, "MiB",
                                  "largest worker's RSS"))
        checks.append(_edge_check("fd_growth", cols["supervisor_fds"], steady,
                                  thresholds.max_fd_growth, "fds", "supervisor's open descriptors"))
        checks.append(_edge_check("child_process_growth", cols["children"], steady,
                                  thresholds.max_child_growth, "processes", "live child processes"))
    checks.append(Check("zombie_persistence", longest_zombie_s <= thresholds.max_zombie_seconds,
                        round(longest_zombie_s, 3), thresholds.max_zombie_seconds, "s",
                        "longest time one child process was seen as a zombie (unreaped) "
                        f"across samples; {max_zombies} zombie(s) at most at once"))
    return checks


def _edge_check(name: str, column: Sequence[float | None], steady: Sequence[int],
                limit: float, unit: str, what: str) -> Check:
    head, tail = _edge_windows(column, steady)
    if not head or not tail:
        return Check(name, True, None, limit, unit, f"no samples of the {what}", skipped=True)
    a, b = statistics.median(head), statistics.median(tail)
    growth = b - a
    return Check(name, growth <= limit, round(growth, 3), limit, unit,
                 f"{what}: median {a:g} in the first {len(head)} samples after warm-up that hold "
                 f"one, {b:g} in the last {len(tail)}")


def drift_check(first: LatencyHistogram, last: LatencyHistogram, thresholds: Thresholds) -> Check:
    """p99 latency of healthy calls in the last 10% of the run vs. the first 10%."""
    a, b = first.percentile(99), last.percentile(99)
    if a is None or b is None or min(first.total, last.total) < MIN_DRIFT_CALLS:
        return Check("p99_drift", True, None, thresholds.max_p99_drift, "x",
                     f"too few healthy results for a p99 ({first.total} in the first 10% of the "
                     f"run, {last.total} in the last; need {MIN_DRIFT_CALLS} each)", skipped=True)
    ratio = b / a if a > 0 else math.inf
    diff_ms = (b - a) * 1000
    passed = ratio <= thresholds.max_p99_drift or diff_ms <= thresholds.p99_drift_floor_ms
    return Check("p99_drift", passed, round(ratio, 3), thresholds.max_p99_drift, "x",
                 f"p99 {a * 1000:.2f} ms in the first 10% of calls ({first.total}), "
                 f"{b * 1000:.2f} ms in the last 10% ({last.total}); fails above "
                 f"{thresholds.max_p99_drift:g}x and {thresholds.p99_drift_floor_ms:g} ms more")
