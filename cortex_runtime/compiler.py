"""The compiler: the one process whose compiled code goes into the cache, and it runs no guest code.

A plugin that escapes Wasmtime controls its worker until that worker is replaced. If serving workers
also compiled modules for the on-disk cache, such a worker could hand back native code of its own
for the next module it is asked to compile, and every later worker loading that module would run
it. So compiled code comes only from this process: a worker like the others (same confinement)
started with the ``compiler`` role, which compiles, describes and link-checks modules, never
instantiates one, and refuses any request that would run guest code. It starts on the first cache
miss and exits after ``idle_seconds`` without work, so a runtime whose plugins are all cached does
not keep it.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import structlog

from .worker import Worker

log = structlog.get_logger("cortex_runtime")


class Compiler:
    """Starts the compiler process on demand and retires it when idle."""

    def __init__(self, options: dict[str, Any], *, start_timeout: float, idle_seconds: float) -> None:
        self.options = dict(options, role="compiler")
        self.start_timeout = start_timeout
        self.idle_seconds = idle_seconds
        self._worker: Worker | None = None
        self._lock = anyio.Lock()
        self._tg: anyio.abc.TaskGroup | None = None
        self._busy = 0
        self._last_used = 0.0

    def start(self, tg: anyio.abc.TaskGroup) -> None:
        """Run the compiler's background tasks in ``tg`` (the runtime's task group)."""
        self._tg = tg

    @property
    def pid(self) -> int | None:
        """The compiler's process id while it runs."""
        worker = self._worker
        return int(worker.pid) if worker is not None and worker.alive else None

    async def compile(self, path: Path, digest: str, *, backstop: float) -> dict[str, Any]:
        """Compile the staged wasm at ``path``; the reply carries ``facts`` and, unless the code
        is too large to send, ``artifact_b64``. ``WorkerTimedOut`` past ``backstop`` seconds."""
        self._busy += 1
        try:
            worker = await self._ensure()
            return await worker.request({"op": "compile", "path": str(path), "digest": digest},
                                        backstop=backstop)
        finally:
            self._busy -= 1
            self._last_used = time.monotonic()

    async def close(self) -> None:
        worker, self._worker = self._worker, None
        if worker is not None:
            await worker.stop(0.5)

    async def _ensure(self) -> Worker:
        async with self._lock:
            worker = self._worker
            if worker is not None and worker.alive and worker.failed is None:
                return worker
            if worker is not None:
                await worker.kill()
            worker = self._worker = await Worker.spawn(options=self.options,
                                                       start_timeout=self.start_timeout)
            log.info("compiler.start", compiler_pid=worker.pid)
            assert self._tg is not None, "Compiler.start() was not called"
            self._tg.start_soon(worker.serve)
            self._tg.start_soon(worker.drain_stderr)
            self._tg.start_soon(self._retire_when_idle, worker)
            return worker

    async def _retire_when_idle(self, worker: Worker) -> None:
        """Stop the compiler once idle long enough; reap it if it died (crash, timeout kill)."""
        while self._worker is worker and worker.alive:
            idle = time.monotonic() - self._last_used
            if not self._busy and idle >= self.idle_seconds:
                self._worker = None
                log.info("compiler.exit", compiler_pid=worker.pid, reason="idle")
                await worker.stop(0.5)
                return
            with anyio.move_on_after(max(self.idle_seconds - idle, 0.05)):
                await worker.process.wait()
        if self._worker is worker:
            self._worker = None
        await worker.kill()  # reaped, pipes closed (safe if already done)
