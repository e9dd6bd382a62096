"""``plugin.json``: parse it strictly, fill in safe defaults, and say exactly what is wrong.

Every field is documented in ``docs/manifest.md``. Unknown fields are errors (a typo such as
``maxMemoryPage`` must not silently fall back to a default), and each error names its field.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from .errors import ManifestError

MANIFEST_NAME = "plugin.json"
MAX_MANIFEST_BYTES = 256 * 1024
WASM_PAGE_LIMIT = 65536
HARD_IO_CAP = 16 * 1024 * 1024

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}\Z")
VERSION_RE = re.compile(r"^\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.+-]+)?\Z")
CAPABILITY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,127}\Z")
SHA256_RE = re.compile(r"^[0-9a-f]{64}\Z")
ALLOCATORS = {"wasi": "malloc", "custom": "cortex_alloc"}

DEFAULT_TIMEOUT_MS = 1000
DEFAULT_FUEL = 1_000_000_000
DEFAULT_MEMORY_PAGES = 1
DEFAULT_MAX_MEMORY_PAGES = 256
DEFAULT_MAX_INPUT_BYTES = 4 * 1024 * 1024
DEFAULT_MAX_OUTPUT_BYTES = 4 * 1024 * 1024
DEFAULT_MAX_LOG_BYTES = 64 * 1024
MAX_TIMEOUT_MS = 10 * 60 * 1000
MAX_FUEL = 2**63 - 1


@dataclass(frozen=True)
class CallLimits:
    """Budget for one call: wall clock and fuel."""

    timeout_ms: int = DEFAULT_TIMEOUT_MS
    fuel: int = DEFAULT_FUEL


@dataclass(frozen=True)
class Capability:
    """A capability the manifest declares, with optional per-capability limits."""

    name: str
    description: str = ""
    timeout_ms: int | None = None
    fuel: int | None = None


@dataclass(frozen=True)
class Manifest:
    """A validated plugin manifest. ``root`` is the plugin folder, ``wasm_path`` the module."""

    name: str
    version: str
    entry_point: str
    root: Path
    description: str = ""
    memory_pages: int = DEFAULT_MEMORY_PAGES
    max_memory_pages: int = DEFAULT_MAX_MEMORY_PAGES
    allocator: str = "auto"
    limits: CallLimits = field(default_factory=CallLimits)
    max_input_bytes: int = DEFAULT_MAX_INPUT_BYTES
    max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES
    max_log_bytes: int = DEFAULT_MAX_LOG_BYTES
    sha256: str | None = None
    capabilities: Mapping[str, Capability] | None = None
    source: str = MANIFEST_NAME

    @property
    def wasm_path(self) -> Path:
        return self.root / self.entry_point

    def limits_for(self, capability: str) -> CallLimits:
        """The manifest's limits for ``capability``: its own if declared, else the plugin's."""
        declared = (self.capabilities or {}).get(capability)
        return CallLimits(
            timeout_ms=(declared.timeout_ms if declared and declared.timeout_ms is not None
                        else self.limits.timeout_ms),
            fuel=declared.fuel if declared and declared.fuel is not None else self.limits.fuel,
        )


class _Reader:
    """Reads typed fields out of a JSON object, raising ManifestError that names the field."""

    def __init__(self, data: Mapping[str, Any], path: str, prefix: str = "") -> None:
        self.data = data
        self.path = path
        self.prefix = prefix
        self.seen: set[str] = set()

    def fail(self, key: str, message: str) -> ManifestError:
        return ManifestError(message, path=self.path, field=self.prefix + key)

    def get(self, key: str, kind: type | tuple[type, ...], *, required: bool = False) -> Any:
        self.seen.add(key)
        if key not in self.data:
            if required:
                raise self.fail(key, "is required")
            return None
        value = self.data[key]
        if (kind is int and isinstance(value, bool)) or not isinstance(value, kind):
            names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
            shown = {"str": "a string", "int": "an integer", "dict": "an object",
                     "bool": "true or false"}.get(names, names)
            raise self.fail(key, f"must be {shown}, not {_json_type(value)}")
        return value

    def integer(self, key: str, low: int, high: int, default: int) -> int:
        value = self.get(key, int)
        if value is None:
            return default
        if not low <= value <= high:
            raise self.fail(key, f"must be between {low} and {high}, got {value}")
        return int(value)

    def check_unknown(self) -> None:
        unknown = sorted(set(self.data) - self.seen)
        if unknown:
            raise self.fail(unknown[0], "is not a known field (check the spelling; see docs/manifest.md)")


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def parse_manifest(data: Any, *, root: Path, source: str = MANIFEST_NAME) -> Manifest:
    """Validate decoded manifest JSON; ``root`` is the folder ``entryPoint`` is relative to."""
    if not isinstance(data, dict):
        raise ManifestError(f"the manifest must be a JSON object, not {_json_type(data)}", path=source)
    top = _Reader(data, source)
    top.get("$schema", str)
    name = top.get("name", str, required=True)
    if not NAME_RE.match(name):
        raise top.fail("name", f"{name!r} must be 1-64 characters of a-z, 0-9, '.', '_', '-', "
                       "starting with a letter or digit")
    version = top.get("version", str, required=True)
    if not VERSION_RE.match(version):
        raise top.fail("version", f"{version!r} is not a semantic version like 1.0.0")
    kind = top.get("type", str, required=True)
    if kind != "wasm":
        raise top.fail("type", f"must be \"wasm\", got {kind!r}")
    entry = top.get("entryPoint", str, required=True)
    _check_entry_point(top, entry)
    description = top.get("description", str) or ""
    if len(description) > 2000:
        raise top.fail("description", "must be at most 2000 characters")
    top.integer("abi", 1, 1, 1)

    wasm = _Reader(top.get("wasm", dict) or {}, source, "wasm.")
    memory_pages = wasm.integer("memoryPages", 1, WASM_PAGE_LIMIT, DEFAULT_MEMORY_PAGES)
    max_pages = wasm.integer("maxMemoryPages", 1, WASM_PAGE_LIMIT,
                             max(DEFAULT_MAX_MEMORY_PAGES, memory_pages))
    if max_pages < memory_pages:
        raise wasm.fail("maxMemoryPages", f"({max_pages}) must be at least memoryPages ({memory_pages})")
    allocator = wasm.get("allocator", str)
    if allocator is None:
        allocator = "auto"
    if allocator not in ("auto", *ALLOCATORS):
        raise wasm.fail("allocator", f"must be \"wasi\" (libc malloc), \"custom\" (cortex_alloc) "
                        f"or \"auto\", got {allocator!r}")
    wasm.check_unknown()

    lim = _Reader(top.get("limits", dict) or {}, source, "limits.")
    limits = CallLimits(
        timeout_ms=lim.integer("timeoutMs", 1, MAX_TIMEOUT_MS, DEFAULT_TIMEOUT_MS),
        fuel=lim.integer("fuel", 1, MAX_FUEL, DEFAULT_FUEL),
    )
    max_input = lim.integer("maxInputBytes", 2, HARD_IO_CAP, DEFAULT_MAX_INPUT_BYTES)
    max_output = lim.integer("maxOutputBytes", 1, HARD_IO_CAP, DEFAULT_MAX_OUTPUT_BYTES)
    max_log = lim.integer("maxLogBytes", 0, HARD_IO_CAP, DEFAULT_MAX_LOG_BYTES)
    lim.check_unknown()

    digest = top.get("sha256", str)
    if digest is not None and not SHA256_RE.match(digest):
        raise top.fail("sha256", "must be 64 lowercase hexadecimal digits")

    capabilities = _parse_capabilities(top, source)
    top.check_unknown()
    return Manifest(
        name=name, version=version, entry_point=entry, root=root, description=description,
        memory_pages=memory_pages, max_memory_pages=max_pages, allocator=allocator,
        limits=limits, max_input_bytes=max_input, max_output_bytes=max_output,
        max_log_bytes=max_log, sha256=digest, capabilities=capabilities,
        source=source,
    )


def _check_entry_point(top: _Reader, entry: str) -> None:
    pure = Path(entry)
    if not entry or pure.is_absolute() or ".." in pure.parts or "\\" in entry:
        raise top.fail("entryPoint", f"{entry!r} must be a relative path inside the plugin folder")
    if not entry.endswith(".wasm"):
        raise top.fail("entryPoint", f"{entry!r} must name a .wasm file")


def _parse_capabilities(top: _Reader, source: str) -> dict[str, Capability] | None:
    raw = top.get("capabilities", dict)
    if raw is None:
        return None
    if not raw:
        raise top.fail("capabilities", "must list at least one capability when present")
    result: dict[str, Capability] = {}
    for cap_name, spec in raw.items():
        prefix = f"capabilities.{cap_name}."
        if not CAPABILITY_RE.match(cap_name) or cap_name.startswith(("__", "cortex_", "_")):
            raise ManifestError("is not a valid capability name", path=source,
                                field=f"capabilities.{cap_name}")
        if not isinstance(spec, dict):
            raise ManifestError(f"must be an object, not {_json_type(spec)}", path=source,
                                field=f"capabilities.{cap_name}")
        cap = _Reader(spec, source, prefix)
        description = cap.get("description", str) or ""
        if len(description) > 2000:
            raise cap.fail("description", "must be at most 2000 characters")
        timeout = cap.get("timeoutMs", int)
        fuel = cap.get("fuel", int)
        if timeout is not None and not 1 <= timeout <= MAX_TIMEOUT_MS:
            raise cap.fail("timeoutMs", f"must be between 1 and {MAX_TIMEOUT_MS}, got {timeout}")
        if fuel is not None and not 1 <= fuel <= MAX_FUEL:
            raise cap.fail("fuel", f"must be between 1 and {MAX_FUEL}, got {fuel}")
        cap.check_unknown()
        result[cap_name] = Capability(cap_name, description, timeout, fuel)
    return result


def load_manifest(path: str | os.PathLike[str]) -> Manifest:
    """Load a plugin from a folder (holding ``plugin.json``) or from a manifest file's path."""
    target = Path(path)
    try:
        manifest_path, regular = _manifest_file(target)
    except ValueError:  # e.g. a NUL byte in the path
        raise ManifestError("is not a valid path", path=str(target)) from None
    shown = str(manifest_path)
    if regular is None:
        raise ManifestError("no plugin.json here", path=shown)
    if not regular:
        # a directory, FIFO or device: reading it could fail oddly or block forever
        raise ManifestError("is not a regular file", path=shown)
    try:
        with open(manifest_path, "rb") as f:
            raw = f.read(MAX_MANIFEST_BYTES + 1)
    except FileNotFoundError:
        raise ManifestError("no plugin.json here", path=shown) from None
    except OSError as exc:
        raise ManifestError(f"cannot read the manifest: {exc.strerror}", path=shown) from None
    if len(raw) > MAX_MANIFEST_BYTES:
        raise ManifestError(f"the manifest is larger than {MAX_MANIFEST_BYTES} bytes", path=shown)
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ManifestError(f"is not valid JSON: {exc}", path=shown) from None
    manifest = parse_manifest(data, root=manifest_path.parent.resolve(), source=shown)
    wasm = manifest.wasm_path
    if not wasm.is_file():
        raise ManifestError(f"{manifest.entry_point!r} does not exist in {manifest.root}",
                            path=shown, field="entryPoint")
    return manifest


def _manifest_file(target: Path) -> tuple[Path, bool | None]:
    """Where the manifest of ``target`` (a folder or a manifest's path) is, and whether it is a
    regular file (None: it does not exist; True when its status cannot be read either: reading it
    then reports why). One ``stat`` in the common case, a folder holding its plugin.json."""
    inside = target / MANIFEST_NAME
    try:
        return inside, stat.S_ISREG(os.stat(inside).st_mode)
    except NotADirectoryError:
        pass  # target is a file: the manifest itself
    except FileNotFoundError:
        if os.path.isdir(target):
            return inside, None
    except OSError:
        if os.path.isdir(target):
            return inside, True
    try:
        return target, stat.S_ISREG(os.stat(target).st_mode)
    except FileNotFoundError:
        return target, None
    except OSError:
        return target, True


def manifest_for_wasm(path: str | os.PathLike[str], **overrides: Any) -> Manifest:
    """A default manifest for a bare ``.wasm`` file (the testing helper's convenience)."""
    try:
        wasm = Path(path).resolve()
    except (OSError, ValueError, RuntimeError):  # a NUL byte in the path; a symlink loop
        raise ManifestError("is not a valid path", path=str(path)) from None
    if not wasm.is_file():
        raise ManifestError("no such file", path=str(path))
    stem = re.sub(r"[^a-z0-9._-]+", "-", wasm.stem.lower()).strip("-._") or "plugin"
    data: dict[str, Any] = {"name": stem[:64], "version": "0.0.0", "type": "wasm",
                            "entryPoint": wasm.name}
    data.update(overrides)
    return parse_manifest(data, root=wasm.parent, source=str(wasm))


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
