"""Test a plugin from Python the way the product document's ``testWasmPlugin`` does from JS.

    async with load_wasm_plugin("text_processor.wasm") as plugin:
        result = await plugin.call("transform", {"text": "hello world", "mode": "uppercase"})
        assert result["result"] == "HELLO WORLD"

The plugin runs exactly as in production: in a sandboxed worker process, fresh instance per call.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from .runtime import PluginInfo, Runtime


class PluginHandle:
    """One loaded plugin and the runtime hosting it; ``call`` takes just the capability."""

    def __init__(self, runtime: Runtime, info: PluginInfo) -> None:
        self.runtime = runtime
        self.info = info

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def capabilities(self) -> tuple[str, ...]:
        return self.info.capabilities

    async def call(self, capability: str, input: Any = None, *, timeout: float | None = None,
                   fuel: int | None = None) -> Any:
        """Call ``capability`` with ``input``; raises the same typed errors as ``Runtime.call``."""
        return await self.runtime.call(self.info.name, capability, input, timeout=timeout, fuel=fuel)


@asynccontextmanager
async def load_wasm_plugin(
    path: str | os.PathLike[str],
    *,
    workers: int = 1,
    cache_dir: str | os.PathLike[str] | None = None,
    **runtime_options: Any,
) -> AsyncIterator[PluginHandle]:
    """Load a ``.wasm`` (default limits), a ``plugin.json`` or a plugin folder into a private runtime.

    ``cache_dir`` defaults to a temporary directory, so tests leave nothing behind.
    """
    with tempfile.TemporaryDirectory(prefix="cortex-test-") as scratch:
        runtime = Runtime(workers=workers, spare_workers=runtime_options.pop("spare_workers", 0),
                          cache_dir=cache_dir if cache_dir is not None else scratch,
                          **runtime_options)
        async with runtime:
            info = await runtime.load(path)
            yield PluginHandle(runtime, info)
