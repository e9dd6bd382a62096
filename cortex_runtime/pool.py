"""The supervisor's pool of worker processes.

Callers borrow a worker for one request and give it back. An idle worker is preferred; when every
worker is busy, a caller may queue its request behind the one a worker is running (pipelining: as
many requests per worker as its recent pace fits in ``pipeline_budget``, never behind a call that
may be slow, and only behind a request that started moments ago), so the worker never waits for
the supervisor between calls. A worker that failed (trap, timeout, crash,
protocol violation, cancellation mid-call) is killed once its last borrower returns it and is
replaced; a spare worker started in advance takes its place at once, so the next call does not wait
for a process to boot. Replacements are rate-limited (restart intensity, then exponential
back-off) so a worker that dies at boot cannot make the pool spin. Workers are also recycled
after a number of calls or when their memory grows past a cap.
"""

from __future__ import annotations

import collections
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.abc
import structlog

from .errors import Overloaded, RuntimeClosed, WorkerCrashed
from .flags import Flag, flag_type
from .worker import Outstanding, Worker

log = structlog.get_logger("cortex_runtime")

#: Up to this many requests in a worker's line, a worker that has the plugin is preferred to one
#: that would have to load it (a load costs about as much as a few calls).
AFFINITY_LINE = 4


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
    #: Seconds between a spare going into service and the start of its own replacement.
    spare_settle: float = 0.1
    #: Seconds a failed worker stays stopped (SIGSTOP: it runs nothing more) before it is killed.
    #: Its exit (unmapping its memory) costs ~2 ms of a CPU, which the calls right after the
    #: fault would otherwise wait for on a small machine.
    kill_settle: float = 0.1
    #: Requests one worker may hold at once, at most (1 = no pipelining).
    pipeline_depth: int = 64
    #: How long (seconds) a request may expect to wait behind those already in a worker's line:
    #: a worker takes as many as its recent requests' service time fits in this (at least 1;
    #: tiny calls ~30, 1 ms calls 4, slower ones 1).
    pipeline_budget: float = 0.004
    #: Queue behind a running request only if it started less than this long ago (seconds), so a
    #: call does not wait behind a slow one while another worker could soon take it.
    pipeline_max_head_age: float = 0.002
    #: Passed to every worker: confinement switches, readable paths, memory limit.
    worker_options: dict[str, Any] = field(default_factory=dict)
    #: Seconds the supervisor may poll for the reply to a lone quick request (``Runtime``).
    supervisor_spin: float = 0.0
    #: How many plugins a worker keeps loaded (``Runtime(max_resident_plugins=...)``; None: no
    #: bound): a full worker takes a plugin it lacks only when none holds it.
    resident_plugins: int | None = None


class WorkerPool:
    """Owns the worker processes; lends them out one request at a time per borrower."""

    def __init__(self, config: PoolConfig, warmup: Callable[[Worker], Awaitable[None]]) -> None:
        self.config = config
        self._warmup = warmup
        #: Workers in service, in the order they entered it (spares are not in service).
        self._ready: list[Worker] = []
        self._all: set[Worker] = set()
        self._spares: list[Worker] = []
        #: Callers waiting for a worker, first come first served; each is woken by a set flag.
        self._waiters: collections.deque[Flag] = collections.deque()
        #: Makes those flags: a bare future on asyncio (``anyio.Event`` costs ~4.6 µs a use,
        #: paid by every call that waits in line under load), set for the running loop by start.
        self._new_flag: Callable[[], Flag] = anyio.Event
        self._waiting = 0
        self._closed = False
        self._tg: anyio.abc.TaskGroup | None = None
        #: Set by ``close``: failed workers waiting out ``kill_settle`` are killed at once.
        self._closing: anyio.Event | None = None
        self._restarts: collections.deque[float] = collections.deque()
        self._consecutive_start_failures = 0
        self._broken: str | None = None
        self._pending_spawns = 0
        #: The engine fingerprint the first worker reported (the compiled-artifact cache key).
        self.engine = ""
        #: The confinement layers the first worker reported (see sandbox/confine.py).
        self.layers: list[dict[str, Any]] = []
        #: Counters for tests, soak reports and the log.
        self.stats: collections.Counter[str] = collections.Counter()
        #: Requests in flight on all workers, shared with each (see ``Worker._may_spin``).
        self.outstanding = Outstanding(spin=config.supervisor_spin)

    # -- life cycle ---------------------------------------------------------------------------

    async def start(self, tg: anyio.abc.TaskGroup) -> None:
        """Start the initial workers and spares; fails if none of them can start."""
        self._tg = tg
        self._new_flag = flag_type()
        self._closing = anyio.Event()
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
                self._ready.append(worker)
            else:
                self._spares.append(worker)
        for worker in started:
            if not worker.alive:  # died before it was in service: its watcher left it to us
                self._retire(worker, failed=True)

    async def close(self) -> None:
        """Stop every worker (spares included). Calls still running get ``WorkerCrashed``."""
        self._closed = True
        if self._closing is not None:
            self._closing.set()
        workers = list(self._all)
        self._all.clear()
        self._spares.clear()
        self._ready.clear()
        with anyio.CancelScope(shield=True):
            async with anyio.create_task_group() as tg:
                for worker in workers:
                    tg.start_soon(worker.stop, 0.5)
        self._wake_all()

    @property
    def pids(self) -> list[int]:
        """Process ids of every live worker, spares included."""
        return sorted(w.pid for w in self._all if w.alive)

    @property
    def spares(self) -> list[Worker]:
        """The warm spares, not yet in service."""
        return list(self._spares)

    @property
    def busy_pids(self) -> list[int]:
        """Process ids of the workers currently running a request."""
        return sorted(w.pid for w in self._all if w.lent)

    # -- borrowing ----------------------------------------------------------------------------

    @asynccontextmanager
    async def borrow(self) -> AsyncIterator[Worker]:
        """Lend a worker for one request. Whatever leaves it in an unknown state (a fault, a
        cancelled running request, a broken channel) dooms it; it is replaced once every
        borrower is done."""
        worker = await self.acquire()
        try:
            yield worker
        finally:
            self.release(worker)

    async def acquire(self, prefer: str | None = None) -> Worker:
        """A worker with room for one more request: an idle one if any (one that has plugin
        ``prefer`` prepared or loaded first), else (pipelining) one whose running request just
        started; otherwise wait in line."""
        if self._closed:
            raise RuntimeClosed("the runtime is closed")
        if not self._waiters:  # nobody is in line: no need to queue (or to yield)
            worker = self._pick(prefer)
            if worker is not None:
                worker.lent += 1
                return worker
        if self._waiting >= self.config.max_queue:
            self.stats["overloaded"] += 1
            raise Overloaded(
                f"{self._waiting} calls are already waiting for a worker "
                f"(max_queue={self.config.max_queue})"
            )
        self._waiting += 1
        try:
            while True:
                if self._closed:
                    raise RuntimeClosed("the runtime closed while the call waited")
                if self._broken and not self._usable():
                    raise WorkerCrashed(self._broken)
                turn = self._new_flag()
                self._waiters.append(turn)
                try:
                    await turn.wait()
                except BaseException:
                    if turn.is_set():
                        self._wake_one()  # pass the turn on
                    else:
                        self._waiters.remove(turn)
                    raise
                worker = self._pick(prefer)
                if worker is not None:
                    worker.lent += 1
                    return worker
        finally:
            self._waiting -= 1

    def _usable(self) -> bool:
        return any(self._serviceable(w) for w in self._ready)

    @staticmethod
    def _serviceable(worker: Worker) -> bool:
        # ``ended``, not ``alive``: a worker reaped in this very turn of the event loop, before
        # its watcher ran, is still picked; its request then finds the pipe closed (WorkerGone)
        # and the call goes to another worker.
        return not (worker.doomed or worker.draining or worker.ended or worker.failed is not None)

    def _pick(self, prefer: str | None) -> Worker | None:
        """Best worker for a call of plugin ``prefer``, among the idle ones and those whose line
        has room (``_line_limit``), holds no call that may be slow and started moments ago: one
        that has the plugin loaded or its load request in the pipe while its line is short (a
        load costs about as much as a few calls), then an idle one, then one with the plugin's
        instance prepared, the shortest line, the most recently used (its CPU and caches are the
        warmest: sequential calls handed to two workers in turn took 195 µs p50, kept on one
        177 µs; under load the line lengths decide).

        When that choice is an idle worker, the most recently used idle worker takes the call
        instead if it has the plugin or room for it: sequential calls stay on one worker even
        when their plugins were loaded into different ones (back-to-back loads go to different
        workers), at the price of one load per plugin. Handed to two workers in turn, calls over
        two plugins took 71-79 µs p50 against 54 µs on one worker, over ten 89-98 against 62-67."""
        best: Worker | None = None
        best_rank: tuple[bool, bool, bool, int, float] = (False, False, False, 0, 0.0)
        warm: Worker | None = None
        config = self.config
        for worker in self._ready:
            if not self._serviceable(worker):
                continue
            idle = worker.lent == 0 and worker.working == 0
            if idle and (warm is None or worker.last_used > warm.last_used):
                warm = worker
            if not idle and not (worker.lent < self._line_limit(worker) and worker.accepts_more
                                 and worker.head_age() < config.pipeline_max_head_age):
                continue
            # The line: requests written (abandoned ones too; chores aside) or about to be (lent,
            # not yet sent: callers that acquired in the same event-loop turn have not written).
            line = max(worker.lent, worker.working)
            # Having the plugin outranks all else only while the line is short: past that, a
            # worker without it is worth one load, or under sustained load one worker would get
            # every call while another sat idle.
            affine = line < AFFINITY_LINE and (prefer in worker.loaded or prefer in worker.load_sent)
            rank = (affine, idle, prefer in worker.prepared, -line, worker.last_used)
            if best is None or rank > best_rank:
                best, best_rank = worker, rank
        if warm is not None and best is not warm and best_rank[1] and self._may_take(warm, prefer):
            return warm
        return best

    def _may_take(self, worker: Worker, digest: str | None) -> bool:
        """Whether ``worker`` has plugin ``digest`` or can load it without unloading another
        (and did not fail to load it before)."""
        if digest is None or digest in worker.loaded or digest in worker.load_sent:
            return True
        bound = self.config.resident_plugins
        return digest not in worker.load_errors and (
            bound is None or len(worker.loaded) + len(worker.load_sent) < bound)

    def _line_limit(self, worker: Worker) -> int:
        """How many requests ``worker`` may hold: as many as its recent service time fits in
        ``pipeline_budget`` (deep lines for tiny calls keep a busy worker from ever waiting for
        the supervisor; short ones for slow calls bound the wait behind them)."""
        config = self.config
        if worker.service_time <= 0:  # no call answered yet: the line affinity allows
            return min(config.pipeline_depth, AFFINITY_LINE)
        return max(1, min(config.pipeline_depth, int(config.pipeline_budget / worker.service_time)))

    def _wake_one(self) -> None:
        while self._waiters:
            turn = self._waiters.popleft()
            if not turn.is_set():
                turn.set()
                return

    def _wake_all(self) -> None:
        while self._waiters:
            self._waiters.popleft().set()

    def release(self, worker: Worker) -> None:
        """Take a worker back from one borrower; retire it once its last borrower is done if it
        failed or is due for recycling. Never blocks: killing and reaping happen in the
        background, so a caller whose call trapped gets its error at once."""
        worker.lent -= 1
        worker.last_used = time.monotonic()
        try:
            if self._closed or worker not in self._all:
                if not worker.lent:
                    self._dispose(worker, failed=True)
                return
            if worker.doomed or not worker.alive or worker.failed is not None:
                if not worker.lent:
                    self._retire(worker, failed=True)
                return
            self._check_recycling(worker)
            if worker.draining and not worker.lent:
                self._retire(worker, failed=False)
        finally:
            self._wake_one()

    def _check_recycling(self, worker: Worker) -> None:
        if worker.draining:
            return
        config = self.config
        if worker.calls >= config.max_calls_per_worker:
            self.stats["recycled_calls"] += 1
            log.info("worker.recycle", worker_pid=worker.pid, reason="calls", calls=worker.calls)
            worker.draining = True
        elif worker.calls // config.rss_check_every != worker.rss_checked_at:
            worker.rss_checked_at = worker.calls // config.rss_check_every
            rss = worker.rss()
            if rss > config.max_worker_rss:
                self.stats["recycled_rss"] += 1
                log.info("worker.recycle", worker_pid=worker.pid, reason="rss", rss=rss)
                worker.draining = True

    # -- replacement --------------------------------------------------------------------------

    def _retire(self, worker: Worker, *, failed: bool) -> None:
        """Take ``worker`` out of service and put a spare (or a new worker) in its place at once;
        it is killed (``failed``) or stopped in the background.

        Idempotent: a worker already retired (e.g. by its exit watcher) is only reaped again."""
        if worker not in self._all:
            self._dispose(worker, failed=True)
            return
        self._all.discard(worker)
        if worker in self._spares:
            self._spares.remove(worker)
        if worker in self._ready:
            self._ready.remove(worker)
        self.stats["killed" if failed else "retired"] += 1
        self._dispose(worker, failed=failed)
        if self._closed:
            return
        if self._spares:
            spare = self._spares.pop(0)
            self._ready.append(spare)
            self._wake_one()
            log.info("worker.restart", replaced=worker.pid, worker_pid=spare.pid, spare=True)
            self._schedule_spawn(spare=True, counted=failed)
        else:
            self._schedule_spawn(spare=False, counted=failed)

    def _dispose(self, worker: Worker, *, failed: bool) -> None:
        """Kill (or stop) and reap ``worker`` in the background. A failed worker is frozen now
        and killed ``kill_settle`` later, unless the pool is closing, or the worker would not die
        with the supervisor should the supervisor die meanwhile (no ``PR_SET_PDEATHSIG``: a
        stopped worker cannot watch for that itself): then it is killed now."""
        settle = 0.0
        if failed:  # now, not when the task first runs
            if worker.dies_with_supervisor and self.config.kill_settle > 0 and not self._closed:
                worker.signal_stop()
                settle = self.config.kill_settle
            else:
                worker.signal_kill()
        assert self._tg is not None
        self._tg.start_soon(self._reap, worker, failed, settle)

    async def _reap(self, worker: Worker, failed: bool, settle: float) -> None:
        with anyio.CancelScope(shield=True):
            if settle and self._closing is not None:
                with anyio.move_on_after(settle):
                    await self._closing.wait()
            if failed:
                await worker.kill()
                log.info("worker.exit", worker_pid=worker.pid, reason=worker.exit_description())
            else:
                await worker.stop()

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
            if spare:
                # A spare just went into service: let the calls right after the fault run before
                # a booting interpreter competes with them for the CPU.
                await anyio.sleep(self.config.spare_settle)
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
                if not worker.alive or worker.doomed:  # died during warm-up
                    self._all.discard(worker)
                    await worker.kill()
                    continue
                if spare:
                    self._spares.append(worker)
                else:
                    log.info("worker.restart", worker_pid=worker.pid, spare=False)
                    self._ready.append(worker)
                    self._wake_one()
                return
        finally:
            self._pending_spawns -= 1

    def _mark_broken(self, reason: str) -> None:
        self._broken = reason
        self._wake_all()

    async def _watch(self, worker: Worker) -> None:
        """Keep the worker's last words and, if it dies while idle or spare (e.g. SIGKILLed by
        someone else), replace it at once instead of when a caller next draws it."""
        await worker.drain_stderr()
        with anyio.CancelScope(shield=True):
            await worker.process.wait()
        worker.ended = True
        in_service = worker in self._ready or worker in self._spares
        if self._closed or worker not in self._all or worker.lent or not in_service:
            return  # a borrower, or the code starting it, deals with it
        self.stats["died_idle"] += 1
        log.warning("worker.died_idle", worker_pid=worker.pid, reason=worker.exit_description())
        self._retire(worker, failed=True)

    async def _spawn_one(self) -> Worker:
        worker = await Worker.spawn(options=self.config.worker_options,
                                    start_timeout=self.config.start_timeout)
        if not self.engine:
            self.engine = worker.engine
        if not self.layers:
            self.layers = worker.layers
            log.info("sandbox.layers", layers={ly["name"]: ly["active"] for ly in worker.layers},
                     inactive={ly["name"]: ly["detail"] for ly in worker.layers if not ly["active"]})
        worker.on_reply = self._wake_one
        worker.outstanding = self.outstanding
        self._all.add(worker)
        self.stats["started"] += 1
        log.info("worker.start", worker_pid=worker.pid)
        assert self._tg is not None
        self._tg.start_soon(worker.serve)
        self._tg.start_soon(self._watch, worker)
        if self._closed:
            await worker.kill()
            raise RuntimeClosed("the runtime closed while a worker started")
        return worker
