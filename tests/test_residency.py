"""A worker's resident memory after a compile: the compiler's code pages are given back
(docs/performance.md, "RSS"), and everything still runs after they are."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from support import POOL_WAT, write_plugin

from cortex_runtime import Runtime
from cortex_runtime.artifacts import ArtifactCache
from sandbox.engine import library_path

pytestmark = pytest.mark.skipif(not Path("/proc/self/smaps").exists(), reason="needs /proc smaps")


def library_code_kib(pid: int | str = "self") -> int:
    """Resident KiB of the executable mappings of wasmtime's library in process ``pid``."""
    total, inside = 0, False
    with open(f"/proc/{pid}/smaps", encoding="ascii", errors="replace") as smaps:
        for line in smaps:
            fields = line.split()
            if "-" in fields[0] and len(fields) >= 5 and ":" not in fields[0]:
                inside = fields[1] == "r-xp" and len(fields) == 6 and fields[5] == library_path()
            elif inside and fields[0] == "Rss:":
                total += int(fields[1])
    return total


#: Run in a fresh interpreter: compile, release, then prove the engine still works.
_IN_PROCESS = r"""
import sys, wasmtime
sys.path[:0] = [{root!r}, {tests!r}]
from sandbox.engine import make_engine, library_path
from sandbox.residency import LibraryCode
from test_residency import library_code_kib
engine = make_engine()
code = LibraryCode.of(library_path())
before = library_code_kib()
module = wasmtime.Module(engine, wasmtime.wat2wasm(
    '(module (func (export "add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add))'))
compiled = library_code_kib()
released = code.release()
after = library_code_kib()
store = wasmtime.Store(engine)
store.set_fuel(1000)
store.set_epoch_deadline(1)
result = wasmtime.Instance(store, module, []).exports(store)["add"](store, 2, 3)
print(len(code.ranges), before, compiled, released, after, result)
"""


def test_releasing_the_compilers_code_gives_its_pages_back_and_the_engine_still_runs() -> None:
    root = Path(__file__).resolve().parent.parent
    script = _IN_PROCESS.format(root=str(root), tests=str(root / "tests"))
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    ranges, before, compiled, released, after, result = out.stdout.split()
    assert int(ranges) >= 1 and released == "True" and result == "5"
    # Compiling pages in megabytes of Cranelift; releasing drops them (and more: all of it).
    assert int(compiled) - int(before) > 2048, (before, compiled)
    assert int(after) < int(before), (before, compiled, after)


@pytest.mark.anyio
async def test_a_serving_worker_that_compiled_gives_the_compilers_pages_back(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Serving workers compile only what the compiler could not get into the cache: here the
    # disk refuses the artifact, so the worker compiles the module itself.
    monkeypatch.setattr(ArtifactCache, "store", lambda self, digest, engine, artifact: None)
    folder = write_plugin(tmp_path, "fresh", POOL_WAT.rstrip()[:-1] + '(data (i32.const 8) "residency"))')
    async with Runtime(workers=1, spare_workers=0, cache_dir=tmp_path / "cache") as rt:
        [pid] = rt.worker_pids
        at_start = library_code_kib(pid)
        info = await rt.load(folder)
        assert info.facts["cache"] == "miss" and isinstance(info.facts["load_ms"], float)
        assert await rt.call("fresh", "echo", {"n": 1}) == {"n": 1}
        # The worker releases when it next waits for a request: before it reads this one.
        assert await rt.call("fresh", "echo", [2]) == [2]
        after = library_code_kib(pid)
        assert after <= at_start + 2048, (at_start, after)
        assert rt.worker_pids == [pid]  # the same worker, still serving


def mapped_files(pid: int | str = "self") -> set[str]:
    """The names of the files process ``pid`` maps."""
    with open(f"/proc/{pid}/maps", encoding="ascii", errors="replace") as maps:
        return {Path(fields[5]).name for fields in (line.split() for line in maps) if len(fields) == 6}


@pytest.mark.anyio
async def test_a_worker_leaves_openssl_unloaded_even_when_it_checks_and_compiles_a_wasm_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # hashlib would map OpenSSL's libcrypto (3.4 MB resident) for the SHA-256 of each module the
    # worker reads; with the artifact refused, this worker reads, hashes and compiles the wasm.
    monkeypatch.setattr(ArtifactCache, "store", lambda self, digest, engine, artifact: None)
    folder = write_plugin(tmp_path, "hashed", POOL_WAT)
    async with Runtime(workers=1, spare_workers=0, cache_dir=tmp_path / "cache") as rt:
        [pid] = rt.worker_pids
        info = await rt.load(folder)
        assert info.facts["cache"] == "miss"
        assert await rt.call("hashed", "echo", {"n": 1}) == {"n": 1}
        files = mapped_files(pid)
        assert "_libwasmtime.so" in files  # the maps are this worker's, read while it serves
        assert not [name for name in files if "libcrypto" in name or name.startswith("_hashlib")]


def test_the_worker_code_imports_neither_hashlib_nor_importlib_metadata() -> None:
    # importlib.metadata brings email, zipfile, csv and tempfile: ~4 MB per worker for a version.
    root = Path(__file__).resolve().parent.parent
    script = (f"import sys; sys.path.insert(0, {str(root)!r}); "
              "import sandbox.worker; from sandbox import engine, execute, confine, describe; "
              "print(sorted(m for m in ('hashlib', '_hashlib', 'importlib.metadata', 'email') "
              "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["[]"]


def test_the_worker_hashes_and_versions_as_hashlib_and_importlib_metadata_would() -> None:
    import hashlib
    from importlib.metadata import version

    from sandbox.engine import WASMTIME_VERSION, sha256_hex

    for data in (b"", b"abc", bytes(range(256)) * 4099):
        assert sha256_hex(data) == hashlib.sha256(data).hexdigest()
    assert version("wasmtime") == WASMTIME_VERSION


def test_a_version_with_no_single_dist_info_folder_comes_from_importlib_metadata(tmp_path: Path) -> None:
    from importlib.metadata import version

    from sandbox.engine import installed_version

    assert installed_version("wasmtime", str(tmp_path / "missing")) == version("wasmtime")
    (tmp_path / "wasmtime-0.0.1.dist-info").mkdir()
    assert installed_version("wasmtime", str(tmp_path)) == "0.0.1"
    (tmp_path / "wasmtime-0.0.2.dist-info").mkdir()
    assert installed_version("wasmtime", str(tmp_path)) == version("wasmtime")
