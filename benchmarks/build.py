"""Build the benchmark plugins on demand and make distinct copies of them.

``ensure_built()`` runs ``benchmarks/plugins/build.sh`` (idempotent: it skips up-to-date builds).
``make_copies()`` writes plugin folders whose wasm differs only by a custom section, so every
copy has its own SHA-256: a host cannot tell them apart from genuinely different plugins (no
shared compiled-code cache entry, no shared load), which is what the cold-start and
many-plugins scenarios need.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

PLUGIN_DIR = Path(__file__).resolve().parent / "plugins"
ROOT = PLUGIN_DIR.parent.parent
CORTEX_WASM = PLUGIN_DIR / "cortex_bench.wasm"
EXTISM_WASM = PLUGIN_DIR / "extism_bench.wasm"
MANIFEST = PLUGIN_DIR / "plugin.json"
PLUGIN_NAME = "cortex-bench"
COPY_SECTION = b"cortex-bench-copy"


class BuildError(RuntimeError):
    """The benchmark plugins could not be built (toolchain missing or compile error)."""


def ensure_built(env: dict[str, str] | None = None) -> tuple[Path, Path]:
    """Build both wasm files if needed; return (cortex_bench.wasm, extism_bench.wasm)."""
    run_env = dict(env if env is not None else os.environ)
    run_env.setdefault("PYTHON", sys.executable)
    proc = subprocess.run(
        ["bash", str(PLUGIN_DIR / "build.sh")], env=run_env, capture_output=True, text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise BuildError(f"benchmarks/plugins/build.sh failed:\n{proc.stdout}{proc.stderr}")
    return CORTEX_WASM, EXTISM_WASM


def _leb128(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def with_custom_section(wasm: bytes, payload: bytes, name: bytes = COPY_SECTION) -> bytes:
    """``wasm`` with a custom section appended (valid anywhere in a module; ignored by hosts)."""
    body = _leb128(len(name)) + name + payload
    return wasm + b"\x00" + _leb128(len(body)) + body


@dataclass(frozen=True)
class PluginCopy:
    """One distinct copy: a Cortex plugin folder (plugin.json + cortex_bench.wasm) that also
    holds the Extism-ABI build with the same marker (extism_bench.wasm)."""

    index: int
    name: str
    folder: Path

    @property
    def cortex_wasm(self) -> bytes:
        return (self.folder / CORTEX_WASM.name).read_bytes()

    @property
    def extism_wasm(self) -> bytes:
        return (self.folder / EXTISM_WASM.name).read_bytes()


def make_copies(dest: Path, count: int, *, start: int = 0, tag: str = "copy") -> list[PluginCopy]:
    """Write ``count`` distinct plugin folders under ``dest`` (``<tag>-<index>``)."""
    base_cortex = CORTEX_WASM.read_bytes()
    base_extism = EXTISM_WASM.read_bytes()
    manifest = json.loads(MANIFEST.read_text())
    copies: list[PluginCopy] = []
    for index in range(start, start + count):
        name = f"{PLUGIN_NAME}-{tag}-{index:04d}"
        folder = dest / name
        folder.mkdir(parents=True, exist_ok=True)
        marker = f"{tag}:{index}:{os.getpid()}".encode()
        (folder / manifest["entryPoint"]).write_bytes(with_custom_section(base_cortex, marker))
        (folder / EXTISM_WASM.name).write_bytes(with_custom_section(base_extism, marker))
        (folder / "plugin.json").write_text(json.dumps(dict(manifest, name=name), indent=2))
        copies.append(PluginCopy(index, name, folder))
    return copies
