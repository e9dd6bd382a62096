"""Keeps a worker off the supervisor's own CPU.

A request written to a sleeping worker wakes it, and a pipe write is a synchronous wake-up: the
kernel may put the worker on the writer's CPU, and does so on a VM once the other virtual CPUs
have been idle for tens of ms (an idle virtual CPU does not count as available). The two then
wake each other on that one CPU and run one after the other while the others idle, call after
call, and the supervisor's polling for a reply keeps the worker waiting (docs/performance.md,
calls after an idle spell). ``Worker._may_spin`` notices a request left unread and, if the
worker is queued on the supervisor's CPU, moves it off that CPU and gives it its own CPU mask
back at once; the polling then keeps them apart (a polling supervisor is not woken, so not moved).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
from collections.abc import Callable

from .procfile import ProcFile

#: /proc/<pid>/stat: the fields after the command's closing parenthesis start at field 3
#: (state); field 39 is the CPU the task last ran on, or is queued on.
_PROCESSOR_FIELD = 39 - 3


def _cpu_getter() -> Callable[[], int] | None:
    with contextlib.suppress(OSError, AttributeError):  # not glibc, or no sched_getcpu
        getter = ctypes.CDLL(None, use_errno=True).sched_getcpu
        getter.restype = ctypes.c_int
        getter.argtypes = []
        if getter() >= 0:
            return getter
    return None


_sched_getcpu = _cpu_getter()


def current_cpu() -> int | None:
    """The CPU this thread runs on (None where that cannot be known)."""
    return _sched_getcpu() if _sched_getcpu is not None else None


class Placement:
    """Where one worker process's main thread is, and moving it elsewhere."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._stat = ProcFile(pid, "stat")

    def cpu(self) -> int | None:
        """The CPU the worker's main thread last ran on, or is waiting for (None if unknown)."""
        stat = self._stat.read(1024)
        if stat is None:
            return None
        try:
            return int(stat.rsplit(b")", 1)[1].split()[_PROCESSOR_FIELD])
        except (ValueError, IndexError):
            return None

    def move_off(self, cpu: int) -> bool:
        """Move the worker's main thread off ``cpu`` if its CPU mask allows another, leaving
        the mask as it was; False if it could not be moved (a mask of that CPU alone, a process
        that is gone or not ours to move)."""
        try:
            mask = os.sched_getaffinity(self.pid)
            if cpu not in mask or len(mask) < 2:
                return False
            os.sched_setaffinity(self.pid, mask - {cpu})
            os.sched_setaffinity(self.pid, mask)
        except OSError:
            return False
        return True

    def close(self) -> None:
        self._stat.close()
