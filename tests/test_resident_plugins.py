"""A worker keeps at most ``max_resident_plugins`` plugins loaded: past that it unloads the least
recently called ones, and a later call of one loads it again. Nothing is lost on the way, even
with calls of many plugins in flight on one worker."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import anyio
import orjson
import psutil
import pytest
from support import POOL_WAT, cancel_after_checkpoints, children, runtime_pids, write_plugin

from cortex_runtime import Runtime, WorkerCrashed
from cortex_runtime.artifacts import ArtifactCache
from cortex_runtime.worker import Worker

pytestmark = pytest.mark.anyio


def distinct_plugins(root: Path, count: int) -> list[Path]:
    """``count`` echo plugins whose modules differ (each its own digest, so its own load)."""
    marker = '(memory (export "memory") 1 64)'
    return [write_plugin(root, f"p{i}", POOL_WAT.replace(
        marker, f'{marker}\n  (data (i32.const 512) "plugin {i}")')) for i in range(count)]


def runtime(tmp_path: Path, **options: Any) -> Runtime:
    options.setdefault("workers", 1)
    options.setdefault("spare_workers", 0)
    return Runtime(cache_dir=tmp_path / "cache", quarantine_after=0, **options)


async def worker_plugin_count(worker: Worker) -> int:
    """How many plugins the worker process itself holds (its answer to a ping)."""
    reply = await worker.request({"op": "ping"})
    return int(reply["plugins"])


def only_worker(rt: Runtime) -> Worker:
    [worker] = rt._pool._ready
    return worker


async def test_a_worker_unloads_its_least_recently_called_plugins_past_the_bound(
        tmp_path: Path) -> None:
    folders = distinct_plugins(tmp_path / "plugins", 5)
    async with runtime(tmp_path, max_resident_plugins=2) as rt:
        for folder in folders:
            await rt.load(folder)
        worker = only_worker(rt)
        for round_ in range(2):
            for i in range(5):
                assert await rt.call(f"p{i}", "echo", [round_, i]) == [round_, i]
                assert len(worker.loaded) <= 2
                assert await worker_plugin_count(worker) <= 2
        # The two called last are the two kept.
        digests = {name: info.sha256 for name, info in rt.plugins.items()}
        assert list(worker.loaded) == [digests["p3"], digests["p4"]]
        assert rt.stats.get("unloaded", 0) >= 8
        assert rt.stats["started"] == 1  # unloading never cost a worker


async def test_a_plugin_called_often_stays_loaded(tmp_path: Path) -> None:
    folders = distinct_plugins(tmp_path / "plugins", 6)
    async with runtime(tmp_path, max_resident_plugins=2) as rt:
        for folder in folders:
            await rt.load(folder)
        worker = only_worker(rt)
        hot = rt.plugins["p0"].sha256
        for i in range(1, 6):
            assert await rt.call("p0", "echo", i) == i
            assert await rt.call(f"p{i}", "echo", i) == i
            assert hot in worker.loaded
        unloaded = rt.stats.get("unloaded", 0)
        assert await rt.call("p0", "echo", "again") == "again"
        assert rt.stats.get("unloaded", 0) == unloaded  # it was still there: no load, no unload


async def test_a_plugin_is_not_unloaded_while_a_caller_holds_the_worker_for_it(
        tmp_path: Path) -> None:
    """A caller that took the worker for a plugin may not have written its call yet: that plugin
    stays, even past the bound, and goes at the first load after the caller let go."""
    folders = distinct_plugins(tmp_path / "plugins", 4)
    async with runtime(tmp_path, max_resident_plugins=1) as rt:
        for folder in folders:
            await rt.load(folder)
        worker = only_worker(rt)
        assert await rt.call("p0", "echo", 0) == 0
        held = rt.plugins["p0"].sha256
        worker.holding[held] = 1  # as a caller between taking the worker and writing its call
        for i in (1, 2):
            assert await rt.call(f"p{i}", "echo", i) == i
            assert held in worker.loaded
            assert await worker_plugin_count(worker) == 2
        del worker.holding[held]
        assert await rt.call("p3", "echo", 3) == 3
        assert list(worker.loaded) == [rt.plugins["p3"].sha256]
        assert await worker_plugin_count(worker) == 1


async def test_an_unloaded_plugin_is_loaded_again_with_its_call_right_behind(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Its compiled artifact is verified, so the call does not wait a round trip for the load's
    reply: both are in the pipe before that reply comes back."""
    folders = distinct_plugins(tmp_path / "plugins", 2)
    async with runtime(tmp_path, max_resident_plugins=1) as rt:
        for folder in folders:
            await rt.load(folder)
        assert await rt.call("p0", "echo", 0) == 0
        assert await rt.call("p1", "echo", 1) == 1  # p0 is unloaded
        events: list[str] = []
        ops: dict[int, str] = {}
        load_replies: list[dict[str, Any]] = []
        submit, serve_reply = Worker.submit, Worker.reply_to

        async def note_submit(self: Worker, message: Any, **kwargs: Any) -> Any:
            op = message.op if hasattr(message, "op") else message.get("op")
            events.append(f"send {op}")
            sent = await submit(self, message, **kwargs)
            ops[id(sent)] = op
            return sent

        async def note_reply(self: Worker, pending: Any) -> Any:
            reply = await serve_reply(self, pending)
            op = ops.get(id(pending), "?")
            events.append(f"reply {op}")
            if op == "load":
                load_replies.append(reply)
            return reply

        monkeypatch.setattr(Worker, "submit", note_submit)
        monkeypatch.setattr(Worker, "reply_to", note_reply)
        assert await rt.call("p0", "echo", "back") == "back"
        with anyio.fail_after(5):
            while "reply load" not in events:  # noqa: ASYNC110
                await anyio.sleep(0.01)
        load, call = events.index("send load"), events.index("send call")
        assert load < call < events.index("reply load")
        # The supervisor knows the plugin: the reload's reply leaves its facts out.
        assert load_replies[0]["ok"] is True and "facts" not in load_replies[0]


async def test_an_unloaded_plugin_whose_artifact_went_bad_is_compiled_again(
        tmp_path: Path) -> None:
    folders = distinct_plugins(tmp_path / "plugins", 2)
    async with runtime(tmp_path, max_resident_plugins=1) as rt:
        for folder in folders:
            await rt.load(folder)
        assert await rt.call("p0", "echo", 0) == 0
        assert await rt.call("p1", "echo", 1) == 1  # p0 is unloaded
        info = rt.plugins["p0"]
        worker = only_worker(rt)
        assert info.sha256 not in worker.loaded
        artifact = rt._artifacts.path_for(info.sha256, worker.engine)
        # Replaced, not rewritten in place: a worker may still map the old file until it has
        # read the unload (truncating a mapped file would SIGBUS it).
        bad = artifact.with_suffix(".bad")
        bad.write_bytes(b"not an artifact")
        bad.replace(artifact)
        assert await rt.call("p0", "echo", "again") == "again"
        assert rt.stats["started"] == 1


async def test_a_reload_sent_ahead_of_its_call_that_fails_fails_that_call_with_the_reason(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The load of an unloaded plugin whose artifact is verified goes into the pipe with the call
    right behind it. If the worker cannot load it after all (here: the artifact went bad in a
    way its file's identity does not show, and the wasm is gone), that call fails with the
    reason; the worker is kept and serves the other plugins."""
    folders = distinct_plugins(tmp_path / "plugins", 2)
    async with runtime(tmp_path, max_resident_plugins=1) as rt:
        for folder in folders:
            await rt.load(folder)
        assert await rt.call("p0", "echo", 0) == 0
        assert await rt.call("p1", "echo", 1) == 1  # p0 is unloaded
        info = rt.plugins["p0"]
        bogus = tmp_path / "bogus.cwasm"
        bogus.write_bytes(b"not an artifact")
        original = ArtifactCache.verified

        def vouch_for_bogus(self: ArtifactCache, digest: str, engine: str) -> Path | bool | None:
            return bogus if digest == info.sha256 else original(self, digest, engine)

        monkeypatch.setattr(ArtifactCache, "verified", vouch_for_bogus)
        rt._staged_path(info).unlink()
        with pytest.raises(WorkerCrashed, match=r"could not load plugin 'p0'.*cannot read the wasm"):
            await rt.call("p0", "echo", "lost?")
        assert await rt.call("p1", "echo", "still here") == "still here"
        assert rt.stats["started"] == 1


async def test_without_a_bound_a_worker_keeps_every_plugin(tmp_path: Path) -> None:
    folders = distinct_plugins(tmp_path / "plugins", 4)
    async with runtime(tmp_path, max_resident_plugins=None) as rt:
        for folder in folders:
            await rt.load(folder)
        for i in range(4):
            assert await rt.call(f"p{i}", "echo", i) == i
        assert await worker_plugin_count(only_worker(rt)) == 4
        assert rt.stats.get("unloaded", 0) == 0


async def test_a_flood_of_calls_over_more_plugins_than_the_bound_loses_nothing(
        tmp_path: Path) -> None:
    """Many callers at once, over 6 plugins on one worker that keeps 2: loads, unloads and calls
    interleave in its pipe, and every call still runs once with its own plugin."""
    folders = distinct_plugins(tmp_path / "plugins", 6)
    async with runtime(tmp_path, max_resident_plugins=2) as rt:
        for folder in folders:
            await rt.load(folder)
        worker = only_worker(rt)
        rng = random.Random(5)
        picks = [rng.randrange(6) for _ in range(300)]
        results: dict[int, object] = {}

        async def one(n: int) -> None:
            results[n] = await rt.call(f"p{picks[n]}", "echo", {"n": n, "p": picks[n]})

        async with anyio.create_task_group() as tg:
            for n in range(len(picks)):
                tg.start_soon(one, n)
        assert results == {n: {"n": n, "p": picks[n]} for n in range(len(picks))}
        assert rt.stats["started"] == 1 and rt.stats.get("unloaded", 0) > 0
        assert not worker.holding
        # Callers held some plugins past the bound for a moment; the next load trims it again.
        assert await rt.call("p0", "echo", 0) == 0
        assert await rt.call("p1", "echo", 1) == 1
        assert len(worker.loaded) <= 2
        assert await worker_plugin_count(worker) <= 2


async def test_cancellation_at_every_point_of_a_call_that_reloads_its_plugin(
        tmp_path: Path) -> None:
    """Cancel a call whose plugin was unloaded after k checkpoints, k = 0, 1, 2, ... until it
    completes: its load sent ahead, the call behind it, the wait for the load's reply are each
    cancelled once. After each the worker (or its replacement) serves both plugins, keeps within
    the bound, and no caller's hold or load is left behind; no process or descriptor leaks."""
    fds_before = psutil.Process().num_fds()
    folders = distinct_plugins(tmp_path / "plugins", 2)
    async with runtime(tmp_path, max_resident_plugins=1, max_restarts=100_000) as rt:
        for folder in folders:
            await rt.load(folder)
        completed = cancelled = checkpoints = 0
        while completed < 3 and checkpoints < 2000:
            assert await rt.call("p0", "echo", "evict p1") == "evict p1"
            async def reloading_call(k: int = checkpoints) -> None:
                assert await rt.call("p1", "echo", k) == k

            done, caught = await cancel_after_checkpoints(checkpoints, reloading_call)
            completed += done
            cancelled += caught
            checkpoints += 1
            with anyio.fail_after(10):
                while rt.busy_worker_pids or len(rt.worker_pids) != 1:  # noqa: ASYNC110
                    await anyio.sleep(0.01)
            assert await rt.call("p1", "echo", "after") == "after"
            assert await rt.call("p0", "echo", "after") == "after"
            worker = only_worker(rt)
            assert not worker.holding and not worker.loading and not worker.load_sent
            assert len(worker.loaded) <= 1
            assert await worker_plugin_count(worker) <= 1
        assert completed == 3 and cancelled >= 1
        assert {p.pid for p in children()} == runtime_pids(rt)
    assert children() == []
    assert psutil.Process().num_fds() <= fds_before


@pytest.mark.parametrize("bad", [0, -1, True, 1.5, "3"])
def test_the_bound_must_be_a_positive_integer_or_none(tmp_path: Path, bad: object) -> None:
    with pytest.raises(ValueError, match="max_resident_plugins"):
        runtime(tmp_path, max_resident_plugins=bad)


def test_a_worker_loads_a_plugin_it_unloaded_without_describing_it_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Describing a module costs more than deserialising it: a worker keeps the facts of the
    plugins it unloads, and a reload of one of those reuses them (new per-load facts aside),
    while any other module is still described and checked."""
    import hashlib

    import wasmtime

    from sandbox import engine
    from sandbox.execute import DESCRIBED_UNLOADED, Executor

    def wasm_file(index: int) -> tuple[str, str]:
        folder = distinct_plugins(tmp_path / "plugins", index + 1)[index]
        path = next(folder.glob("*.wasm"))
        return str(path), hashlib.sha256(path.read_bytes()).hexdigest()

    executor = Executor()
    (path0, digest0), (path1, digest1) = wasm_file(0), wasm_file(1)
    first = executor.load(path0, digest0)
    executor.forget(digest0, first)
    described: list[wasmtime.Module] = []
    describe = engine.describe_module
    monkeypatch.setattr(engine, "describe_module",
                        lambda module: described.append(module) or describe(module))
    again = executor.load(path0, digest0)
    assert described == []
    per_load = {"cache", "load_ms", "memory_init"}
    assert {k: v for k, v in again.facts.items() if k not in per_load} == {
        k: v for k, v in first.facts.items() if k not in per_load}
    assert again.capabilities == first.capabilities and again.export_index == first.export_index
    fields, _ = executor.call(again, "echo", b'"back"', fuel=10_000_000, timeout_ms=1000.0,
                              min_pages=1, max_pages=64, allocator="cortex_alloc",
                              max_output=1024, max_log=4096)
    executor.release()
    assert orjson.loads(orjson.dumps(fields["result"])) == "back"
    # Used once: the facts go with the reload (the loaded plugin holds them again).
    executor.load(path0, digest0)
    assert len(described) == 1
    # Another module is described, and the facts kept are bounded.
    executor.load(path1, digest1)
    assert len(described) == 2
    for n in range(DESCRIBED_UNLOADED + 5):
        executor.forget(f"{n:064x}", first)
    assert len(executor._described) == DESCRIBED_UNLOADED
    assert f"{0:064x}" not in executor._described


async def test_calls_that_reload_their_plugins_one_after_another_stay_on_one_worker(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The unload a reload sends is a chore no caller waits on: the worker it went to still
    counts as idle, so the next call goes there (warm, polling) instead of to another worker
    (sequential reloads alternating between two workers measured ~25% slower)."""
    folders = distinct_plugins(tmp_path / "plugins", 4)
    async with runtime(tmp_path, workers=2, max_resident_plugins=1) as rt:
        for folder in folders:
            await rt.load(folder)
        for i in range(4):
            assert await rt.call(f"p{i}", "echo", i) == i
        served: list[int] = []
        unloads: list[int] = []
        submit = Worker.submit

        async def note_submit(self: Worker, message: Any, **kwargs: Any) -> Any:
            op = message.op if hasattr(message, "op") else message.get("op")
            (served if op == "call" else unloads if op == "unload" else []).append(self.pid)
            return await submit(self, message, **kwargs)

        monkeypatch.setattr(Worker, "submit", note_submit)
        for i in range(12):
            assert await rt.call(f"p{i % 4}", "echo", i) == i
        assert len(set(served)) == 1, served
        assert len(unloads) >= 11  # every call reloaded its plugin
