"""Shared fixtures: both anyio backends, plugin folders built from WAT, a private cache dir."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import wasmtime

from cortex_runtime import Runtime

TESTS = Path(__file__).resolve().parent
FIXTURES = TESTS / "fixtures"
REPO = TESTS.parent
EXAMPLE_DIR = REPO / "examples" / "text-processor"


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Every ``@pytest.mark.anyio`` test runs under asyncio and under trio."""
    return str(request.param)


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache for the whole session (compiled modules are reused), never the user's home."""
    return tmp_path_factory.mktemp("cortex-cache")


def wat_bytes(fixture: str) -> bytes:
    """Compile ``tests/fixtures/<fixture>.wat`` to a wasm binary."""
    return bytes(wasmtime.wat2wasm((FIXTURES / f"{fixture}.wat").read_text()))


PluginFactory = Callable[..., Path]


@pytest.fixture
def make_plugin(tmp_path: Path) -> PluginFactory:
    """Build a plugin folder in ``tmp_path``; returns the folder.

    ``make_plugin("echo_malloc", wasm={"allocator": "wasi"})`` compiles the WAT fixture to
    ``plugin.wasm`` and writes ``plugin.json`` with the keyword arguments merged over the basics.
    ``name=`` sets the plugin name (default: the fixture name with dashes); ``wasm_bytes=`` writes
    those bytes instead of compiling a fixture (for files that are not valid modules).
    """

    def make(fixture: str | None = None, *, name: str | None = None,
             wasm_bytes: bytes | None = None, **overrides: Any) -> Path:
        if wasm_bytes is None:
            assert fixture is not None, "give a fixture name or wasm_bytes"
            wasm_bytes = wat_bytes(fixture)
        plugin_name = name or (fixture or "plugin").replace("_", "-")
        folder = tmp_path / plugin_name
        folder.mkdir(parents=True, exist_ok=False)
        (folder / "plugin.wasm").write_bytes(wasm_bytes)
        manifest: dict[str, Any] = {"name": plugin_name, "version": "1.0.0", "type": "wasm",
                                    "entryPoint": "plugin.wasm"}
        manifest.update(overrides)
        (folder / "plugin.json").write_text(json.dumps(manifest))
        return folder

    return make


@pytest.fixture
def runtime(cache_dir: Path) -> Callable[..., Runtime]:
    """``runtime(**kw)`` makes a small ``Runtime`` (2 workers) that uses the session cache."""

    def make(**kwargs: Any) -> Runtime:
        kwargs.setdefault("workers", 2)
        kwargs.setdefault("cache_dir", cache_dir)
        return Runtime(**kwargs)

    return make


@pytest.fixture(scope="session")
def text_processor() -> Path:
    """The example C plugin folder, (re)built once per session: build.sh itself skips the work
    when the .wasm is newer than its sources and the SDK header."""
    wasm = EXAMPLE_DIR / "text_processor.wasm"
    subprocess.run(
        [str(EXAMPLE_DIR / "build.sh")], check=True, timeout=300,
        env={**os.environ, "PYTHON": sys.executable},
    )
    assert wasm.is_file()
    return EXAMPLE_DIR
