"""One worker process as the supervisor sees it: spawn it, exchange frames, kill it.

The channel is a pair of pipes on dedicated descriptors (not the worker's stdin/stdout, which point
at /dev/null), read and written without blocking through anyio, so this works under asyncio and
trio alike. The worker is hostile until proven otherwise: every frame is size-checked before its
body is read, and anything unexpected is a :class:`ProtocolError`.
"""

from __future__ import annotations

import collections
import contextlib
import fcntl
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import orjson
import psutil
import structlog

from sandbox.framing import (
    MAX_FRAME_BYTES,
    PROTOCOL_VERSION,
    FrameDecoder,
    FrameError,
    encode_frame,
)

from .errors import ProtocolError, WorkerCrashed

log = structlog.get_logger("cortex_runtime")


class WorkerGone(WorkerCrashed):
    """The worker was dead before it received a request: nothing ran, so a retry is safe."""

_SANDBOX_PARENT = str(Path(__file__).resolve().parent.parent)
# The worker leaves with os._exit: no interpreter teardown, so no wasmtime destructor runs after
# its async runtime is gone (that ordering can panic), and exit is immediate.
_BOOT = (
    "import os, sys; sys.path.insert(0, sys.argv.pop(1)); "
    "import sandbox.worker as w; w.main(sys.argv[1:]); sys.stderr.flush(); os._exit(0)"
)
STDERR_TAIL_LINES = 20


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
        self.loaded: set[str] = set()
        self.calls = 0
        self.started_at = time.monotonic()
        self.stderr_tail: collections.deque[str] = collections.deque(maxlen=STDERR_TAIL_LINES)
        #: Set when the worker must not serve another call (it trapped, timed out, misbehaved).
        self.doomed = False
        #: From the hello: the engine fingerprint (artifact cache key) and confinement layers.
        self.engine = ""
        self.layers: list[dict[str, Any]] = []

    # -- life cycle ---------------------------------------------------------------------------

    @classmethod
    async def spawn(cls, *, options: dict[str, Any], start_timeout: float = 20.0) -> Worker:
        """Start a worker and wait for its hello; ``WorkerCrashed`` if it does not come up."""
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

    async def kill(self) -> None:
        """SIGKILL the worker, reap it, and close our ends of its pipes. Safe to call twice."""
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
        self._close_fds()
        with anyio.CancelScope(shield=True):
            await self.process.wait()
            await self.process.aclose()

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
        self._closed = True
        for fd in (self._send_fd, self._recv_fd):
            anyio.notify_closing(fd)
            os.close(fd)

    def rss(self) -> int:
        """Resident memory of the worker in bytes (0 if it is gone)."""
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

    async def request(self, message: dict[str, Any], *, payload: bytes | None = None) -> dict[str, Any]:
        """Send one request and return its reply. ``payload`` (JSON bytes) goes as ``input_json``."""
        self._next_id += 1
        call_id = self._next_id
        body = _with_id(message, call_id, payload)
        await self._send(body)
        reply = await self._receive()
        if reply.get("id") != call_id:
            self.doomed = True
            if reply.get("op") == "fatal":
                error = reply.get("error") or {}
                raise ProtocolError(f"worker {self.pid} refused a request: {error.get('message')}")
            raise ProtocolError(
                f"worker {self.pid} answered request {call_id} with id {reply.get('id')!r}"
            )
        self.calls += 1
        return reply

    async def _send(self, data: bytes) -> None:
        try:
            frame = encode_frame(data)
        except FrameError as exc:
            raise ProtocolError(str(exc)) from None
        view = memoryview(frame)
        while view:
            if self._closed:
                raise WorkerCrashed(self.exit_description())
            try:
                written = os.write(self._send_fd, view)
            except BlockingIOError:
                await self._wait(anyio.wait_writable, self._send_fd)
                continue
            except OSError:
                self.doomed = True
                await self._reap_briefly()
                raise WorkerGone(self.exit_description()) from None
            view = view[written:]

    async def _receive(self) -> dict[str, Any]:
        while not self._inbox:
            if self._closed:
                raise WorkerCrashed(self.exit_description())
            try:
                chunk = os.read(self._recv_fd, 1 << 20)
            except BlockingIOError:
                await self._wait(anyio.wait_readable, self._recv_fd)
                continue
            except OSError:
                chunk = b""
            if not chunk:
                self.doomed = True
                await self._reap_briefly()
                raise WorkerCrashed(self.exit_description())
            try:
                self._inbox.extend(self._decoder.feed(chunk))
            except FrameError as exc:
                self.doomed = True
                raise ProtocolError(f"worker {self.pid} sent a bad frame: {exc}") from None
        return self._inbox.popleft()

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


F_SETPIPE_SZ = 1031
PIPE_BYTES = 1 << 20


def _widen_pipe(fd: int) -> None:
    """Grow the pipe's kernel buffer (64 KiB by default) so a large frame crosses in a few
    wake-ups instead of dozens; the limit is /proc/sys/fs/pipe-max-size, failure only costs speed."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError):
            fcntl.fcntl(fd, F_SETPIPE_SZ, PIPE_BYTES)


def _with_id(message: dict[str, Any], call_id: int, payload: bytes | None) -> bytes:
    fields = dict(message, id=call_id)
    if payload is not None:
        # As a JSON string: the guest gets the caller's bytes exactly, escapes and all.
        fields["input_json"] = payload.decode("utf-8")
    return orjson.dumps(fields)
