"""cortex_runtime/placement.py: where a worker runs, and moving it off the supervisor's CPU.

Checked on real processes: the CPU read from /proc is one the process may run on, a move leaves
its CPU mask as it was, and a process that is gone, or a CPU it may not run on, is no error.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from cortex_runtime.placement import Placement, current_cpu


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        yield process
    finally:
        process.kill()
        process.wait()


def test_this_thread_s_cpu_is_one_it_may_run_on() -> None:
    cpu = current_cpu()
    assert cpu is not None, "sched_getcpu is missing: the placement check cannot run here"
    assert cpu in os.sched_getaffinity(0)


def test_a_worker_s_cpu_is_read_from_proc(sleeper: subprocess.Popen[bytes]) -> None:
    placement = Placement(sleeper.pid)
    try:
        cpu = placement.cpu()
        assert cpu is not None and cpu in os.sched_getaffinity(sleeper.pid)
    finally:
        placement.close()
    assert placement.cpu() is None  # closed: no longer read


def test_moving_a_worker_off_a_cpu_leaves_its_mask_as_it_was(
    sleeper: subprocess.Popen[bytes],
) -> None:
    placement = Placement(sleeper.pid)
    mask = os.sched_getaffinity(sleeper.pid)
    cpu = min(mask)
    assert placement.move_off(cpu) is (len(mask) > 1)
    assert os.sched_getaffinity(sleeper.pid) == mask
    outside = max(range(os.cpu_count() or 1)) + 1
    assert placement.move_off(outside) is False  # not a CPU it may run on: nothing to do
    assert os.sched_getaffinity(sleeper.pid) == mask
    placement.close()


def test_a_worker_that_is_gone_is_no_error() -> None:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    placement = Placement(process.pid)
    assert placement.cpu() is not None or process.poll() is not None
    process.wait()
    assert placement.move_off(0) is False
    assert placement.cpu() is None
