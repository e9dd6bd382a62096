"""Scenario C: Extism's Python SDK (PyPI ``extism``), in-process, with the Extism-ABI build of the
same logic (plugins/extism_bench.c).

Two ways of using it are measured:
- **C** (the SDK's normal use): one ``extism.Plugin`` per plugin, called again and again. Extism
  keeps the instance between calls (its kernel memory is reset, the guest's memory and globals
  are not), so C does *not* give a fresh instance per call.
- **C′ (fresh)**: a new ``Plugin`` from a ``CompiledPlugin`` per call: the same isolation as A and
  B (nothing of one call is visible to the next), at the price of an instantiation per call.

Extism compiles through its own bundled wasmtime (``extism-sys``), which caches compiled modules
on disk in ``$XDG_CACHE_HOME/wasmtime`` (wasmtime's default cache): the suite points
XDG_CACHE_HOME at a scratch folder so runs do not share that cache.
"""

from __future__ import annotations

from typing import Any

import orjson

try:  # optional: the suite runs without C when extism cannot be imported
    import extism
    from extism.extism import CompiledPlugin

    IMPORT_ERROR: str | None = None
except Exception as exc:  # pragma: no cover - depends on the machine
    extism = None
    CompiledPlugin = None
    IMPORT_ERROR = f"{type(exc).__name__}: {exc}"


def available() -> tuple[bool, str]:
    """Whether C can run here, and if not, why."""
    if extism is None:
        return False, f"`import extism` failed ({IMPORT_ERROR}); install it with `pip install extism`"
    from importlib.metadata import version

    return True, (f"`pip install extism` works here: extism {version('extism')} with extism-sys "
                  f"{version('extism-sys')}, whose manylinux wheel bundles the native library "
                  f"(libextism {extism_version()})")


def extism_version() -> str:
    assert extism is not None
    return str(extism.extism_version())


def _decode(buffer: Any) -> Any:
    return orjson.loads(buffer[:])


class ExtismPluginHost:
    """One plugin under Extism: ``call`` reuses the instance, ``call_fresh`` makes a new one."""

    def __init__(self, wasm: bytes) -> None:
        assert extism is not None and CompiledPlugin is not None
        self.compiled = CompiledPlugin(wasm, wasi=True, functions=[])
        self.plugin = extism.Plugin(self.compiled, wasi=True, functions=[])

    def new_instance(self) -> Any:
        assert extism is not None
        return extism.Plugin(self.compiled, wasi=True, functions=[])

    def call(self, export: str, payload: bytes, plugin: Any = None) -> Any:
        return (plugin or self.plugin).call(export, payload, _decode)

    def call_fresh(self, export: str, payload: bytes) -> Any:
        assert extism is not None
        plugin = extism.Plugin(self.compiled, wasi=True, functions=[])
        try:
            return plugin.call(export, payload, _decode)
        finally:
            plugin.__del__()


def error_type() -> type[BaseException]:
    assert extism is not None
    return extism.Error  # type: ignore[no-any-return]
