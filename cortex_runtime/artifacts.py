"""The on-disk cache of compiled modules, owned by the supervisor.

Workers can write no file (Landlock), so after compiling a module a worker sends the compiled
artifact back and the supervisor stores it here, keyed by the wasm's SHA-256 and the engine's
fingerprint (wasmtime version, engine settings, CPU). Every file carries an HMAC made with a key
that lives outside the folders workers may read; the supervisor checks it before telling a worker
to deserialise a file (deserialising is loading native code): a file this cache did not write is
never used.
"""

from __future__ import annotations

import contextlib
import hmac
import os
import secrets
from pathlib import Path

_MAGIC = b"CRTXCW02"
_MAC_SIZE = 32


class ArtifactCache:
    """``<root>/compiled/<digest>-<engine>.cwasm`` artifacts, each with a ``.mac`` file made with
    ``<root>/cache.key`` (workers may read ``compiled/`` but never the key)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.compiled = root / "compiled"
        self._key: bytes | None = None
        self._verified: dict[Path, tuple[int, int]] = {}

    def _ensure(self) -> bytes:
        if self._key is None:
            self.compiled.mkdir(parents=True, exist_ok=True, mode=0o700)
            self._key = _load_key(self.root / "cache.key")
        return self._key

    def path_for(self, digest: str, engine: str) -> Path:
        return self.compiled / f"{digest}-{engine}.cwasm"

    def verified(self, digest: str, engine: str) -> Path | bool | None:
        """Without reading the file: its path if this cache verified it and it is unchanged,
        False if that is not known (then ``lookup``, which reads it)."""
        path = self.path_for(digest, engine)
        known = self._verified.get(path)
        if known is None:
            return False
        try:
            stat = path.stat()
        except OSError:
            return None
        return path if known == (stat.st_mtime_ns, stat.st_size) else False

    def lookup(self, digest: str, engine: str) -> Path | None:
        """The artifact's path if it and its MAC file match, else None (a bad pair is removed)."""
        path = self.path_for(digest, engine)
        tag = path.with_suffix(".mac")
        try:
            stat = path.stat()
        except OSError:
            return None
        if self._verified.get(path) == (stat.st_mtime_ns, stat.st_size):
            return path
        try:
            key = self._ensure()
            expected = tag.read_bytes()
            mac = hmac.new(key, _MAGIC + digest.encode() + engine.encode(), "sha256")
            with open(path, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    mac.update(chunk)
        except OSError:
            return None
        if not hmac.compare_digest(expected, _MAGIC + mac.digest()):
            for stale in (path, tag):
                with contextlib.suppress(OSError):
                    stale.unlink()
            return None
        self._verified[path] = (stat.st_mtime_ns, stat.st_size)
        return path

    def store(self, digest: str, engine: str, artifact: bytes) -> Path | None:
        """Write an artifact a worker compiled, and its MAC; None if the disk refused."""
        try:
            key = self._ensure()
            mac = hmac.new(key, _MAGIC + digest.encode() + engine.encode() + artifact, "sha256")
            path = self.path_for(digest, engine)
            for target, data in ((path, artifact), (path.with_suffix(".mac"), _MAGIC + mac.digest())):
                tmp = target.with_suffix(f".{os.getpid()}.tmp")
                tmp.write_bytes(data)
                os.replace(tmp, target)
            return path
        except OSError:
            return None


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

