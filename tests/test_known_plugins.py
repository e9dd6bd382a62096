"""Plugins already in the verified compiled cache are known without a worker round trip: their
facts are kept beside the artifact under a MAC, ``load`` checks the manifest against them and
sends the worker's load without waiting, and the first call runs right behind it."""

from __future__ import annotations

from pathlib import Path

import anyio
import orjson
import pytest
from structlog.testing import capture_logs
from support import POOL_WAT, children, wait_gone, write_plugin

from cortex_runtime import Runtime
from cortex_runtime.artifacts import ArtifactCache
from cortex_runtime.errors import ManifestError, WorkerCrashed
from cortex_runtime.staging import Stager

pytestmark = pytest.mark.anyio


def _runtime(tmp_path: Path) -> Runtime:
    return Runtime(workers=1, spare_workers=0, cache_dir=tmp_path / "cache")


async def _compile_once(tmp_path: Path, folder: Path) -> None:
    async with _runtime(tmp_path) as rt:
        info = await rt.load(folder)
        assert info.facts["cache"] == "miss" and isinstance(info.facts["load_ms"], float)


def _facts_file(tmp_path: Path) -> Path:
    [path] = (tmp_path / "cache" / "compiled").glob("*.facts")
    return path


async def test_a_cached_plugin_is_known_without_asking_a_worker(tmp_path: Path) -> None:
    folder = write_plugin(tmp_path, "pool")
    await _compile_once(tmp_path, folder)
    assert b'"capabilities"' in _facts_file(tmp_path).read_bytes()
    async with _runtime(tmp_path) as rt:
        info = await rt.load(folder)
        # From the cache: no worker described it (load_ms is the worker's figure).
        assert info.facts["cache"] == "hit" and info.facts["load_ms"] is None
        assert info.capabilities == ("echo", "spin", "boom")
        assert await rt.call("pool", "echo", {"first": True}) == {"first": True}
        assert await rt.call("pool", "echo", [2]) == [2]


async def test_facts_that_fail_their_mac_are_not_used(tmp_path: Path) -> None:
    folder = write_plugin(tmp_path, "pool")
    await _compile_once(tmp_path, folder)
    facts = _facts_file(tmp_path)
    forged = facts.read_bytes().replace(b'"boom"', b'"bomb"')
    facts.write_bytes(forged)
    async with _runtime(tmp_path) as rt:
        info = await rt.load(folder)
        # A worker described the module (its facts are the truth), and the file was rewritten.
        assert info.facts["cache"] == "hit" and isinstance(info.facts["load_ms"], float)
        assert info.capabilities == ("echo", "spin", "boom")
        assert await rt.call("pool", "echo", 3) == 3
    assert facts.read_bytes() != forged
    assert ArtifactCache(tmp_path / "cache").facts(info.sha256, rt._pool.engine) is not None


async def test_a_manifest_is_checked_against_the_cached_facts(tmp_path: Path) -> None:
    folder = write_plugin(tmp_path, "pool")
    await _compile_once(tmp_path, folder)
    manifest = orjson.loads((folder / "plugin.json").read_bytes())
    manifest["capabilities"] = {"echo": {}, "missing": {}}
    (folder / "plugin.json").write_bytes(orjson.dumps(manifest))
    async with _runtime(tmp_path) as rt:
        with pytest.raises(ManifestError, match="missing"):
            await rt.load(folder)


async def test_a_known_load_that_fails_in_the_worker_fails_the_first_call_with_the_reason(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = write_plugin(tmp_path, "pool")
    other = write_plugin(tmp_path, "other", POOL_WAT.rstrip()[:-1] + '(data (i32.const 8) "other"))')
    await _compile_once(tmp_path, folder)
    original = Stager._stage_files

    def stage_then_break(self: Stager, manifest, engine):  # type: ignore[no-untyped-def]
        staged = original(self, manifest, engine)
        if manifest.name == "pool":
            # After the supervisor verified them: the artifact goes bad and the wasm vanishes,
            # so the worker can neither deserialise nor compile.
            assert staged.artifact is not None and staged.facts is not None
            staged.artifact.write_bytes(b"not an artifact")
            staged.path.unlink()
        return staged

    monkeypatch.setattr(Stager, "_stage_files", stage_then_break)
    async with _runtime(tmp_path) as rt:
        await rt.load(other)
        info = await rt.load(folder)
        assert info.facts["load_ms"] is None  # known from the cache
        with pytest.raises(WorkerCrashed, match=r"could not load plugin 'pool'.*cannot read the wasm"):
            await rt.call("pool", "echo", 1)
        # Nothing else is lost: the worker still serves other plugins.
        assert await rt.call("other", "echo", "still here") == "still here"
        pids = rt.worker_pids
    assert wait_gone(pids) == []
    assert children() == []


async def test_cached_facts_a_worker_contradicts_are_dropped(tmp_path: Path) -> None:
    folder = write_plugin(tmp_path, "pool")
    await _compile_once(tmp_path, folder)
    cache = ArtifactCache(tmp_path / "cache")
    digest, engine = _facts_file(tmp_path).stem.split("-")
    facts = cache.facts(digest, engine)
    assert facts is not None
    facts["capabilities"] = [*facts["capabilities"], "ghost"]  # validly signed, but wrong
    cache.store_facts(digest, engine, facts)
    async with _runtime(tmp_path) as rt:
        with capture_logs() as events:
            await rt.load(folder)
            assert await rt.call("pool", "echo", 5) == 5
            # The load's reply is handled by a task of its own, concurrently with the call's.
            with anyio.fail_after(10):
                while "plugin.cached_facts_differ" not in [e["event"] for e in events]:  # noqa: ASYNC110
                    await anyio.sleep(0.01)
    assert cache.facts(digest, engine) is None  # the next load asks a worker again
