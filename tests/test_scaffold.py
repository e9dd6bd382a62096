"""``cortex plugin new --lang LANG NAME`` scaffolds a plugin that builds and answers, per language."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

from cortex_runtime import Runtime
from cortex_runtime.cli import SCAFFOLD_LANGUAGES
from cortex_runtime.errors import PluginError

CORTEX = str(Path(sys.executable).parent / "cortex")


def scaffold(language: str, parent: Path, name: str = "my-plugin") -> Path:
    done = subprocess.run([CORTEX, "plugin", "new", "--lang", language, name, "--dir", str(parent)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return parent / name


@pytest.mark.parametrize("language", SCAFFOLD_LANGUAGES)
def test_scaffolded_plugin_builds_and_answers(language: str, tmp_path: Path) -> None:
    folder = scaffold(language, tmp_path)
    assert "{{name}}" not in (folder / "plugin.json").read_text()
    # The scaffold works on its own: no environment beyond what `cortex plugin new` recorded.
    env = {k: v for k, v in os.environ.items() if k not in ("CORTEX_SDK_DIR", "PYTHON")}
    built = subprocess.run(["bash", "build.sh"], cwd=folder, env=env, capture_output=True,
                           text=True, timeout=900)
    assert built.returncode == 0, built.stdout + built.stderr
    assert (folder / "plugin.wasm").is_file()

    async def call() -> None:
        async with Runtime(workers=1, spare_workers=0, cache_dir=tmp_path / "cache") as rt:
            info = await rt.load(folder)
            assert info.name == "my-plugin"
            assert await rt.call("my-plugin", "greet", {"name": "you"}) == {"greeting": "hello, you"}
            with pytest.raises(PluginError):
                await rt.call("my-plugin", "greet", {})

    anyio.run(call)


def test_scaffold_refuses_bad_names_and_existing_folders(tmp_path: Path) -> None:
    bad = subprocess.run([CORTEX, "plugin", "new", "--lang", "c", "Bad_Name", "--dir", str(tmp_path)],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "not a plugin name" in bad.stderr
    scaffold("c", tmp_path, "twice")
    again = subprocess.run([CORTEX, "plugin", "new", "--lang", "c", "twice", "--dir", str(tmp_path)],
                           capture_output=True, text=True)
    assert again.returncode == 2 and "already exists" in again.stderr
