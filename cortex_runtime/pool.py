"""The supervisor's pool of worker processes.

Callers borrow a worker, use it for one request, and give it back. A worker that failed (trap,
timeout, crash, protocol violation, cancellation mid-call) is killed on return and replaced; a spare
worker started in advance takes its place at once, so the next call does not wait for a process to
boot. Replacements are rate-limited (restart intensity, then exponential back-off) so a worker that
dies at boot cannot make the pool spin. Workers are also recycled after a number of calls or when
their memory grows past a cap.
"""

from __future__ import annotations

import collections
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.abc
import structlog

from .errors import Overloaded, RuntimeClosed, WorkerCrashed
from .worker import Worker

log = structlog.get_logger("cortex_runtime")


@dataclass
class PoolConfig:
    """Sizing and failure policy of the pool. See ``Runtime`` for what each knob means."""

    workers: int
    spare_workers: int = 1
    max_queue: int = 1024
    max_calls_per_worker: int = 10_000
    max_worker_rss: int = 512 * 1024 * 1024
    rss_check_every: int = 16
    max_restarts: int = 10
    restart_period: float = 10.0
    backoff_initial: float = 0.1
    backoff_max: float = 10.0
    broken_after: int = 3
    start_timeout: float = 20.0
    #: Passed to every worker: confinement switches, readable paths, memory limit.
    worker_options: dict[str, Any] = field(default_factory=dict)


class _Broken:
    """Marker put in the idle queue to wake a waiter when workers cannot be started."""


class WorkerPool:
    """Owns the worker processes; hands them out one request at a time."""

    def __init__(self, config: PoolConfig, warmup: Callable[[Worker], Awaitable[None]]) -> None:
        self.config = config
        self._warmup = warmup
        self._idle_send, self._idle_recv = anyio.create_memory_object_stream[Worker | _Broken](
            math.inf
        )
        self._all: set[Worker] = set()
        self._spares: list[Worker] = []
        self._lent: set[Worker] = set()
        self._waiting = 0
        self._closed = False
        self._tg: anyio.abc.TaskGroup | None = None
        self._restarts: collections.deque[float] = collections.deque()
        self._consecutive_start_failures = 0
        self._broken: str | None = None
        self._pending_spawns = 0
        #: The confinement layers the first worker reported (see sandbox/confine.py).
        self.layers: list[dict[str, Any]] = []
        #: Counters for tests, soak reports and the log.
        self.stats: collections.Counter[str] = collections.Counter()

    # -- life cycle ---------------------------------------------------------------------------

    async def start(self, tg: anyio.abc.TaskGroup) -> None:
        """Start the initial workers and spares; fails if none of them can start."""
        self._tg = tg
        total = self.config.workers + self.config.spare_workers
        started: list[Worker] = []
        errors: list[BaseException] = []

        async def boot() -> None:
            try:
                started.append(await self._spawn_one())
            except WorkerCrashed as exc:
                errors.append(exc)

        async with anyio.create_task_group() as boot_group:
            for _ in range(total):
                boot_group.start_soon(boot)
        if errors and len(started) < self.config.workers:
            for worker in started:
                await worker.kill()
            raise WorkerCrashed(f"could not start the worker pool: {errors[0]}")
        for index, worker in enumerate(started):
            if index < self.config.workers:
                self._idle_send.send_nowait(worker)
            else:
                self._spares.append(worker)

    async def close(self) -> None:
        """Stop every worker (spares included). Calls still running get ``WorkerCrashed``."""
        self._closed = True
        workers = list(self._all)
        self._all.clear()
        self._spares.clear()
        with anyio.CancelScope(shield=True):
            async with anyio.create_task_group() as tg:
                for worker in workers:
                    tg.start_soon(worker.stop, 0.5)
        for _ in range(self._waiting):
            self._idle_send.send_nowait(_Broken())

    @property
    def pids(self) -> list[int]:
        """Process ids of every live worker, spares included."""
        return sorted(w.pid for w in self._all if w.alive)

    @property
    def busy_pids(self) -> list[int]:
        """Process ids of the workers currently running a request."""
        return sorted(w.pid for w in self._lent)

    # -- borrowing ----------------------------------------------------------------------------

    @asynccontextmanager
    async def borrow(self) -> AsyncIterator[Worker]:
        """Lend a worker for one request. Any exception inside dooms it (state unknown)."""
        worker = await self._acquire()
        self._lent.add(worker)
        try:
            yield worker
        except BaseException:
            worker.doomed = True
            raise
        finally:
            self._lent.discard(worker)
            with anyio.CancelScope(shield=True):
                await self._release(worker)

    async def _acquire(self) -> Worker:
        if self._closed:
            raise RuntimeClosed("the runtime is closed")
        if self._waiting >= self.config.max_queue:
            self.stats["overloaded"] += 1
            raise Overloaded(
                f"{self._waiting} calls are already waiting for a worker "
                f"(max_queue={self.config.max_queue})"
            )
        self._waiting += 1
        try:
            while True:
                if self._broken and not self._idle_recv.statistics().current_buffer_used:
                    raise WorkerCrashed(self._broken)
                item = await self._idle_recv.receive()
                if isinstance(item, _Broken):
                    if self._closed:
                        raise RuntimeClosed("the runtime closed while the call waited")
                    continue
                if item.alive and not item.doomed:
                    return item
                await self._retire(item, failed=True)
        finally:
            self._waiting -= 1

    async def _release(self, worker: Worker) -> None:
        if self._closed or worker not in self._all:
            await worker.kill()
            return
        if worker.doomed or not worker.alive:
            await self._retire(worker, failed=True)
            return
        config = self.config
        if worker.calls >= config.max_calls_per_worker:
            self.stats["recycled_calls"] += 1
            log.info("worker.recycle", worker_pid=worker.pid, reason="calls", calls=worker.calls)
            await self._retire(worker, failed=False)
            return
        if worker.calls % config.rss_check_every == 0:
            rss = worker.rss()
            if rss > config.max_worker_rss:
                self.stats["recycled_rss"] += 1
                log.info("worker.recycle", worker_pid=worker.pid, reason="rss", rss=rss)
                await self._retire(worker, failed=False)
                return
        self._idle_send.send_nowait(worker)

    # -- replacement --------------------------------------------------------------------------

    async def _retire(self, worker: Worker, *, failed: bool) -> None:
        """Remove ``worker`` from service, kill it, and put a spare (or a new worker) in its place.

        Idempotent: a worker already retired (e.g. by its exit watcher) is only reaped again."""
        if worker not in self._all:
            await worker.kill()
            return
        self._all.discard(worker)
        if worker in self._spares:
            self._spares.remove(worker)
        if failed:
            await worker.kill()
            self.stats["killed"] += 1
            log.info("worker.exit", worker_pid=worker.pid, reason=worker.exit_description())
        else:
            await worker.stop()
            self.stats["retired"] += 1
        if self._closed:
            return
        if self._spares:
            spare = self._spares.pop(0)
            self._idle_send.send_nowait(spare)
            log.info("worker.restart", replaced=worker.pid, worker_pid=spare.pid, spare=True)
            self._schedule_spawn(spare=True, counted=failed)
        else:
            self._schedule_spawn(spare=False, counted=failed)

    def _schedule_spawn(self, *, spare: bool, counted: bool) -> None:
        assert self._tg is not None
        self._pending_spawns += 1
        self._tg.start_soon(self._spawn_replacement, spare, counted)

    def _backoff(self, counted: bool) -> float:
        now = time.monotonic()
        if counted:
            self._restarts.append(now)
        while self._restarts and now - self._restarts[0] > self.config.restart_period:
            self._restarts.popleft()
        excess = len(self._restarts) - self.config.max_restarts + self._consecutive_start_failures
        if excess <= 0:
            return 0.0
        return float(min(self.config.backoff_max, self.config.backoff_initial * 2.0 ** (excess - 1)))

    async def _spawn_replacement(self, spare: bool, counted: bool) -> None:
        try:
            while not self._closed:
                delay = self._backoff(counted)
                counted = False
                if delay:
                    self.stats["backoff"] += 1
                    log.warning("worker.backoff", seconds=delay, restarts=len(self._restarts))
                    await anyio.sleep(delay)
                try:
                    worker = await self._spawn_one()
                except RuntimeClosed:
                    return
                except WorkerCrashed as exc:
                    self._consecutive_start_failures += 1
                    self.stats["start_failures"] += 1
                    log.warning("worker.start_failed", error=str(exc),
                                consecutive=self._consecutive_start_failures)
                    if self._consecutive_start_failures >= self.config.broken_after:
                        self._mark_broken(f"workers keep failing to start: {exc}")
                    continue
                self._consecutive_start_failures = 0
                self._broken = None
                if self._closed:
                    await worker.kill()
                    return
                try:
                    with anyio.fail_after(self.config.start_timeout):
                        await self._warmup(worker)
                except Exception as exc:  # warm-up is an optimisation; a failure is not fatal
                    log.warning("worker.warmup_failed", worker_pid=worker.pid, error=str(exc))
                    if not worker.alive or worker.doomed:
                        self._all.discard(worker)
                        await worker.kill()
                        continue
                if spare:
                    self._spares.append(worker)
                else:
                    log.info("worker.restart", worker_pid=worker.pid, spare=False)
                    self._idle_send.send_nowait(worker)
                return
        finally:
            self._pending_spawns -= 1

    def _mark_broken(self, reason: str) -> None:
        self._broken = reason
        for _ in range(self._waiting):
            self._idle_send.send_nowait(_Broken())

    async def _watch(self, worker: Worker) -> None:
        """Keep the worker's last words and, if it dies while idle or spare (e.g. SIGKILLed by
        someone else), replace it at once instead of when a caller next draws it."""
        await worker.drain_stderr()
        with anyio.CancelScope(shield=True):
            await worker.process.wait()
        if self._closed or worker not in self._all or worker in self._lent:
            return
        self.stats["died_idle"] += 1
        log.warning("worker.died_idle", worker_pid=worker.pid, reason=worker.exit_description())
        await self._retire(worker, failed=True)

    async def _spawn_one(self) -> Worker:
        worker = await Worker.spawn(options=self.config.worker_options,
                                    start_timeout=self.config.start_timeout)
        if not self.layers:
            self.layers = worker.layers
            log.info("sandbox.layers", layers={ly["name"]: ly["active"] for ly in worker.layers},
                     inactive={ly["name"]: ly["detail"] for ly in worker.layers if not ly["active"]})
        self._all.add(worker)
        self.stats["started"] += 1
        log.info("worker.start", worker_pid=worker.pid)
        assert self._tg is not None
        self._tg.start_soon(self._watch, worker)
        if self._closed:
            await worker.kill()
            raise RuntimeClosed("the runtime closed while a worker started")
        return worker
