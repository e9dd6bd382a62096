"""The on-disk cache of compiled modules, owned by the supervisor.

Workers can write no file (Landlock), so after compiling a module a worker sends the compiled
artifact back and the supervisor stores it here, keyed by the wasm's SHA-256 and the engine's
fingerprint (wasmtime version, engine settings, CPU). Every file carries an HMAC made with a key
that lives outside the folders workers may read; the supervisor checks it before telling a worker
to deserialise a file (deserialising is loading native code): a file this cache did not write is
never used.

A verified artifact also gets a *stamp*: its file identity under a MAC, so that a later process
need not read it again while it is unchanged (see ``ArtifactCache._stamp``).

Beside each artifact, the module's *facts* (exports, imports, memory, capabilities: what a worker
reports when it loads the module) are kept under a MAC of their own, so that loading a plugin
already in the cache needs no worker round trip before ``Runtime.load`` returns.
"""

from __future__ import annotations

import contextlib
import hmac
import os
import secrets
import threading
from pathlib import Path
from typing import Any, Literal

import orjson

_MAGIC = b"CRTXCW02"
_FACTS_MAGIC = b"CRTXCF01"
_STAMP_MAGIC = b"CRTXOK01"
_MAC_SIZE = 32
#: Facts of a real module are a few KiB; a larger file is not read.
MAX_FACTS_BYTES = 1024 * 1024


class ArtifactCache:
    """``<root>/compiled/<digest>-<engine>.cwasm`` artifacts, each with a ``.mac`` file made with
    ``<root>/cache.key`` (workers may read ``compiled/`` but never the key)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.compiled = root / "compiled"
        self._key: bytes | None = None
        self._verified: dict[Path, tuple[int, ...]] = {}
        self._paths: dict[tuple[str, str], Path] = {}

    def _ensure(self) -> bytes:
        if self._key is None:
            self.compiled.mkdir(parents=True, exist_ok=True, mode=0o700)
            self._key = _load_key(self.root / "cache.key")
        return self._key

    def path_for(self, digest: str, engine: str) -> Path:
        # Kept: a reloading call asks for it (``verified``), and joining costs more than the stat.
        path = self._paths.get((digest, engine))
        if path is None:
            path = self._paths[(digest, engine)] = self.compiled / f"{digest}-{engine}.cwasm"
        return path

    def verified(self, digest: str, engine: str) -> Path | Literal[False] | None:
        """Without reading the file: its path if this cache verified it and it is unchanged,
        None if it is gone, False if that is not known (then ``lookup``, which reads it)."""
        path = self.path_for(digest, engine)
        known = self._verified.get(path)
        if known is None:
            return False
        try:
            stat = os.stat(path)
        except OSError:
            return None
        return path if known == _identity(stat) else False

    def lookup(self, digest: str, engine: str) -> Path | None:
        """The artifact's path if it and its MAC file match, else None (a bad pair is removed)."""
        path = self.path_for(digest, engine)
        tag = path.with_suffix(".mac")
        try:
            stat = path.stat()
        except OSError:
            return None
        identity = _identity(stat)
        if self._verified.get(path) == identity:
            return path
        try:
            key = self._ensure()
            if self._stamped(path, digest, engine, identity):
                self._verified[path] = identity
                return path
            expected = tag.read_bytes()
            mac = hmac.new(key, _MAGIC + digest.encode() + engine.encode(), "sha256")
            with open(path, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    mac.update(chunk)
        except OSError:
            return None
        if not hmac.compare_digest(expected, _MAGIC + mac.digest()):
            for stale in (path, tag, self._facts_path(path), self._stamp_path(path)):
                with contextlib.suppress(OSError):
                    stale.unlink()
            return None
        self._verified[path] = identity
        with contextlib.suppress(OSError):
            _write_atomically(self._stamp_path(path), self._stamp(digest, engine, identity))
        return path

    # A *stamp* records, under a MAC, the identity (device, inode, size, mtime, change time) of an
    # artifact file this cache verified. A later process that finds the file with the same
    # identity knows it unchanged without reading it: what ``verified`` does in memory, kept
    # across restarts (hashing a large artifact costs ~0.5 ms per MB on every load otherwise).
    # Any write to the file, or a replacement, changes its identity (the change time cannot be
    # set back), and the MAC over the content is checked again.

    @staticmethod
    def _stamp_path(artifact: Path) -> Path:
        return artifact.with_suffix(".ok")

    def _tag(self, magic: bytes, digest: str, engine: str, body: bytes) -> bytes:
        """``magic`` + the HMAC of what a stamp or facts file vouches for, about one artifact."""
        message = b"/".join([magic, digest.encode(), engine.encode(), body])
        return magic + hmac.new(self._ensure(), message, "sha256").digest()

    def _stamp(self, digest: str, engine: str, identity: tuple[int, ...]) -> bytes:
        return self._tag(_STAMP_MAGIC, digest, engine, b",".join(str(n).encode() for n in identity))

    def _stamped(self, path: Path, digest: str, engine: str, identity: tuple[int, ...]) -> bool:
        try:
            with open(self._stamp_path(path), "rb") as f:
                stamp = f.read(len(_STAMP_MAGIC) + _MAC_SIZE + 1)
        except OSError:
            return False
        return hmac.compare_digest(stamp, self._stamp(digest, engine, identity))

    @staticmethod
    def _facts_path(artifact: Path) -> Path:
        return artifact.with_suffix(".facts")

    def facts(self, digest: str, engine: str) -> dict[str, Any] | None:
        """The module facts stored with the artifact, if present and their MAC matches."""
        path = self._facts_path(self.path_for(digest, engine))
        try:
            with open(path, "rb") as f:
                data = f.read(MAX_FACTS_BYTES + 1)
            tag, body = data[:len(_FACTS_MAGIC) + _MAC_SIZE], data[len(_FACTS_MAGIC) + _MAC_SIZE:]
            if len(data) > MAX_FACTS_BYTES or not hmac.compare_digest(
                    tag, self._tag(_FACTS_MAGIC, digest, engine, body)):
                return None
            facts = orjson.loads(body)
        except (OSError, orjson.JSONDecodeError):
            return None
        return facts if isinstance(facts, dict) else None

    def store_facts(self, digest: str, engine: str, facts: dict[str, Any]) -> None:
        """Keep a module's facts (as a worker reported them) beside its artifact."""
        body = orjson.dumps({k: v for k, v in facts.items() if k not in _PER_LOAD_FACTS})
        with contextlib.suppress(OSError):
            _write_atomically(self._facts_path(self.path_for(digest, engine)),
                              self._tag(_FACTS_MAGIC, digest, engine, body) + body)

    def forget_facts(self, digest: str, engine: str) -> None:
        with contextlib.suppress(OSError):
            self._facts_path(self.path_for(digest, engine)).unlink()

    def store(self, digest: str, engine: str, artifact: bytes) -> Path | None:
        """Write an artifact a worker compiled, and its MAC; None if the disk refused."""
        try:
            key = self._ensure()
            mac = hmac.new(key, _MAGIC + digest.encode() + engine.encode() + artifact, "sha256")
            path = self.path_for(digest, engine)
            for target, data in ((path, artifact), (path.with_suffix(".mac"), _MAGIC + mac.digest())):
                _write_atomically(target, data)
            # Written by this cache just now: known without reading it back, here and (stamp)
            # in later processes.
            identity = _identity(path.stat())
            self._verified[path] = identity
            _write_atomically(self._stamp_path(path), self._stamp(digest, engine, identity))
            return path
        except OSError:
            return None


def _identity(stat: os.stat_result) -> tuple[int, ...]:
    """What changes whenever a file's content may have: a rewrite in place, a replacement, or a
    rewrite of the same size with its mtime set back (the change time cannot be set back)."""
    return (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)


#: Facts about one load, not about the module.
_PER_LOAD_FACTS = frozenset({"cache", "load_ms"})


def _write_atomically(target: Path, data: bytes) -> None:
    tmp = target.with_name(f"{target.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, target)


def _load_key(path: Path) -> bytes:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        key = path.read_bytes()
        if len(key) != 32:
            raise OSError(f"{path} is corrupt") from None
        return key
    key = secrets.token_bytes(32)
    with os.fdopen(fd, "wb") as f:
        f.write(key)
    return key

