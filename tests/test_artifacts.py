"""The supervisor's compiled-module cache: nothing is used that this cache did not write, and a
file verified once is not read again until it changes."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from cortex_runtime.artifacts import ArtifactCache

DIGEST, ENGINE = "ab" * 32, "engine1"


def test_a_verified_artifact_is_known_without_reading_until_it_changes(tmp_path: Path) -> None:
    cache = ArtifactCache(tmp_path)
    assert cache.verified(DIGEST, ENGINE) is False  # never seen: ask lookup()
    assert cache.lookup(DIGEST, ENGINE) is None  # nothing stored
    path = cache.store(DIGEST, ENGINE, b"compiled code")
    assert path is not None
    assert cache.verified(DIGEST, ENGINE) == path  # written by this cache: known
    assert cache.lookup(DIGEST, ENGINE) == path
    assert cache.verified(DIGEST, ENGINE) == path
    # rewritten behind the cache's back: no longer known, and lookup() refuses it (bad MAC)
    path.write_bytes(b"native code of somebody else's")
    os.utime(path, ns=(1, 1))
    assert cache.verified(DIGEST, ENGINE) is False
    assert cache.lookup(DIGEST, ENGINE) is None
    assert not path.exists()
    assert cache.verified(DIGEST, ENGINE) is None  # gone: compile again


def test_a_same_size_rewrite_with_its_mtime_set_back_is_noticed(tmp_path: Path) -> None:
    cache = ArtifactCache(tmp_path)
    path = cache.store(DIGEST, ENGINE, b"compiled code")
    assert path is not None and cache.lookup(DIGEST, ENGINE) == path
    before = path.stat()
    time.sleep(0.02)  # past the file system's timestamp granularity
    with open(path, "r+b") as f:  # same inode, same size
        f.write(b"COMPILED")
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert path.stat().st_mtime_ns == before.st_mtime_ns and path.stat().st_size == before.st_size
    assert cache.verified(DIGEST, ENGINE) is False  # the change time moved on
    assert cache.lookup(DIGEST, ENGINE) is None  # and the MAC check refuses it


def test_an_artifact_under_another_engine_is_another_entry(tmp_path: Path) -> None:
    cache = ArtifactCache(tmp_path)
    stored = cache.store(DIGEST, ENGINE, b"x")
    assert stored is not None and cache.lookup(DIGEST, ENGINE) == stored
    assert cache.lookup(DIGEST, "engine2") is None
    assert cache.verified(DIGEST, "engine2") is False


def _reads_of(monkeypatch: pytest.MonkeyPatch, path: Path) -> list[str]:
    """Record every open() of ``path`` by the artifact cache."""
    from cortex_runtime import artifacts

    reads: list[str] = []

    def spy(file: Any, *args: Any, **kwargs: Any) -> Any:
        if Path(file) == path:
            reads.append(str(file))
        return open(file, *args, **kwargs)

    monkeypatch.setattr(artifacts, "open", spy, raising=False)
    return reads


def test_a_stamp_lets_a_later_process_skip_reading_an_unchanged_artifact(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = ArtifactCache(tmp_path).store(DIGEST, ENGINE, b"compiled code" * 1000)
    assert path is not None and path.with_suffix(".ok").exists()  # stamped when written
    reads = _reads_of(monkeypatch, path)
    assert ArtifactCache(tmp_path).lookup(DIGEST, ENGINE) == path  # "another process": stamp only
    assert ArtifactCache(tmp_path).lookup(DIGEST, ENGINE) == path
    assert reads == []
    path.with_suffix(".ok").unlink()  # no stamp: read and verified once, then stamped again
    assert ArtifactCache(tmp_path).lookup(DIGEST, ENGINE) == path
    assert ArtifactCache(tmp_path).lookup(DIGEST, ENGINE) == path
    assert len(reads) == 1 and path.with_suffix(".ok").exists()


def test_a_changed_or_forged_stamp_means_reading_the_artifact_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = ArtifactCache(tmp_path).store(DIGEST, ENGINE, b"compiled code")
    assert path is not None and ArtifactCache(tmp_path).lookup(DIGEST, ENGINE) == path
    stamp = path.with_suffix(".ok")
    stamp.write_bytes(b"CRTXOK01" + bytes(32))  # forged
    reads = _reads_of(monkeypatch, path)
    assert ArtifactCache(tmp_path).lookup(DIGEST, ENGINE) == path
    assert len(reads) == 1  # read and verified again, and the stamp rewritten
    # Rewritten in place, same size, mtime set back: the identity moved on, the MAC refuses it.
    before = path.stat()
    time.sleep(0.02)
    with open(path, "r+b") as f:
        f.write(b"COMPILED")
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert ArtifactCache(tmp_path).lookup(DIGEST, ENGINE) is None
    assert len(reads) == 2
    assert not path.exists() and not stamp.exists()
