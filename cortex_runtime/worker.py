"""One worker process as the supervisor sees it: spawn it, exchange frames, kill it.

The channel is a pair of pipes on dedicated descriptors (not the worker's stdin/stdout, which point
at /dev/null), read and written without blocking through anyio, so this works under asyncio and
trio alike. The worker is hostile until proven otherwise: every frame is size-checked before its
body is read, and anything unexpected is a :class:`ProtocolError`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import fcntl
import math
import os
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import anyio.lowlevel
import orjson
import psutil
import sniffio
import structlog

from sandbox import PREPARED_PLUGINS
from sandbox.framing import (
    ATTACHMENT,
    LARGE_FRAME_BYTES,
    MAX_FRAME_BYTES,
    PROTOCOL_VERSION,
    FrameDecoder,
    FrameError,
    attachment_frame_head,
    drop_written,
    encode_frame,
    encode_frame_with_attachment,
)
from sandbox.jsoncheck import InvalidResult, decode_result

from .errors import ProtocolError, WorkerCrashed
from .flags import AsyncioFlag, Flag, flag_type
from .placement import Placement, current_cpu
from .procfile import ProcFile

log = structlog.get_logger("cortex_runtime")


class WorkerGone(WorkerCrashed):
    """The worker was dead before it ran a request: nothing ran, so a retry is safe."""


class WorkerTimedOut(WorkerCrashed):
    """The request passed its backstop deadline; the worker was killed."""


#: Error kinds after which the worker runs nothing more (docs/protocol.md): the supervisor
#: replaces it (defense in depth: a trap may be an attack on the engine).
FATAL_KINDS = frozenset({"trap", "fuel", "timeout", "memory"})
#: The reply to a request a retiring worker did not run (safe to send elsewhere).
RETIRED = "retired"

_SANDBOX_PARENT = str(Path(__file__).resolve().parent.parent)
# The worker leaves with os._exit: no interpreter teardown, so no wasmtime destructor runs after
# its async runtime is gone (that ordering can panic), and exit is immediate.
_BOOT = (
    "import os, sys; sys.path.insert(0, sys.argv.pop(1)); "
    "import sandbox.worker as w; w.main(sys.argv[1:]); sys.stderr.flush(); os._exit(0)"
)
STDERR_TAIL_LINES = 20
#: Weight of the newest request in ``Worker.service_time``.
SERVICE_TIME_WEIGHT = 0.25
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
#: PIPE_BUF: a write of at most this many bytes to a pipe is atomic (POSIX: at least 512).
PIPE_ATOMIC_BYTES = getattr(select, "PIPE_BUF", 512)


class EncodedRequest:
    """A request encoded once for sending again and again (a capability's call with the
    manifest's limits): its JSON object up to where each sending's id goes."""

    __slots__ = ("head", "op")

    def __init__(self, message: dict[str, Any]) -> None:
        if "id" in message:
            raise ValueError("the id is added when the request is sent")
        self.op = message.get("op")
        body = orjson.dumps(message)
        self.head = body[:-1] + (b',"id":' if message else b'"id":')


#: How long the supervisor may poll for a load's reply (and the reply to the first call behind
#: it) before it sleeps: see ``Worker._may_spin``.
LOAD_SPIN_SECONDS = 0.001
#: A request the worker has not begun to read this long after it was written, while the
#: supervisor polls for its reply: the supervisor checks whether the worker waits for the
#: supervisor's own CPU (see ``Worker._may_spin`` and ``cortex_runtime.placement``).
UNREAD_GRACE = 30e-6
#: The polling for a reply lasts at most this many spin windows (see ``Worker._may_spin``).
MAX_SPIN_WINDOWS = 5


class Outstanding:
    """Requests in flight across one pool's workers, and how long (seconds) the supervisor may
    keep its event loop turning for the reply to a lone quick one instead of sleeping
    (``Runtime``'s ``supervisor_spin``). One object per pool, shared by its workers."""

    __slots__ = ("requests", "spin")

    def __init__(self, spin: float = 0.0) -> None:
        self.requests = 0
        self.spin = spin


class Worker:
    """A running worker process and the supervisor's end of its channel."""

    def __init__(self, process: anyio.abc.Process, send_fd: int, recv_fd: int) -> None:
        self.process = process
        self.pid: int = process.pid
        self._send_fd = send_fd
        self._recv_fd = recv_fd
        self._decoder = FrameDecoder(limit=MAX_FRAME_BYTES)
        self._inbox: collections.deque[dict[str, Any]] = collections.deque()
        self._next_id = 0
        self._closed = False
        #: Set once the process is known to be gone: our ends of its pipes closed, or the pool's
        #: watcher reaped it. What the pool reads on every pick, instead of ``alive`` (which asks
        #: the process object, through three layers of properties, each time).
        self.ended = False
        #: Plugins loaded in the worker, least recently called first (see
        #: ``Runtime(max_resident_plugins=...)``).
        self.loaded: collections.OrderedDict[str, None] = collections.OrderedDict()
        #: Callers holding this worker for a plugin (digest -> how many): a plugin is not
        #: unloaded while one may still send it a call.
        self.holding: dict[str, int] = {}
        self.calls = 0
        self.started_at = time.monotonic()
        self.stderr_tail: collections.deque[str] = collections.deque(maxlen=STDERR_TAIL_LINES)
        #: Set when the worker must not serve another call (it trapped, timed out, misbehaved).
        self.doomed = False
        #: Whether the kernel kills it if the supervisor dies (PR_SET_PDEATHSIG): not when
        #: spawned from one of trio's short-lived threads, where the worker watches for it.
        self.dies_with_supervisor = False
        #: What ``_unread_bytes`` said as we closed our ends of the pipes.
        self._unread_at_close: int | None = None
        #: From the hello: the engine fingerprint (artifact cache key) and confinement layers.
        self.engine = ""
        self.layers: list[dict[str, Any]] = []
        self._inflight: collections.deque[InFlight] = collections.deque()
        self._send_lock = anyio.Lock(fast_acquire=True)
        self._new_flag = flag_type()
        #: asyncio: the reply pipe stays registered with the event loop while replies keep
        #: coming (``_wait_readable``); trio: ``anyio.wait_readable`` each time.
        self._loop: asyncio.AbstractEventLoop | None = (
            asyncio.get_running_loop() if self._new_flag is AsyncioFlag else None)
        self._reader_registered = False
        self._readable: AsyncioFlag | None = None
        #: Times in a row the reply pipe turned readable with no one waiting (see _on_readable).
        self._unwaited = 0
        #: Until when (monotonic) replies to a load and the call behind it are polled for.
        self._load_poll_until = 0.0
        #: Shared with the pool's other workers (the pool sets it): see ``_may_spin``.
        self.outstanding = Outstanding()
        #: One turn of the event loop, for ``_may_spin``'s polling.
        self._turn: Callable[[], Awaitable[None]] = (
            _asyncio_turn if self._loop is not None else anyio.lowlevel.checkpoint)
        self._wakeup = self._new_flag()
        #: Set once the channel died; later requests fail at once with ``WorkerGone``.
        self.failed: BaseException | None = None
        #: Callers currently holding this worker (see ``WorkerPool.acquire``).
        self.lent = 0
        #: Set when the worker should finish what it has and be retired (recycling).
        self.draining = False
        self.last_used = 0.0
        #: Called after each reply (the pool wakes a waiting caller: the worker may have room).
        self.on_reply: Callable[[], None] | None = None
        #: Plugins whose next instance the worker (probably) has ready, least recent first (a
        #: hint for affinity, mirroring the worker's own bounded set).
        self.prepared: collections.OrderedDict[str, None] = collections.OrderedDict()
        self.prepared_limit = PREPARED_PLUGINS
        self.rss_checked_at = 0
        #: Read by ``rss()``.
        self._statm = ProcFile(self.pid, "statm")
        #: Plugins being loaded into this worker right now (digest -> done).
        self.loading: dict[str, anyio.Event] = {}
        #: Of those, the ones whose load request is already in the pipe: a call sent now runs
        #: right after the load (pipelined) instead of waiting for its reply.
        self.load_sent: set[str] = set()
        #: Why the last load of a plugin failed (digest -> the worker's message).
        self.load_errors: dict[str, str] = {}
        #: Seconds a call recently spent at the head of the line, from when it got there to its
        #: reply (a moving average; 0 before the first): how long the pool expects each request
        #: queued on this worker to add to the wait of those behind it.
        self.service_time = 0.0
        #: Seconds the worker itself recently took per call (the ``elapsed_us`` of its replies,
        #: a moving average): whether its calls are quick, whatever the pipes and CPUs add.
        self.work_time = 0.0
        self._placement = Placement(self.pid)
        #: The request whose placement ``_may_spin`` checked last (its call id).
        self._placement_checked = 0
        self._unqueueable = 0
        #: Chores among the requests in flight (see ``working``).
        self._chores = 0

    # -- life cycle ---------------------------------------------------------------------------

    @classmethod
    async def spawn(cls, *, options: dict[str, Any], start_timeout: float = 20.0) -> Worker:
        """Start a worker and wait for its hello; ``WorkerCrashed`` if it does not come up."""
        # PR_SET_PDEATHSIG follows the forking thread; trio forks from short-lived cache threads.
        dies_with_supervisor = sniffio.current_async_library() != "trio"
        options = dict(options, pdeathsig=dies_with_supervisor)
        to_worker_r, to_worker_w = os.pipe()
        from_worker_r, from_worker_w = os.pipe()
        try:
            process = await anyio.open_process(
                [sys.executable, "-I", "-c", _BOOT, _SANDBOX_PARENT, str(to_worker_r),
                 str(from_worker_w), str(os.getpid()), orjson.dumps(options).decode()],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                pass_fds=(to_worker_r, from_worker_w), env={}, start_new_session=True,
            )
        except BaseException:
            for fd in (to_worker_r, to_worker_w, from_worker_r, from_worker_w):
                os.close(fd)
            raise
        os.close(to_worker_r)
        os.close(from_worker_w)
        for fd in (to_worker_w, from_worker_r):
            _widen_pipe(fd)
        os.set_blocking(to_worker_w, False)
        os.set_blocking(from_worker_r, False)
        worker = cls(process, to_worker_w, from_worker_r)
        worker.prepared_limit = int(options.get("prepared_plugins", PREPARED_PLUGINS))
        worker.dies_with_supervisor = dies_with_supervisor
        try:
            with anyio.fail_after(start_timeout):
                hello = await worker._receive()
        except TimeoutError:
            await worker.kill()
            raise WorkerCrashed(f"worker {worker.pid} did not start within {start_timeout}s") from None
        except (WorkerCrashed, ProtocolError) as exc:
            await worker.kill()
            raise WorkerCrashed(f"worker failed to start: {exc.message}") from None
        except BaseException:
            with anyio.CancelScope(shield=True):
                await worker.kill()
            raise
        if hello.get("op") == "fatal":
            await worker.kill()
            raise WorkerCrashed(f"worker refused to start: {(hello.get('error') or {}).get('message')}")
        if hello.get("op") != "hello" or hello.get("protocol") != PROTOCOL_VERSION:
            await worker.kill()
            raise WorkerCrashed(f"worker sent an unexpected greeting: {str(hello)[:200]}")
        worker.engine = str(hello.get("engine", ""))
        layers = hello.get("layers")
        worker.layers = list(layers) if isinstance(layers, list) else []
        return worker

    @property
    def alive(self) -> bool:
        return not self._closed and self.process.returncode is None

    def note_prepared(self, digest: str, ready: bool) -> None:
        """Record whether the worker now has (or is making) ``digest``'s next instance."""
        if not ready or not self.prepared_limit:
            self.prepared.pop(digest, None)
            return
        self.prepared[digest] = None
        self.prepared.move_to_end(digest)
        while len(self.prepared) > self.prepared_limit:
            self.prepared.popitem(last=False)

    async def kill(self) -> None:
        """SIGKILL the worker, reap it, and close our ends of its pipes. Safe to call twice."""
        self.signal_kill()
        self._close_fds()
        with anyio.CancelScope(shield=True):
            await self.process.wait()
            await self.process.aclose()

    def signal_stop(self) -> None:
        """Send SIGSTOP now: the worker runs nothing more until it is killed."""
        self._signal(signal.SIGSTOP)

    def signal_kill(self) -> None:
        """Send SIGKILL now."""
        self._signal(signal.SIGKILL)

    def _signal(self, signum: int) -> None:
        """``os.kill`` rather than ``Popen.send_signal``: the latter polls first and may reap a
        just-died worker itself, and the event loop's child watcher then reports exit status 255
        instead of how the worker died. Until we reap it, its pid cannot be reused."""
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signum)

    async def stop(self, grace: float = 1.0) -> None:
        """Ask the worker to exit by closing its request pipe; kill it if it lingers."""
        self._close_fds()
        with anyio.CancelScope(shield=True):
            with anyio.move_on_after(grace):
                await self.process.wait()
            await self.kill()

    def _close_fds(self) -> None:
        if self._closed:
            return
        self._unread_at_close = self._unread_bytes()
        self._closed = self.ended = True
        if self._reader_registered and self._loop is not None:
            self._loop.remove_reader(self._recv_fd)
            self._reader_registered = False
        if self._readable is not None:
            self._readable.set()  # its waiter sees the worker closed
        for fd in (self._send_fd, self._recv_fd):
            anyio.notify_closing(fd)
            os.close(fd)
        self._statm.close()
        self._placement.close()
        self._wakeup.set()  # an idle ``serve`` loop notices and ends

    def rss(self) -> int:
        """Resident memory of the worker in bytes (0 if it is gone).

        Read from /proc/<pid>/statm through a descriptor kept open: 0.8 µs a read, against 19 µs
        for ``psutil.Process(pid).memory_info()`` (the pool checks every 16th call: that had been
        ~3% of the supervisor's time per call under load), and tied to this very process even
        if its pid were reused. psutil where there is no /proc."""
        statm = self._statm.read(128)
        if self._statm.readable:
            try:
                return int((statm or b"").split()[1]) * PAGE_BYTES
            except (ValueError, IndexError):
                return 0
        if self._closed:
            return 0
        try:
            return int(psutil.Process(self.pid).memory_info().rss)
        except psutil.Error:
            return 0

    def exit_description(self) -> str:
        code = self.process.returncode
        if code is None:
            status = "is still running"
        elif code < 0:
            status = f"was killed by signal {-code}"
        else:
            status = f"exited with status {code}"
        tail = " | ".join(list(self.stderr_tail)[-3:])
        return f"worker {self.pid} {status}" + (f"; its last words: {tail}" if tail else "")

    async def drain_stderr(self) -> None:
        """Keep the last lines the worker wrote to stderr, for crash reports and the log."""
        stream = self.process.stderr
        if stream is None:
            return
        pending = b""
        try:
            async for chunk in stream:
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    text = line.decode("utf-8", "replace")[:500]
                    self.stderr_tail.append(text)
                    log.debug("worker.stderr", worker_pid=self.pid, line=text)
                if len(pending) > 4096:
                    pending = pending[-4096:]
        except (anyio.ClosedResourceError, anyio.BrokenResourceError, OSError):
            return

    # -- messages -----------------------------------------------------------------------------
    #
    # Requests are pipelined: several callers may each have a request in flight on one worker.
    # The worker runs them one at a time in the order they were written, so replies come back in
    # that order; ``serve`` (one task per worker) reads them and hands each to its caller. The
    # request at the head of the line is the one running: it alone is subject to the backstop
    # deadline, and if the worker dies, it alone may have run; those behind it get ``WorkerGone``.

    async def request(self, message: dict[str, Any] | EncodedRequest, *,
                      payload: bytes | None = None,
                      backstop: float | None = None, queueable: bool = True) -> dict[str, Any]:
        """Send one request and return its reply. ``payload`` (JSON bytes) goes as the frame's attachment.

        ``backstop`` (seconds, counted from when the request starts running) bounds the wait: past
        it the worker is killed and ``WorkerTimedOut`` raised. Cancelling a request that is
        running kills the worker too (its state is unknown); one still queued is only abandoned.
        ``queueable``: whether other requests may be queued behind this one (False for a call
        that may well be slow: see ``accepts_more``).
        """
        return await self.reply_to(await self.submit(message, payload=payload, backstop=backstop,
                                                     queueable=queueable))

    async def submit(self, message: dict[str, Any] | EncodedRequest, *,
                     payload: bytes | None = None,
                     backstop: float | None = None, queueable: bool = True) -> InFlight:
        """The first half of :meth:`request`: once this returns, the request is in the pipe (a
        request sent later runs after it). Its reply is :meth:`reply_to`'s to wait for."""
        if self._closed or self.failed is not None:
            raise WorkerGone(self.exit_description())
        self._next_id += 1
        op = message.op if isinstance(message, EncodedRequest) else message.get("op")
        pending = InFlight(self._next_id, backstop, self._new_flag(), call=op == "call",
                           load=op == "load", chore=op == "unload", queueable=queueable)
        try:
            frame = _frame(message, pending.call_id, payload)
        except FrameError as exc:
            raise ProtocolError(str(exc)) from None
        pending.frame_bytes = len(frame) if isinstance(frame, bytes) else sum(map(len, frame))
        if not (isinstance(frame, bytes) and self._write_at_once(frame)):
            async with self._send_lock:
                await self._send(frame)
                self._enqueue(pending)
            return pending
        self._enqueue(pending)
        return pending

    def _write_at_once(self, frame: bytes) -> bool:
        """Write a small frame whole, now, if no one else is writing and the pipe takes all of
        it (the usual case): no lock to take, no await. False, having written nothing, if not.
        (The lock's bookkeeping had been ~2 µs a call, a few % of the supervisor's time.)"""
        if self._send_lock.locked() or self._closed or len(frame) > PIPE_ATOMIC_BYTES:
            return False
        try:
            # Up to PIPE_BUF bytes a pipe write is atomic: all of it or, if full, nothing.
            return os.write(self._send_fd, frame) == len(frame)
        except OSError:  # full (nothing written), or broken: ``_send`` says which
            return False

    def _enqueue(self, pending: InFlight) -> None:
        # No checkpoint between the last byte written and this append: the line's order is the
        # order of the frames in the pipe.
        if not self._inflight:
            pending.started = time.monotonic()
        self._inflight.append(pending)
        self.outstanding.requests += 1
        self._unqueueable += not pending.queueable
        self._chores += pending.chore
        self._wakeup.set()

    async def reply_to(self, pending: InFlight) -> dict[str, Any]:
        """The reply to a request :meth:`submit` sent (the second half of :meth:`request`)."""
        try:
            await pending.done.wait()
        except BaseException:
            if not pending.done.is_set():
                if self._inflight and self._inflight[0] is pending:
                    self.doomed = True
                    await self.kill()
                else:
                    pending.abandoned = True
            raise
        if pending.error is not None:
            raise pending.error
        assert pending.reply is not None
        self.calls += 1
        return pending.reply

    @property
    def accepts_more(self) -> bool:
        """Whether a request may be queued behind those in the line: not behind a call that may
        be slow (its plugin's recent calls were, or it has none yet), which would hold every
        request queued behind it for as long as it runs (up to its timeout, for a hostile one)."""
        return not self._unqueueable

    @property
    def inflight(self) -> int:
        """Requests written to the worker and not yet answered (abandoned ones included)."""
        return len(self._inflight)

    @property
    def working(self) -> int:
        """Requests in flight other than chores: an unload the supervisor sends behind a load
        takes the worker a moment and no caller waits on it, so a worker with nothing else in
        flight is as good as idle (better than another, colder one: see ``WorkerPool._pick``)."""
        return len(self._inflight) - self._chores

    def head_age(self) -> float:
        """Seconds the request now running has been running (0 if none)."""
        if not self._inflight or self._inflight[0].started is None:
            return 0.0
        return time.monotonic() - self._inflight[0].started

    async def serve(self) -> None:
        """Read replies and hand each to its caller, enforcing the head request's backstop.
        Runs for the worker's lifetime; when the channel dies, every pending caller is told."""
        error: BaseException | None = None
        try:
            # One scope for the worker's life, its deadline moved to each head request's backstop
            # (cheaper than a new timeout scope per reply). Leaving it normally means it expired.
            # The event loop's clock (trio's has an offset) against time.monotonic, read once:
            # two clock reads fewer per reply.
            clock_offset = anyio.current_time() - time.monotonic()
            with anyio.CancelScope() as backstop:
                while True:
                    if not self._inflight:
                        if self._closed:
                            return
                        backstop.deadline = math.inf
                        self._wakeup = self._new_flag()
                        await self._wakeup.wait()
                        continue
                    head = self._inflight[0]
                    if head.started is None:
                        head.started = time.monotonic()
                    if head.load:
                        self._load_poll_until = head.started + LOAD_SPIN_SECONDS
                    backstop.deadline = math.inf if head.backstop is None else (
                        clock_offset + head.started + head.backstop)
                    reply = await self._receive()
                    if reply.get("id") != head.call_id:
                        if reply.get("op") == "fatal":
                            problem = f"refused a request: {(reply.get('error') or {}).get('message')}"
                        else:
                            problem = f"answered request {head.call_id} with id {reply.get('id')!r}"
                        error = ProtocolError(f"worker {self.pid} {problem}")
                        return
                    self._inflight.popleft()
                    self.outstanding.requests -= 1
                    self._unqueueable -= not head.queueable
                    self._chores -= head.chore
                    now = time.monotonic()
                    if head.call:  # loads and prepares are one-offs, not the line's usual pace
                        self._note_service(now - head.started, reply.get("elapsed_us"))
                    if self._inflight:
                        self._inflight[0].started = now
                    if reply.get("ok") is False:
                        problem_kind = reply.get("error")
                        kind = problem_kind.get("kind") if isinstance(problem_kind, dict) else None
                        if kind in FATAL_KINDS or kind == RETIRED:
                            # The worker retires itself after these (it runs nothing more); so do we.
                            self.doomed = True
                    head.reply = reply
                    head.done.set()
                    if self.on_reply is not None:
                        self.on_reply()
            error = WorkerTimedOut(f"worker {self.pid} passed the request's deadline")
        except (WorkerCrashed, ProtocolError) as exc:
            error = exc
        except BaseException:
            error = WorkerCrashed(f"worker {self.pid} was stopped during the request")
            raise
        finally:
            if error is not None or self._inflight:
                self._fail_all(error or WorkerCrashed(self.exit_description()))
                with anyio.CancelScope(shield=True):
                    await self.kill()

    def _note_service(self, seconds: float, elapsed_us: Any = None) -> None:
        """Fold one call's time at the head of the line into ``service_time``, and the time
        the worker says it took into ``work_time``."""
        self.service_time = _moving_average(self.service_time, seconds)
        if isinstance(elapsed_us, int):
            self.work_time = _moving_average(self.work_time, elapsed_us / 1e6)

    def _fail_all(self, error: BaseException) -> None:
        """The channel is dead: the head request gets ``error``; the rest never ran. Nor did the
        head if the worker died (not timed out) before reading a byte of it."""
        self.doomed = True
        self.failed = error
        first = not (type(error) is WorkerCrashed and self._none_read())
        self._unqueueable = 0
        self._chores = 0
        while self._inflight:
            pending = self._inflight.popleft()
            self.outstanding.requests -= 1
            pending.error = error if first else WorkerGone(
                f"worker {self.pid} stopped before running the request ({error})")
            first = False
            pending.done.set()

    def _none_read(self) -> bool:
        """Whether every byte of every request in the line is still in the request pipe (or was
        when we closed it): the worker read none of them, so none ran. (One killed while idle
        keeps the pipe open until its last thread has exited, ~2 ms, long enough for a call to
        be written to it.)"""
        unread = self._unread_at_close if self._closed else self._unread_bytes()
        return (unread is not None and bool(self._inflight)
                and unread >= sum(pending.frame_bytes for pending in self._inflight))

    def _unread_bytes(self) -> int | None:
        """Bytes written to the request pipe that the worker has not read (None if unknown)."""
        try:
            return int(struct.unpack("i", fcntl.ioctl(self._send_fd, termios.FIONREAD,
                                                      b"\0" * 4))[0])
        except OSError:
            return None

    async def _send(self, frame: bytes | tuple[bytes, bytes]) -> None:
        """Write a frame: one buffer, or a large attachment's head and the attachment itself,
        gathered from where they lie (``os.writev``) rather than joined first."""
        if isinstance(frame, bytes):
            views = [memoryview(frame)]
            total = left = len(frame)
        else:
            views = [memoryview(part) for part in frame]
            total = left = sum(len(view) for view in views)
        try:
            while views:
                if self._closed:
                    raise WorkerGone(self.exit_description())
                try:
                    written = (os.write(self._send_fd, views[0]) if len(views) == 1
                               else os.writev(self._send_fd, views))
                except BlockingIOError:
                    await self._wait(anyio.wait_writable, self._send_fd)
                    continue
                except OSError:
                    self.doomed = True
                    await self._reap_briefly()
                    raise WorkerGone(self.exit_description()) from None
                left -= written
                drop_written(views, written)
        except BaseException:
            if 0 < left < total:  # half a frame is in the pipe: the channel is unusable
                self.doomed = True
                await self.kill()
            raise

    async def _receive(self) -> dict[str, Any]:
        while not self._inbox:
            if self._closed:
                raise WorkerCrashed(self.exit_description())
            try:
                messages = self._decoder.read_from(self._recv_fd)
                if messages:
                    for message in messages:
                        if ATTACHMENT in message:
                            _result_from_attachment(message)
            except BlockingIOError:
                if self._may_spin():
                    await self._turn()
                else:
                    await self._wait_readable()
                continue
            except FrameError as exc:
                self.doomed = True
                raise ProtocolError(f"worker {self.pid} sent a bad frame: {exc}") from None
            except OSError:
                messages = None
            if messages is None:
                self.doomed = True
                await self._reap_briefly()
                raise WorkerCrashed(self.exit_description())
            self._unwaited = 0
            self._inbox.extend(messages)
        return self._inbox.popleft()

    def _may_spin(self) -> bool:
        """Whether to poll the reply pipe on the next turn of the event loop rather than sleep
        until it is readable: only for the one request in flight in the whole pool, expected
        quick (the worker's own recent calls took at most the spin window), and only until the
        spin window has passed beyond the usual round trip (``service_time``; at most
        MAX_SPIN_WINDOWS windows in all). The loop keeps turning, so other tasks run as usual;
        what it saves is the wake-up of an idle CPU when the reply comes, ~30-40 µs of a tiny
        call's round trip on a VM. And a supervisor woken by the reply may be put on the
        worker's CPU, after which the two run one after the other: quickness is judged by the
        worker's own time, and the window stretched with the round trip, so that a slower host,
        or a round trip that co-location has already slowed, does not stop the polling that
        keeps them apart (docs/performance.md, calls after an idle spell). A worker that has not
        begun to read its request ``UNREAD_GRACE`` into the polling was woken onto this CPU, or
        is waking elsewhere: in the first case it is moved off this CPU, which the polling
        would otherwise keep from it (``cortex_runtime.placement``).

        After a load has headed this worker's line, with at most one request behind it (usually
        the plugin's first call) and nothing else in flight in the pool, it polls until
        ``LOAD_SPIN_SECONDS`` from the load's start: the load takes a few hundred µs, the first
        call's reply follows, and each wake-up in between cost 150-300 µs in this VM's slow mode
        (docs/performance.md, cold start). Loads are rare: that is at most 1 ms of CPU per load."""
        spin = self.outstanding.spin
        lined_up = len(self._inflight)
        if not spin or not lined_up or self.outstanding.requests != lined_up:
            return False
        now = time.monotonic()
        if lined_up <= 2 and now < self._load_poll_until:
            return True
        if lined_up != 1:
            return False
        head = self._inflight[0]
        started = head.started
        if (self.work_time > spin or started is None
                or now - started >= reply_poll_window(spin, self.service_time)):
            return False
        if now - started < UNREAD_GRACE or self._placement_checked == head.call_id:
            return True
        self._placement_checked = head.call_id
        if not self._line_unread():
            return True  # the worker is at it
        # It has not run since the request woke it. Waiting for this very CPU, it would wait
        # for the polling to end: move it off, or, if it cannot be moved (or where it waits
        # cannot be told), stop polling and let it run.
        cpu = current_cpu()
        where = self._placement.cpu()
        if cpu is not None and where is not None and where != cpu:
            return True  # waking elsewhere
        return cpu is not None and self._placement.move_off(cpu)

    def _line_unread(self) -> bool:
        """Whether the worker has read nothing of its line yet (every byte still in the pipe)."""
        unread = self._unread_bytes()
        return unread is not None and unread >= sum(p.frame_bytes for p in self._inflight)

    async def _wait_readable(self) -> None:
        """Until the reply pipe has something to read. On asyncio the pipe is registered with
        the loop once, and stays registered as long as someone is waiting each time it turns
        readable (anyio's ``wait_readable`` adds and removes it on every wait: two ``epoll_ctl``
        calls and their bookkeeping, ~6% of the supervisor's samples under load)."""
        loop = self._loop
        if loop is None:
            await self._wait(anyio.wait_readable, self._recv_fd)
            return
        flag = self._readable = AsyncioFlag()
        if not self._reader_registered:
            loop.add_reader(self._recv_fd, self._on_readable)
            self._reader_registered = True
        try:
            await flag.wait()
        finally:
            self._readable = None
        if self._closed:
            raise WorkerCrashed(f"worker {self.pid} was stopped during the request")

    def _on_readable(self) -> None:
        if self._readable is not None:
            self._readable.set()
            return
        # Readable with no one waiting. Once is usual: the loop polled the pipe again before the
        # task it had woken for a reply read it, or a reader polling it (_may_spin) read it first.
        # Twice in a row is a frame nobody waits for: watching on would call this every turn.
        self._unwaited += 1
        if self._unwaited >= 2 and self._loop is not None:
            self._loop.remove_reader(self._recv_fd)
            self._reader_registered = False

    async def _wait(self, wait: Callable[[int], Awaitable[None]], fd: int) -> None:
        try:
            await wait(fd)
        except anyio.ClosedResourceError:
            # Another task killed this worker (shutdown, or its call's deadline) while we waited.
            raise WorkerCrashed(f"worker {self.pid} was stopped during the request") from None

    async def _reap_briefly(self) -> None:
        """Give a dying worker a moment to be reaped, so the error can say how it died."""
        with anyio.move_on_after(0.2), anyio.CancelScope(shield=True):
            await self.process.wait()


class InFlight:
    """One request in flight: its id, backstop, and (once done) its reply or error."""

    __slots__ = ("abandoned", "backstop", "call", "call_id", "chore", "done", "error", "frame_bytes",
                 "load", "queueable", "reply", "started")

    def __init__(self, call_id: int, backstop: float | None, done: Flag, *, call: bool = False,
                 load: bool = False, chore: bool = False, queueable: bool = True) -> None:
        self.call_id = call_id
        self.call = call
        self.load = load
        #: Brief housekeeping no caller waits on (an unload): see ``Worker.working``.
        self.chore = chore
        self.queueable = queueable
        self.backstop = backstop
        self.started: float | None = None
        #: Size of its frame in the request pipe.
        self.frame_bytes = 0
        #: Set once ``reply`` or ``error`` is.
        self.done = done
        self.reply: dict[str, Any] | None = None
        self.error: BaseException | None = None
        self.abandoned = False


F_SETPIPE_SZ = 1031
PIPE_BYTES = 1 << 20


async def _asyncio_turn() -> None:
    """One turn of the asyncio event loop (its poll for I/O then does not block)."""
    await asyncio.sleep(0)


def reply_poll_window(spin: float, service_time: float) -> float:
    """Seconds from a lone quick request's write during which its reply is polled for: the
    spin window past the worker's usual round trip, and at most MAX_SPIN_WINDOWS windows."""
    return min(spin + service_time, spin * MAX_SPIN_WINDOWS)


def _moving_average(average: float, sample: float) -> float:
    """``average`` moved toward ``sample`` by SERVICE_TIME_WEIGHT (``sample`` itself at first)."""
    return average + (sample - average) * SERVICE_TIME_WEIGHT if average else sample


def _widen_pipe(fd: int) -> None:
    """Grow the pipe's kernel buffer (64 KiB by default) so a large frame crosses in a few
    wake-ups instead of dozens; the limit is /proc/sys/fs/pipe-max-size, failure only costs speed."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError):
            fcntl.fcntl(fd, F_SETPIPE_SZ, PIPE_BYTES)


def _result_from_attachment(reply: dict[str, Any]) -> None:
    """A large result arrives as the reply frame's attachment, unchecked: decode and check it
    into ``result`` (one parse, where the worker would have parsed it once more to check it).
    A result that is not JSON the supervisor can decode exactly turns the reply into the
    ``invalid_output`` error a worker gives for a small one. An attachment on any other reply,
    or beside a result, breaks the protocol."""
    attachment = reply.pop(ATTACHMENT)
    if reply.get("ok") is not True or "result" in reply:
        raise FrameError("an attachment on a reply that is not a success without a result")
    try:
        reply["result"] = decode_result(attachment)
    except InvalidResult as exc:
        reply["ok"] = False
        reply["error"] = {"kind": "invalid_output", "message": str(exc)}


def _frame(message: dict[str, Any] | EncodedRequest, call_id: int,
           payload: bytes | None) -> bytes | tuple[bytes, bytes]:
    """The request's frame; ``payload`` (a call's input) travels as the raw attachment, so the
    guest gets the caller's bytes exactly, escapes and all, with no re-encoding on either side.
    A large payload is left where it is, behind the frame's head (see ``_send``)."""
    if isinstance(message, EncodedRequest):
        body = b"%s%d}" % (message.head, call_id)
    else:
        body = orjson.dumps(dict(message, id=call_id))
    if payload is None:
        return encode_frame(body)
    if len(payload) >= LARGE_FRAME_BYTES:
        return attachment_frame_head(body, len(payload)), payload
    return encode_frame_with_attachment(body, payload)
