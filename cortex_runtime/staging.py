"""Staging: from a plugin path to files a worker may load.

Read the manifest, hash the wasm, check the manifest's sha256, copy the wasm into the cache folder
workers can read (Landlock) and look up its verified compiled artifact. A small plugin is staged on
the event loop: its ~0.3 ms of work costs less than a trip to a thread and back (~0.3 ms on a
2-core virtual machine, half the cold start); a larger one in a thread, so the loop never stalls
for long.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio

from .artifacts import ArtifactCache
from .errors import ManifestError
from .manifest import Manifest, load_manifest, manifest_for_wasm

#: Plugins whose wasm is at most this big are staged without leaving the event loop (hashing it
#: and MAC-checking its compiled artifact, ~4x its size, take well under a millisecond).
INLINE_STAGE_BYTES = 128 * 1024


@dataclass(frozen=True)
class Staged:
    """A plugin's files, checked and staged for workers."""

    manifest: Manifest
    digest: str
    path: Path
    #: Its verified compiled artifact for ``engine`` (None: compile).
    artifact: Path | None
    engine: str
    #: The module's facts kept with that artifact (None: a worker must describe the module).
    facts: dict[str, Any] | None = None

    @property
    def uncompiled(self) -> bool:
        """Neither in the compiled cache nor described there yet: the compiler's work."""
        return self.artifact is None and self.facts is None and bool(self.engine)


class Stager:
    """Stages plugins into ``<cache_dir>/wasm/<sha256>.wasm``."""

    def __init__(self, cache_dir: Path, artifacts: ArtifactCache) -> None:
        self.folder = cache_dir / "wasm"
        self.artifacts = artifacts
        self._paths: dict[str, Path] = {}

    def path_for(self, digest: str) -> Path:
        path = self._paths.get(digest)  # kept: every reload names it
        if path is None:
            path = self._paths[digest] = self.folder / f"{digest}.wasm"
        return path

    async def stage(self, target: Path, engine: str) -> Staged:
        """Stage the plugin at ``target`` (a folder, a ``plugin.json`` or a bare ``.wasm``)."""
        manifest = read_manifest(target)  # at most 256 KiB, read once
        try:
            small = manifest.wasm_path.stat().st_size <= INLINE_STAGE_BYTES
        except OSError:
            small = True  # the read below reports the problem
        if small:
            return self._stage_files(manifest, engine)
        return await anyio.to_thread.run_sync(self._stage_files, manifest, engine)

    def _stage_files(self, manifest: Manifest, engine: str) -> Staged:
        try:
            wasm = manifest.wasm_path.read_bytes()
            digest = hashlib.sha256(wasm).hexdigest()
            if manifest.sha256 is not None and manifest.sha256 != digest:
                raise ManifestError(
                    f"does not match the wasm file (file is {digest}); refusing to load",
                    path=manifest.source, field="sha256",
                )
            staged = self._copy(wasm, digest, manifest)
        except OSError as exc:
            raise ManifestError(f"cannot read the wasm file: {exc}", path=manifest.source,
                                field="entryPoint") from None
        artifact = self.artifacts.lookup(digest, engine) if engine else None
        facts = self.artifacts.facts(digest, engine) if artifact is not None else None
        return Staged(manifest, digest, staged, artifact, engine, facts)

    def _copy(self, wasm: bytes, digest: str, manifest: Manifest) -> Path:
        """The staged copy of ``wasm``: kept if it already holds these bytes, else (re)written."""
        staged = self.path_for(digest)
        if _holds(staged, wasm):
            return staged
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = staged.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(wasm)
        os.replace(tmp, staged)
        if not _holds(staged, wasm):
            raise ManifestError("the wasm file changed while it was being loaded",
                                path=manifest.source, field="entryPoint")
        return staged


def _holds(path: Path, data: bytes) -> bool:
    """Whether the regular file at ``path`` holds exactly ``data``."""
    try:
        with open(path, "rb") as f:
            if os.fstat(f.fileno()).st_size != len(data):
                return False
            return f.read(len(data) + 1) == data
    except OSError:
        return False


def read_manifest(target: Path) -> Manifest:
    """The manifest of a plugin folder or ``plugin.json``, or a default one for a bare ``.wasm``."""
    if target.suffix == ".wasm" and target.is_file():
        return manifest_for_wasm(target)
    return load_manifest(target)
