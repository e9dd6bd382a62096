"""Scenario D, the floor: a raw length-prefixed echo over the same kind of pipes.

A child Python process is started the way Cortex starts a worker (``python -I -c``, two pipes on
dedicated descriptors passed with ``pass_fds``, stdin/stdout on /dev/null, a new session) and
echoes every frame (4-byte big-endian length + body) back unchanged: no JSON, no wasm, no
confinement. The parent side uses the same mechanics as ``cortex_runtime.worker.Worker``:
non-blocking descriptors, ``os.write``/``os.read`` and ``anyio.wait_writable``/``wait_readable``
under the same event loop. What remains is the cost of the IPC round trip alone, which bounds
from below what any out-of-process design can reach with this Python event loop.
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import anyio.abc

HEADER = struct.Struct(">I")

_ECHO = r"""
import os, sys
rfd, wfd = int(sys.argv[1]), int(sys.argv[2])
def read_exactly(n):
    parts = []
    while n:
        chunk = os.read(rfd, min(n, 1 << 20))
        if not chunk:
            os._exit(0)
        parts.append(chunk)
        n -= len(chunk)
    return b"".join(parts)
while True:
    header = read_exactly(4)
    body = read_exactly(int.from_bytes(header, "big"))
    view = memoryview(header + body)
    while view:
        view = view[os.write(wfd, view):]
"""


class EchoChild:
    """One echo process and the parent's non-blocking ends of its two pipes."""

    def __init__(self, process: anyio.abc.Process, send_fd: int, recv_fd: int) -> None:
        self.process = process
        self.pid = process.pid
        self._send_fd = send_fd
        self._recv_fd = recv_fd
        self._buffer = bytearray()

    @classmethod
    async def spawn(cls) -> EchoChild:
        to_r, to_w = os.pipe()
        from_r, from_w = os.pipe()
        try:
            process = await anyio.open_process(
                [sys.executable, "-I", "-c", _ECHO, str(to_r), str(from_w)],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                pass_fds=(to_r, from_w), env={}, start_new_session=True,
            )
        finally:
            os.close(to_r)
            os.close(from_w)
        os.set_blocking(to_w, False)
        os.set_blocking(from_r, False)
        return cls(process, to_w, from_r)

    async def request(self, body: bytes) -> bytes:
        """Send one frame and return the echoed body."""
        view = memoryview(HEADER.pack(len(body)) + body)
        while view:
            try:
                view = view[os.write(self._send_fd, view):]
            except BlockingIOError:
                await anyio.wait_writable(self._send_fd)
        while True:
            if len(self._buffer) >= 4:
                (length,) = HEADER.unpack_from(self._buffer)
                if len(self._buffer) >= 4 + length:
                    reply = bytes(self._buffer[4:4 + length])
                    del self._buffer[:4 + length]
                    return reply
            try:
                chunk = os.read(self._recv_fd, 1 << 20)
            except BlockingIOError:
                await anyio.wait_readable(self._recv_fd)
                continue
            if not chunk:
                raise EOFError("echo child closed its pipe")
            self._buffer += chunk

    async def close(self) -> None:
        for fd in (self._send_fd, self._recv_fd):
            anyio.notify_closing(fd)
            os.close(fd)
        with anyio.CancelScope(shield=True):
            with anyio.move_on_after(1):
                await self.process.wait()
            if self.process.returncode is None:
                self.process.kill()
                await self.process.wait()
            await self.process.aclose()


class EchoPool:
    """``count`` echo children; ``request`` borrows an idle one (FIFO), like the worker pool."""

    def __init__(self, children: list[EchoChild]) -> None:
        self.children = children
        self._send, self._recv = anyio.create_memory_object_stream[EchoChild](len(children))
        for child in children:
            self._send.send_nowait(child)

    @property
    def pids(self) -> list[int]:
        return [child.pid for child in self.children]

    async def request(self, body: bytes) -> bytes:
        child = await self._recv.receive()
        try:
            return await child.request(body)
        finally:
            self._send.send_nowait(child)


@asynccontextmanager
async def echo_pool(count: int) -> AsyncIterator[EchoPool]:
    children: list[EchoChild] = []
    try:
        for _ in range(count):
            children.append(await EchoChild.spawn())
        yield EchoPool(children)
    finally:
        for child in children:
            await child.close()
