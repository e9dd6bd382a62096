"""Process hygiene applied first thing in a worker, before it touches any plugin.

The worker must die with its supervisor and must not hold anything it did not need: no inherited
file descriptors, no usable stdin/stdout. (Seccomp, Landlock and rlimits come in a later layer.)
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time

PR_SET_PDEATHSIG = 1
PARENT_CHECK_SECONDS = 0.5


def die_with_parent(parent_pid: int) -> None:
    """Ask the kernel for SIGKILL when the parent dies, then close the race where it already has."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent_pid:
        os._exit(70)

    def watch() -> None:
        while True:
            time.sleep(PARENT_CHECK_SECONDS)
            if os.getppid() != parent_pid:
                os._exit(70)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def close_inherited_fds(keep: set[int]) -> list[int]:
    """Close every descriptor except stdio and ``keep``; return the ones that were open."""
    stray: list[int] = []
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        return stray
    for name in names:
        fd = int(name)
        if fd <= 2 or fd in keep:
            continue
        try:
            os.close(fd)
            stray.append(fd)
        except OSError:
            pass  # the descriptor listdir itself used
    return stray


def silence_stdio() -> None:
    """Point stdin and stdout at /dev/null: stray prints can never reach the protocol channel."""
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    os.close(devnull)
