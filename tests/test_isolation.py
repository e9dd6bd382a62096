"""What a plugin's worker can reach: WASI with nothing granted, and a life tied to its supervisor."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from support import wait_gone, write_plugin

from cortex_runtime import Runtime

WASI_PROBE = r"""
(module
  (import "wasi_snapshot_preview1" "environ_sizes_get" (func $env (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_sizes_get" (func $args (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_prestat_get" (func $prestat (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $read (param i32 i32 i32 i32) (result i32)))
  (import "cortex" "error" (func $error (param i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 100) "environment is not empty")
  (data (i32.const 200) "arguments are not empty")
  (data (i32.const 300) "a directory is preopened")
  (data (i32.const 400) "stdin gave data")
  (data (i32.const 500) "\04\00\00\00true")
  (func (export "cortex_alloc") (param i32) (result i32) i32.const 4096)
  (func (export "probe") (param i32 i32) (result i32)
    ;; environment: count at 16, buffer size at 20
    (drop (call $env (i32.const 16) (i32.const 20)))
    (if (i32.ne (i32.load (i32.const 16)) (i32.const 0))
      (then (call $error (i32.const 100) (i32.const 24)) (return (i32.const 0))))
    (drop (call $args (i32.const 16) (i32.const 20)))
    (if (i32.ne (i32.load (i32.const 16)) (i32.const 0))
      (then (call $error (i32.const 200) (i32.const 23)) (return (i32.const 0))))
    ;; fd 3 would be the first preopen; with none granted it is EBADF (8)
    (if (i32.ne (call $prestat (i32.const 3) (i32.const 32)) (i32.const 8))
      (then (call $error (i32.const 300) (i32.const 24)) (return (i32.const 0))))
    ;; stdin: one iovec {ptr 1024, len 64} at 40, bytes read at 48
    (i32.store (i32.const 40) (i32.const 1024))
    (i32.store (i32.const 44) (i32.const 64))
    (drop (call $read (i32.const 0) (i32.const 40) (i32.const 1) (i32.const 48)))
    (if (i32.ne (i32.load (i32.const 48)) (i32.const 0))
      (then (call $error (i32.const 400) (i32.const 15)) (return (i32.const 0))))
    i32.const 500)
)
"""


@pytest.mark.anyio
async def test_wasi_grants_nothing(tmp_path: Path) -> None:
    folder = write_plugin(tmp_path, "wasi-probe", WASI_PROBE)
    os.environ["CORTEX_TEST_SECRET"] = "must-not-leak"
    try:
        async with Runtime(workers=1, cache_dir=tmp_path / "cache") as rt:
            await rt.load(folder)
            assert await rt.call("wasi-probe", "probe", {}) is True
    finally:
        del os.environ["CORTEX_TEST_SECRET"]


SUPERVISOR = textwrap.dedent("""
    import sys, anyio
    from cortex_runtime import Runtime

    async def main():
        async with Runtime(workers=2, spare_workers=1, cache_dir=sys.argv[1]) as rt:
            print("PIDS", *rt.worker_pids, flush=True)
            await anyio.sleep(3600)

    anyio.run(main, backend=sys.argv[2])
""")


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_workers_die_with_their_supervisor(tmp_path: Path, backend: str) -> None:
    """Under asyncio by PR_SET_PDEATHSIG; under trio (which forks from short-lived threads, so
    PDEATHSIG is off) by the worker's pidfd watch on its parent: just as fast."""
    supervisor = subprocess.Popen(
        [sys.executable, "-c", SUPERVISOR, str(tmp_path / "cache"), backend],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        assert supervisor.stdout is not None
        line = ""
        while not line.startswith("PIDS"):  # structlog's default output shares stdout
            line = supervisor.stdout.readline()
            assert line, "the supervisor exited early"
        pids = [int(p) for p in line.split()[1:]]
        assert len(pids) == 3
        supervisor.send_signal(signal.SIGKILL)
        supervisor.wait(timeout=5)
        started = time.monotonic()
        survivors = wait_gone(pids, timeout=1.0)
        assert survivors == [], f"workers outlived their supervisor: {survivors}"
        assert time.monotonic() - started < 1.0
    finally:
        supervisor.kill()
        supervisor.wait()
