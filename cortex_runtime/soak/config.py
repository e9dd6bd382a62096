"""What a soak run does and what makes it fail: :class:`SoakConfig`, :class:`FaultSettings`,
:class:`Thresholds`, and the duration syntax of ``--duration`` (``90s``, ``10m``, ``1h30m``)."""

from __future__ import annotations

import dataclasses
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .accounting import CallRecord

#: Faults that cost a worker process (the runtime kills and replaces the worker afterwards).
WORKER_FAULTS = ("trap", "loop", "memory_bomb", "tiny_fuel", "tiny_timeout", "cancel", "kill")
#: Faults the runtime answers without replacing a worker.
CHEAP_FAULTS = ("bad_output", "plugin_error", "oversize_input")
FAULT_KINDS = WORKER_FAULTS + CHEAP_FAULTS

DEFAULT_DURATION_S = 60.0


class SoakSetupError(Exception):
    """The soak cannot start: bad option, unreadable mix file, unknown plugin or capability."""


@dataclass
class FaultSettings:
    """Which faults are injected, how often, and how hard."""

    enabled: bool = True
    #: Fraction of issued calls that carry a fault (``kill`` faults also issue a healthy call).
    rate: float = 0.05
    #: Relative weight of each fault kind (see ``FAULT_KINDS``); 0 disables a kind.
    weights: dict[str, float] = field(default_factory=lambda: dict.fromkeys(FAULT_KINDS, 1.0))
    #: Budget of faults that cost a worker process, per second (token bucket). When it is spent, a
    #: cheap fault is injected instead, so the fault *rate* holds while the pool is not driven into
    #: permanent restart back-off.
    worker_faults_per_s: float = 2.0
    #: Fuel given to ``tiny_fuel`` calls (a healthy case), and the timeout the caller gives
    #: ``tiny_timeout`` calls (the fault plugin's endless loop; its manifest allows 100 ms).
    tiny_fuel: int = 20
    tiny_timeout_s: float = 0.005
    #: ``cancel`` faults cancel their call after a random delay between 0 and the median latency
    #: of healthy calls so far (so most land while the call waits or runs), at most this.
    cancel_max_delay_s: float = 0.05

    def validate(self) -> None:
        numbers = {"rate": self.rate, "worker_faults_per_s": self.worker_faults_per_s,
                   "tiny_timeout_s": self.tiny_timeout_s, "cancel_max_delay_s": self.cancel_max_delay_s}
        for name, value in numbers.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise SoakSetupError(f"fault setting {name} must be a number, got {value!r}")
        if not isinstance(self.enabled, bool):
            raise SoakSetupError("fault setting enabled must be true or false")
        if isinstance(self.tiny_fuel, bool) or not isinstance(self.tiny_fuel, int) or self.tiny_fuel < 1:
            raise SoakSetupError(
                f"fault setting tiny_fuel must be a positive integer, got {self.tiny_fuel!r}")
        if self.tiny_timeout_s <= 0 or self.cancel_max_delay_s < 0:
            raise SoakSetupError("tiny_timeout_s must be > 0 and cancel_max_delay_s >= 0")
        if not isinstance(self.weights, dict):
            raise SoakSetupError("fault weights must be an object of fault kind -> weight")
        if not 0 <= self.rate <= 1:
            raise SoakSetupError(f"the fault rate must be between 0 and 1, got {self.rate}")
        unknown = set(self.weights) - set(FAULT_KINDS)
        if unknown:
            raise SoakSetupError(f"unknown fault kind(s) {sorted(unknown)}; known: {list(FAULT_KINDS)}")
        if any(isinstance(w, bool) or not isinstance(w, (int, float)) or w < 0 or not math.isfinite(w)
               for w in self.weights.values()):
            raise SoakSetupError("fault weights must be finite numbers >= 0")
        if self.worker_faults_per_s < 0:
            raise SoakSetupError("worker_faults_per_s must be >= 0")


@dataclass
class Thresholds:
    """Pass/fail limits (docs/soak.md explains each). Every one can be set with
    ``--threshold NAME=VALUE``."""

    #: Typed errors on calls where no injected fault explains them.
    max_unexpected_errors: int = 0
    #: Supervisor RSS growth after warm-up (least-squares fit over the run), MiB.
    max_rss_growth_mib: float = 32.0
    #: Growth of the largest worker's RSS, last 10% of the run vs. first 10% after warm-up, MiB.
    max_worker_rss_growth_mib: float = 64.0
    #: Open file descriptors of the supervisor, last 10% vs. first 10% after warm-up (medians).
    max_fd_growth: float = 16.0
    #: Live child processes, last 10% vs. first 10% after warm-up (medians).
    max_child_growth: float = 2.0
    #: Longest time one child process stays a zombie across samples, seconds (zombies left after
    #: the runtime closed always fail).
    max_zombie_seconds: float = 5.0
    #: p99 latency of healthy calls, last 10% vs. first 10% of the run (ratio) ...
    max_p99_drift: float = 3.0
    #: ... only when the difference is also larger than this many milliseconds.
    p99_drift_floor_ms: float = 10.0
    #: Leak checks ignore this many seconds at the start (default: 5% of the run, 3..120 s).
    warmup_s: float | None = None

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    def set(self, name: str, value: str) -> None:
        """Set a threshold from text (``--threshold max_fd_growth=32``)."""
        if name not in self.names():
            raise SoakSetupError(f"unknown threshold {name!r}; known: {', '.join(self.names())}")
        try:
            number = float(value)
        except ValueError:
            raise SoakSetupError(f"threshold {name} needs a number, got {value!r}") from None
        if not math.isfinite(number) or number < 0:
            raise SoakSetupError(f"threshold {name} must be a finite number >= 0, got {value!r}")
        setattr(self, name, int(number) if name == "max_unexpected_errors" else number)


@dataclass
class SoakConfig:
    """One soak run. ``plugins`` are plugin folders, manifests or ``.wasm`` files."""

    plugins: list[Path]
    duration_s: float | None = None
    calls: int | None = None
    #: Calls in flight at once (default: twice the workers).
    concurrency: int | None = None
    #: Target calls per second (default: as fast as ``concurrency`` allows).
    rate: float | None = None
    #: Worker processes (default: the Runtime's default, one per CPU).
    workers: int | None = None
    mix_path: Path | None = None
    report_dir: Path | None = None
    seed: int | None = None
    faults: FaultSettings = field(default_factory=FaultSettings)
    #: Fault settings that win over a mix file's ``faults`` object (the CLI's explicit options).
    fault_overrides: dict[str, Any] = field(default_factory=dict)
    thresholds: Thresholds = field(default_factory=Thresholds)
    sample_interval_s: float = 1.0
    #: A call without an outcome after this long is *lost* (the soak fails).
    call_watchdog_s: float = 60.0
    cache_dir: Path | None = None
    require_confinement: bool = False
    #: Extra keyword arguments for ``Runtime`` (override the soak's defaults, see ``runtime_kwargs``).
    runtime_options: dict[str, Any] = field(default_factory=dict)
    #: Test hook: called in the supervisor after every call's outcome is recorded. Tests use it to
    #: plant a leak (retain memory or file descriptors) and check that the soak catches it.
    leak_hook: Callable[[CallRecord], None] | None = None

    def apply_fault_settings(self, from_mix: Mapping[str, Any]) -> None:
        """Merge a mix file's ``faults`` object, then ``fault_overrides``, into ``faults``."""
        known = {f.name for f in dataclasses.fields(FaultSettings)}
        for source in (from_mix, self.fault_overrides):
            for key, value in source.items():
                if key not in known:
                    raise SoakSetupError(f"unknown fault setting {key!r}; known: {', '.join(sorted(known))}")
                if key == "weights":
                    if not isinstance(value, dict):
                        raise SoakSetupError("faults.weights must be an object of fault kind -> weight")
                    merged = dict(self.faults.weights)
                    merged.update(value)
                    value = merged
                setattr(self.faults, key, value)
        self.faults.validate()

    def validate(self) -> None:
        if not self.plugins:
            raise SoakSetupError("give at least one plugin")
        if self.duration_s is not None and self.calls is not None:
            raise SoakSetupError("give --duration or --calls, not both")
        if self.duration_s is None and self.calls is None:
            self.duration_s = DEFAULT_DURATION_S
        if self.duration_s is not None and not (0 < self.duration_s < math.inf):
            raise SoakSetupError("the duration must be a positive number of seconds")
        if self.calls is not None and self.calls < 1:
            raise SoakSetupError("--calls must be at least 1")
        if self.concurrency is not None and self.concurrency < 1:
            raise SoakSetupError("--concurrency must be at least 1")
        if self.rate is not None and not (0 < self.rate < math.inf):
            raise SoakSetupError("--rate must be a positive number of calls per second")
        if self.workers is not None and self.workers < 1:
            raise SoakSetupError("--workers must be at least 1")
        if self.call_watchdog_s <= 0 or self.sample_interval_s <= 0:
            raise SoakSetupError("the watchdog and the sample interval must be positive")
        self.faults.validate()

    @property
    def worker_count(self) -> int:
        return self.workers if self.workers is not None else (os.cpu_count() or 1)

    @property
    def effective_concurrency(self) -> int:
        return self.concurrency if self.concurrency is not None else 2 * self.worker_count

    def warmup(self, planned_s: float) -> float:
        if self.thresholds.warmup_s is not None:
            return self.thresholds.warmup_s
        return min(120.0, max(3.0, 0.05 * planned_s))

    def runtime_kwargs(self) -> dict[str, Any]:
        """``Runtime`` arguments: quarantine off (injected faults would otherwise quarantine the
        healthy plugins they are aimed at, by design) and a restart intensity that fits the fault
        budget; anything in ``runtime_options`` wins."""
        options: dict[str, Any] = {
            "workers": self.worker_count,
            "spare_workers": 1,
            "quarantine_after": 0,
            "require_confinement": self.require_confinement,
            "max_queue": max(1024, 2 * self.effective_concurrency),
        }
        if self.faults.enabled:
            period = 10.0
            options["restart_period"] = period
            options["max_restarts"] = max(10, math.ceil(2 * self.faults.worker_faults_per_s * period) + 10)
        if self.cache_dir is not None:
            options["cache_dir"] = self.cache_dir
        options.update(self.runtime_options)
        return options

    def describe(self) -> dict[str, Any]:
        """The configuration as JSON-friendly data, for the report."""
        return {
            "plugins": [str(p) for p in self.plugins],
            "duration_s": self.duration_s, "calls": self.calls,
            "concurrency": self.effective_concurrency, "rate": self.rate,
            "workers": self.worker_count, "mix": str(self.mix_path) if self.mix_path else None,
            "seed": self.seed, "faults": dataclasses.asdict(self.faults),
            "thresholds": dataclasses.asdict(self.thresholds),
            "sample_interval_s": self.sample_interval_s, "call_watchdog_s": self.call_watchdog_s,
            "runtime_options": {k: (str(v) if isinstance(v, Path) else v)
                                for k, v in self.runtime_kwargs().items()},
            "leak_hook": getattr(self.leak_hook, "__name__", repr(self.leak_hook))
            if self.leak_hook else None,
        }


_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNITS: Mapping[str, float] = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str) -> float:
    """Seconds in ``text``: ``90``, ``90s``, ``10m``, ``1h30m``, ``500ms``."""
    spec = text.strip().lower().replace(" ", "")
    try:
        value = float(spec)
    except ValueError:
        pass
    else:
        if value > 0 and math.isfinite(value):
            return value
        raise SoakSetupError(f"the duration must be positive, got {text!r}")
    pos = 0
    total = 0.0
    for match in _DURATION_RE.finditer(spec):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if pos != len(spec) or not spec or total <= 0:
        raise SoakSetupError(f"cannot read the duration {text!r}: use e.g. 90s, 10m, 1h30m")
    return total
