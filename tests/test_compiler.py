"""Compiled code in the cache comes only from the compiler, a process that runs no guest code
(cortex_runtime/compiler.py, docs/security.md): serving workers never compile for the cache, and
what one sends back anyway is ignored."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import anyio
import pytest
from support import POOL_WAT, children, runtime_pids, wait_gone, write_plugin
from test_residency import library_code_kib

import cortex_runtime.worker as worker_module
from cortex_runtime import Runtime
from cortex_runtime.errors import ManifestError, ProtocolError, WorkerCrashed
from cortex_runtime.worker import Worker

pytestmark = pytest.mark.anyio


def _distinct(tmp_path: Path, name: str) -> Path:
    """A plugin whose module no other test has compiled (a fresh SHA-256)."""
    return write_plugin(tmp_path, name, POOL_WAT.rstrip()[:-1] + f'(data (i32.const 8) "{name}"))')


async def _until(predicate: object, timeout: float = 10.0) -> None:
    with anyio.fail_after(timeout):
        while not predicate():  # type: ignore[operator]  # noqa: ASYNC110 (polling process state)
            await anyio.sleep(0.02)


async def test_a_cache_miss_is_compiled_by_the_compiler_not_by_a_serving_worker(tmp_path: Path) -> None:
    async with Runtime(workers=1, spare_workers=0, cache_dir=tmp_path / "cache") as rt:
        [worker] = rt.worker_pids
        at_start = library_code_kib(worker)
        info = await rt.load(_distinct(tmp_path, "fresh"))
        assert info.facts["cache"] == "miss"
        compiler = rt.compiler_pid
        assert compiler is not None and compiler not in rt.worker_pids
        assert {p.pid for p in children()} == runtime_pids(rt) == {worker, compiler}
        assert await rt.call("fresh", "echo", [1]) == [1]
        # The serving worker deserialised the compiler's artifact: no Cranelift ran in it.
        assert library_code_kib(worker) <= at_start + 3072  # a compile adds ~6.5 MB
        compiled = tmp_path / "cache" / "compiled"
        assert len(list(compiled.glob("*.cwasm"))) == 1 and len(list(compiled.glob("*.facts"))) == 1
        # The compiler gives its compiler code pages back once it waits for work.
        await _until(lambda: library_code_kib(compiler) <= at_start + 2048)
    assert not wait_gone([worker, compiler])
    assert children() == []


async def test_the_compiler_exits_when_idle_and_starts_again_on_the_next_miss(tmp_path: Path) -> None:
    async with Runtime(workers=1, spare_workers=0, cache_dir=tmp_path / "cache",
                       compiler_idle=0.2) as rt:
        await rt.load(_distinct(tmp_path, "first"))
        first = rt.compiler_pid
        assert first is not None
        await _until(lambda: rt.compiler_pid is None)
        assert not wait_gone([first])
        assert {p.pid for p in children()} == set(rt.worker_pids)
        await rt.load(_distinct(tmp_path, "second"))
        assert rt.compiler_pid not in (None, first)
        # A plugin already in the cache needs no compiler at all.
        await _until(lambda: rt.compiler_pid is None)
    async with Runtime(workers=1, spare_workers=0, cache_dir=tmp_path / "cache") as rt:
        assert (await rt.load(tmp_path / "first")).facts["cache"] == "hit"
        assert rt.compiler_pid is None
        assert await rt.call("first", "echo", "cached") == "cached"


async def test_a_module_that_does_not_compile_is_a_manifest_error(tmp_path: Path) -> None:
    folder = write_plugin(tmp_path, "broken")
    (folder / "plugin.wasm").write_bytes(b"\x00asm\x01\x00\x00\x00\x01\x05garbage")
    async with Runtime(workers=1, spare_workers=0, cache_dir=tmp_path / "cache") as rt:
        with pytest.raises(ManifestError, match="does not compile"):
            await rt.load(folder)
        await rt.load(_distinct(tmp_path, "fine"))  # the compiler is still serviceable
        assert await rt.call("fine", "echo", 1) == 1
    assert children() == []


async def test_a_compiler_killed_mid_compile_fails_that_load_only(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with Runtime(workers=1, spare_workers=0, cache_dir=tmp_path / "cache") as rt:
        await rt.load(_distinct(tmp_path, "warm"))  # the compiler is up
        compiler = rt.compiler_pid
        assert compiler is not None
        original = worker_module.Worker.request

        async def kill_first_compile(self: Worker, message: dict[str, object], **kw: object) -> object:
            if message.get("op") == "compile":
                os.kill(self.pid, signal.SIGKILL)
            return await original(self, message, **kw)  # type: ignore[arg-type]

        monkeypatch.setattr(worker_module.Worker, "request", kill_first_compile)
        with pytest.raises(WorkerCrashed):
            await rt.load(_distinct(tmp_path, "victim"))
        monkeypatch.undo()
        assert not wait_gone([compiler])
        await rt.load(tmp_path / "victim")  # a new compiler
        assert rt.compiler_pid not in (None, compiler)
        assert await rt.call("victim", "echo", "ok") == "ok"
        assert await rt.call("warm", "echo", "ok") == "ok"
    assert children() == []


@pytest.mark.parametrize(("role", "op"), [("compiler", "call"), ("compiler", "load"),
                                          ("compiler", "prepare"), ("worker", "compile")])
async def test_each_role_refuses_the_other_roles_requests(
        tmp_path: Path, role: str, op: str) -> None:
    options = {"confine": False, "read_paths": []}
    if role == "compiler":
        options["role"] = "compiler"
    worker = await Worker.spawn(options=options)
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(worker.serve)
            with anyio.fail_after(10), pytest.raises((ProtocolError, WorkerCrashed), match=op):
                await worker.request({"op": op, "digest": "0" * 64, "path": "/nonexistent"})
            tg.cancel_scope.cancel()
    finally:
        await worker.kill()


PLANTING_WORKER = r"""
import base64, os, sys
sys.path.insert(0, sys.argv[1])
from sandbox.framing import read_frame, encode_frame, write_all
inp, out = int(sys.argv[2]), int(sys.argv[3])
write_all(out, encode_frame({"op": "hello", "pid": os.getpid(), "protocol": 1, "wasmtime": "fake",
                             "engine": %r}))
while True:
    req = read_frame(inp)
    # Answers a load as if it compiled the module, with "compiled code" of its own.
    write_all(out, encode_frame({"id": req["id"], "ok": True, "facts": {},
                                 "artifact_b64": base64.b64encode(b"planted").decode()}))
"""


async def test_compiled_code_a_serving_worker_sends_back_is_ignored(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = _distinct(tmp_path, "target")
    async with Runtime(workers=1, spare_workers=0, cache_dir=tmp_path / "cache") as rt:
        await rt.load(folder)
        compiled = tmp_path / "cache" / "compiled"
        for path in compiled.iterdir():  # the cache loses the module: the next worker compiles
            path.unlink()
        monkeypatch.setattr(worker_module, "_BOOT", PLANTING_WORKER % rt._pool.engine)
        [real] = rt.worker_pids
        os.kill(real, signal.SIGKILL)
        await _until(lambda: len(rt.worker_pids) == 1 and real not in rt.worker_pids)
        with pytest.raises((ProtocolError, WorkerCrashed)):
            await rt.call("target", "echo", 1)  # loaded into the planting worker first
        assert list(compiled.glob("*.cwasm")) == []  # nothing it sent was stored
