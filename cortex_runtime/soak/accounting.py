"""The ledger that proves nothing is lost: every issued call ends in exactly one outcome.

An outcome is ``ok`` (a result), the class name of a typed :class:`~cortex_runtime.CortexError`,
``cancelled`` (an injected cancellation won), ``lost`` (no outcome within the watchdog, or still in
flight when the soak ended) or ``untyped:<ExceptionType>`` (anything else escaped ``Runtime.call``).
Each outcome is also *expected* or not: see :func:`cortex_runtime.soak.driver.classify`.

The ledger holds only the calls in flight and counters, so its memory does not grow with the
number of calls (it lives in the supervisor process whose memory the soak watches).
"""

from __future__ import annotations

import collections
import math
from dataclasses import dataclass, field
from typing import Any

OK = "ok"
CANCELLED = "cancelled"
LOST = "lost"
UNTYPED_PREFIX = "untyped:"
EXAMPLES_PER_KIND = 20


@dataclass(slots=True)
class CallRecord:
    """One issued call. ``fault`` is the injected fault kind, None for a healthy call."""

    id: int
    plugin: str
    capability: str
    case: str
    fault: str | None
    started: float
    ended: float = math.nan
    outcome: str = ""
    expected: bool = True
    problem: str | None = None

    @property
    def done(self) -> bool:
        return bool(self.outcome)

    @property
    def latency(self) -> float:
        return self.ended - self.started

    def describe(self) -> dict[str, Any]:
        return {"id": self.id, "plugin": self.plugin, "capability": self.capability,
                "case": self.case, "fault": self.fault, "outcome": self.outcome,
                "started_s": round(self.started, 3),
                "latency_ms": None if math.isnan(self.ended) else round(self.latency * 1000, 3),
                "problem": self.problem}


@dataclass
class Window:
    """What completed since the last sample."""

    completed: int = 0
    outcomes: collections.Counter[str] = field(default_factory=collections.Counter)
    unexpected: collections.Counter[str] = field(default_factory=collections.Counter)
    faults: int = 0
    #: Latencies (seconds) of healthy calls that returned a result.
    latencies: list[float] = field(default_factory=list)


class AccountingError(Exception):
    """The soak's own bookkeeping broke (a call recorded twice): always a failed soak."""


class Ledger:
    def __init__(self) -> None:
        self.issued = 0
        self.completed = 0
        self._in_flight: dict[int, CallRecord] = {}
        self.outcomes: collections.Counter[str] = collections.Counter()
        self.healthy: collections.Counter[str] = collections.Counter()
        self.by_fault: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
        self.expected_errors: collections.Counter[str] = collections.Counter()
        self.unexpected_errors: collections.Counter[str] = collections.Counter()
        self.explained_by_kill = 0
        self.wrong_results = 0
        self.untyped: collections.Counter[str] = collections.Counter()
        self.lost = 0
        self.double = 0
        self.examples: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
        self.window = Window()

    # -- recording ------------------------------------------------------------------------------

    def issue(self, plugin: str, capability: str, case: str, fault: str | None,
              now: float) -> CallRecord:
        self.issued += 1
        record = CallRecord(self.issued, plugin, capability, case, fault, now)
        self._in_flight[record.id] = record
        return record

    def complete(self, record: CallRecord, outcome: str, now: float, *, expected: bool,
                 problem: str | None = None, by_kill: bool = False) -> None:
        """Record ``record``'s one outcome. A second outcome for the same call is counted as a
        double completion (and fails the soak) and changes nothing else."""
        if record.done or self._in_flight.pop(record.id, None) is None:
            self.double += 1
            self._example("double", record, f"second outcome {outcome!r} after {record.outcome!r}")
            return
        record.ended = now
        record.outcome = outcome
        record.expected = expected
        record.problem = problem
        self.completed += 1
        self.outcomes[outcome] += 1
        if record.fault is None:
            self.healthy[outcome] += 1
        else:
            self.by_fault[record.fault][outcome] += 1
        window = self.window
        window.completed += 1
        window.outcomes[outcome] += 1
        if record.fault is not None:
            window.faults += 1
        if outcome == LOST:
            self.lost += 1
            self._example("lost", record, problem)
        elif outcome.startswith(UNTYPED_PREFIX):
            self.untyped[outcome[len(UNTYPED_PREFIX):]] += 1
            self._example("untyped", record, problem)
        elif outcome == OK:
            if problem is not None:
                self.wrong_results += 1
                self._example("wrong_result", record, problem)
            elif record.fault is None:
                window.latencies.append(record.latency)
        elif outcome != CANCELLED:
            if expected:
                self.expected_errors[outcome] += 1
                if by_kill:
                    self.explained_by_kill += 1
            else:
                self.unexpected_errors[outcome] += 1
                window.unexpected[outcome] += 1
                self._example("unexpected_error", record, problem)

    def _example(self, kind: str, record: CallRecord, problem: str | None) -> None:
        bucket = self.examples[kind]
        if len(bucket) < EXAMPLES_PER_KIND:
            entry = record.describe()
            entry["problem"] = problem
            bucket.append(entry)

    def take_window(self) -> Window:
        window, self.window = self.window, Window()
        return window

    # -- reading --------------------------------------------------------------------------------

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    def oldest_in_flight(self) -> CallRecord | None:
        return min(self._in_flight.values(), key=lambda r: r.started, default=None)

    def still_in_flight(self) -> list[CallRecord]:
        return list(self._in_flight.values())

    @property
    def balanced(self) -> bool:
        """Every issued call has exactly one outcome or is still in flight."""
        return self.issued == self.completed + len(self._in_flight)

    def summary(self) -> dict[str, Any]:
        return {
            "issued": self.issued,
            "completed": self.completed,
            "in_flight": len(self._in_flight),
            "results": self.outcomes.get(OK, 0),
            "typed_errors": sum(n for k, n in self.outcomes.items()
                                if k not in (OK, CANCELLED, LOST) and not k.startswith(UNTYPED_PREFIX)),
            "cancelled": self.outcomes.get(CANCELLED, 0),
            "lost": self.lost,
            "double_completions": self.double,
            "untyped_exceptions": dict(self.untyped),
            "wrong_results": self.wrong_results,
            "expected_errors": dict(self.expected_errors),
            "unexpected_errors": dict(self.unexpected_errors),
            "worker_crashes_explained_by_kills": self.explained_by_kill,
            "balanced": self.balanced,
            "outcomes": dict(self.outcomes),
            "healthy_outcomes": dict(self.healthy),
            "fault_outcomes": {kind: dict(counts) for kind, counts in sorted(self.by_fault.items())},
        }
