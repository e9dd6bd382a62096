"""The product document's own examples, built with our SDKs, behave as the document says."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from conformance.reference import simple_hash
from cortex_runtime.testing import load_wasm_plugin

REPO = Path(__file__).resolve().parent.parent
RUST_DOC = REPO / "sdk" / "rust" / "examples-doc"

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def rust_doc_example() -> Path:
    done = subprocess.run(["bash", str(RUST_DOC / "build.sh")], capture_output=True, text=True,
                          timeout=900, env={"PATH": "/usr/bin:/bin", "PYTHON": sys.executable,
                                            "HOME": str(Path.home())})
    assert done.returncode == 0, done.stdout + done.stderr
    return RUST_DOC


async def test_the_documents_rust_example_as_written(rust_doc_example: Path) -> None:
    """Built from the document's Cargo.toml and source (typo `to_lowercycle` fixed) unchanged."""
    source = (rust_doc_example / "src" / "lib.rs").read_text()
    assert 'register_capability!("transform", transform_text);' in source
    assert "to_lowercase()" in source and "to_lowercycle" not in source.split("//")[0]
    async with load_wasm_plugin(rust_doc_example) as plugin:
        out = await plugin.call("transform", {"text": "hello world", "mode": "uppercase"})
        assert out == {"result": "HELLO WORLD", "length": 11, "hash": simple_hash("HELLO WORLD")}
        out = await plugin.call("transform", {"text": "hello", "mode": "reverse"})
        assert out["result"] == "olleh" and out["hash"] == 105835282
