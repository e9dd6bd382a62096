"""`cortex doctor` reports the sandbox layers; `require_confinement` fails closed without them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import cortex_runtime.worker as worker_module
from cortex_runtime import Runtime
from cortex_runtime.errors import WorkerCrashed

CORTEX = str(Path(sys.executable).parent / "cortex")
LAYERS = {"pdeathsig", "netns", "rlimits", "no_new_privs", "landlock", "seccomp"}


def test_doctor_lists_every_layer(tmp_path: Path) -> None:
    done = subprocess.run([CORTEX, "--cache-dir", str(tmp_path), "doctor", "--json"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert {layer["name"] for layer in report["layers"]} == LAYERS
    assert report["all_active"] is True  # this host (Linux 6.x, root, libseccomp) has them all
    human = subprocess.run([CORTEX, "--cache-dir", str(tmp_path), "doctor", "--require-all"],
                           capture_output=True, text=True, timeout=60)
    assert human.returncode == 0 and "every layer is active" in human.stdout


@pytest.mark.anyio
async def test_runtime_logs_and_exposes_the_layers(tmp_path: Path) -> None:
    async with Runtime(workers=1, spare_workers=0, cache_dir=tmp_path) as rt:
        assert {layer["name"] for layer in rt.confinement if layer["active"]} == LAYERS


@pytest.mark.anyio
async def test_require_confinement_fails_closed_when_a_layer_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Simulate a kernel without Landlock inside the worker, before it confines itself.
    prefix = "import os, sys; sys.path.insert(0, sys.argv.pop(1)); "
    assert worker_module._BOOT.startswith(prefix)
    boot = (prefix + "import sandbox.confine as c; c.landlock_abi = lambda: 0; "
            + worker_module._BOOT.removeprefix(prefix))
    monkeypatch.setattr(worker_module, "_BOOT", boot)
    with pytest.raises(WorkerCrashed, match="required confinement unavailable: landlock"):
        async with Runtime(workers=1, spare_workers=0, cache_dir=tmp_path, require_confinement=True):
            pass
    # Without the requirement the same host degrades clearly: the layer is reported inactive.
    async with Runtime(workers=1, spare_workers=0, cache_dir=tmp_path) as rt:
        landlock = next(layer for layer in rt.confinement if layer["name"] == "landlock")
        assert landlock["active"] is False and "not available" in landlock["detail"]


def test_require_confinement_needs_confinement() -> None:
    with pytest.raises(ValueError):
        Runtime(confine=False, require_confinement=True)
