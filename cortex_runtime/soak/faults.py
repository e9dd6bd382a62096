"""Fault injection: the built-in fault plugin, which fault each call carries, and worker kills.

The fault plugin (``cortex-soak-faults``) is a few lines of WAT compiled with ``wasmtime.wat2wasm``
at run time. Its capabilities trap, loop forever, grow memory until refused, return an invalid
result, or report an error. A tiny timeout given by the caller ends the loop too. Other faults
ride on a healthy case: tiny fuel, a cancellation after a random delay, or a SIGKILL of a random
worker while the call is issued.
"""

from __future__ import annotations

import collections
import json
import os
import random
import re
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import (
    CallTimeout,
    CortexError,
    FuelExhausted,
    InvalidInput,
    InvalidOutput,
    MemoryLimitExceeded,
    PluginError,
    PluginTrap,
)
from .config import CHEAP_FAULTS, WORKER_FAULTS, FaultSettings

FAULT_PLUGIN = "cortex-soak-faults"
FAULT_ERROR_MESSAGE = "soak: injected plugin error"
FAULT_MAX_INPUT = 1024

FAULT_WAT = r"""
(module
  (import "cortex" "error" (func $error (param i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "soak: injected plugin error")
  (global $top (mut i32) (i32.const 4096))
  (func (export "cortex_alloc") (param $n i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $top))
    (global.set $top (i32.add (i32.add (global.get $top) (local.get $n)) (i32.const 8)))
    (local.get $p))
  ;; trap: PluginTrap (unreachable)
  (func (export "trap") (param i32 i32) (result i32)
    unreachable)
  ;; loop: never returns; the 100 ms manifest deadline ends it (CallTimeout)
  (func (export "loop") (param i32 i32) (result i32)
    (loop $forever (br $forever))
    (i32.const 0))
  ;; bomb: grows memory a page at a time until refused, then traps (MemoryLimitExceeded)
  (func (export "bomb") (param i32 i32) (result i32)
    (loop $grow
      (br_if $grow (i32.ne (memory.grow (i32.const 1)) (i32.const -1))))
    unreachable)
  ;; bad_output: a result whose length runs past the end of memory (InvalidOutput)
  (func (export "bad_output") (param i32 i32) (result i32)
    (i32.store (i32.const 256) (i32.const 0x7ffffff0))
    (i32.const 256))
  ;; error: reports an error through cortex.error (PluginError)
  (func (export "error") (param i32 i32) (result i32)
    (call $error (i32.const 16) (i32.const 27))
    (i32.const 0))
)
"""


def build_fault_plugin(directory: Path) -> Path:
    """Write the fault plugin's folder (``plugin.json`` and ``faults.wasm``) under ``directory``."""
    import wasmtime

    folder = directory / FAULT_PLUGIN
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "faults.wasm").write_bytes(bytes(wasmtime.wat2wasm(FAULT_WAT)))
    manifest = {
        "name": FAULT_PLUGIN, "version": "1.0.0", "type": "wasm", "entryPoint": "faults.wasm",
        "description": "Built-in fault plugin of `cortex soak`: trap, loop, memory bomb, bad output, error",
        "wasm": {"memoryPages": 1, "maxMemoryPages": 64, "allocator": "custom"},
        "limits": {"timeoutMs": 100, "maxInputBytes": FAULT_MAX_INPUT},
    }
    (folder / "plugin.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return folder


@dataclass(frozen=True)
class FaultSpec:
    """How a fault is injected and which typed errors it may end in.

    ``capability``: the fault plugin's capability it calls, or None if the fault rides on a healthy
    case (whose own expectation then also applies). ``result_ok``: a correct result is acceptable too
    (a tiny budget may still suffice, a cancellation may come too late).
    """

    kind: str
    capability: str | None
    expected: tuple[type[CortexError], ...]
    result_ok: bool = False


FAULT_SPECS: dict[str, FaultSpec] = {
    "trap": FaultSpec("trap", "trap", (PluginTrap,)),
    "loop": FaultSpec("loop", "loop", (CallTimeout, FuelExhausted)),
    "memory_bomb": FaultSpec("memory_bomb", "bomb", (MemoryLimitExceeded, PluginTrap)),
    "bad_output": FaultSpec("bad_output", "bad_output", (InvalidOutput,)),
    "plugin_error": FaultSpec("plugin_error", "error", (PluginError,)),
    "oversize_input": FaultSpec("oversize_input", "trap", (InvalidInput,)),
    "tiny_fuel": FaultSpec("tiny_fuel", None, (FuelExhausted,), result_ok=True),
    "tiny_timeout": FaultSpec("tiny_timeout", "loop", (CallTimeout,)),
    "cancel": FaultSpec("cancel", None, (), result_ok=True),
    "kill": FaultSpec("kill", None, (), result_ok=True),
}


class FaultPlanner:
    """Decides which fault (if any) each call carries.

    A fraction ``rate`` of calls carry a fault, drawn by weight. Faults that cost a worker process
    draw from a token bucket refilled at ``worker_faults_per_s``; when it is empty a cheap fault
    takes the place (counted as ``substituted``), so the fault rate holds without driving the pool
    into permanent restart back-off.
    """

    def __init__(self, settings: FaultSettings, rng: random.Random,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.rng = rng
        self.clock = clock
        weights = settings.weights
        self._kinds = [k for k in (*WORKER_FAULTS, *CHEAP_FAULTS) if weights.get(k, 0) > 0]
        self._weights = [weights[k] for k in self._kinds]
        self._cheap = [k for k in CHEAP_FAULTS if weights.get(k, 0) > 0]
        self._cheap_weights = [weights[k] for k in self._cheap]
        self._capacity = max(1.0, settings.worker_faults_per_s)
        self._tokens = 1.0
        self._last = clock()
        self.injected: collections.Counter[str] = collections.Counter()
        self.substituted = 0
        self.skipped = 0

    @property
    def active(self) -> bool:
        return self.settings.enabled and self.settings.rate > 0 and bool(self._kinds)

    def next(self) -> str | None:
        if not self.active or self.rng.random() >= self.settings.rate:
            return None
        kind = self.rng.choices(self._kinds, self._weights)[0]
        if kind in WORKER_FAULTS and not self._take_token():
            self.substituted += 1
            if not self._cheap:
                self.skipped += 1
                return None
            kind = self.rng.choices(self._cheap, self._cheap_weights)[0]
        self.injected[kind] += 1
        return kind

    def _take_token(self) -> bool:
        now = self.clock()
        self._tokens = min(self._capacity,
                           self._tokens + (now - self._last) * self.settings.worker_faults_per_s)
        self._last = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False


_PID_RE = re.compile(r"\bworker (\d+)\b")
#: How long before a call a kill of the worker it names still explains its WorkerCrashed.
KILL_GRACE_S = 5.0


class WorkerKiller:
    """SIGKILLs a random worker (a busy one when there is one) and remembers when and which, so a
    ``WorkerCrashed`` can be traced to the kill that caused it."""

    def __init__(self, pids: Callable[[], Sequence[int]], busy_pids: Callable[[], Sequence[int]],
                 rng: random.Random, clock: Callable[[], float] = time.monotonic) -> None:
        self._pids = pids
        self._busy = busy_pids
        self.rng = rng
        self.clock = clock
        self._recent: collections.deque[tuple[float, int]] = collections.deque(maxlen=4096)
        self.kills = 0
        self.kills_busy = 0
        self.kills_missed = 0

    def kill_one(self) -> int | None:
        busy = list(self._busy())
        pool = busy or list(self._pids())
        if not pool:
            self.kills_missed += 1
            return None
        pid = self.rng.choice(pool)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            self.kills_missed += 1
            return None
        self._recent.append((self.clock(), pid))
        self.kills += 1
        if busy:
            self.kills_busy += 1
        return pid

    def explains(self, message: str, started: float, ended: float) -> bool:
        """True if the soak killed the worker the message names shortly before or during the call
        (a worker killed while idle can take one more call before its death is noticed), or, when
        the message names no worker, if it killed any worker while the call was in flight."""
        named = {int(p) for p in _PID_RE.findall(message)}
        since = started - (KILL_GRACE_S if named else 0.001)
        for when, pid in reversed(self._recent):
            if when < since:
                break
            if when <= ended + 0.001 and (not named or pid in named):
                return True
        return False
