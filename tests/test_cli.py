"""The ``cortex`` command, run as a user would run it (a subprocess), including the product
document's exact example command."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from support import write_plugin

CORTEX = str(Path(sys.executable).parent / "cortex")
DOC_INPUT = '{"text":"hello","mode":"reverse"}'


def cortex(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CORTEX, *args], capture_output=True, text=True, env=env, cwd=cwd,
                          timeout=120, stdin=subprocess.DEVNULL)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CORTEX_")}
    clean["CORTEX_HOME"] = str(tmp_path / "home")
    clean["XDG_CACHE_HOME"] = str(tmp_path / "xdg-cache")
    return clean


@pytest.fixture
def installed(text_processor: Path, tmp_path: Path, env: dict[str, str]) -> Path:
    """A working directory with the example installed in ./plugins (the first default folder)."""
    work = tmp_path / "work"
    (work / "plugins").mkdir(parents=True)
    shutil.copytree(text_processor, work / "plugins" / "text-processor")
    return work


def test_the_documents_exact_command(installed: Path, env: dict[str, str]) -> None:
    done = cortex("--verbose", "plugin", "call", "text-processor", "transform", DOC_INPUT,
                  env=env, cwd=installed)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"result": "olleh", "length": 5, "hash": 105835282}
    # --verbose: the structured log (worker start, load, the plugin's own line, the call) on stderr
    for event in ("worker.start", "plugin.load", "plugin.log", "transform mode=reverse", "call"):
        assert event in done.stderr
    assert "outcome=ok" in done.stderr and "fuel_used=" in done.stderr


def test_quiet_by_default(installed: Path, env: dict[str, str]) -> None:
    done = cortex("plugin", "call", "text-processor", "transform", DOC_INPUT, env=env, cwd=installed)
    assert done.returncode == 0
    assert done.stderr == ""
    assert done.stdout.strip() == '{"result":"olleh","length":5,"hash":105835282}'


def test_exit_codes_and_one_line_errors(installed: Path, env: dict[str, str], tmp_path: Path) -> None:
    usage = cortex("plugin", "call", "text-processor", "transform", "{not json", env=env, cwd=installed)
    missing = cortex("plugin", "call", "nope", "transform", "{}", env=env, cwd=installed)
    no_cap = cortex("plugin", "call", "text-processor", "nope", "{}", env=env, cwd=installed)
    plugin_error = cortex("plugin", "call", "text-processor", "transform", '{"text": 1}',
                          env=env, cwd=installed)
    write_plugin(installed / "plugins", "trapper")
    trap = cortex("plugin", "call", "trapper", "boom", "{}", env=env, cwd=installed)
    spin = cortex("plugin", "call", "trapper", "spin", "{}", "--timeout", "0.2", env=env, cwd=installed)
    assert (usage.returncode, missing.returncode, no_cap.returncode) == (2, 2, 2)
    assert (plugin_error.returncode, trap.returncode, spin.returncode) == (3, 3, 3)
    for done in (usage, missing, no_cap, plugin_error, trap, spin):
        assert done.stdout == ""
        assert done.stderr.count("\n") == 1 and done.stderr.startswith("error: "), done.stderr
    assert "plugin_trap" in trap.stderr and "unreachable" in trap.stderr
    assert "call_timeout" in spin.stderr
    assert "plugin_not_found" in missing.stderr


def test_plugin_search_path(text_processor: Path, env: dict[str, str], tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(text_processor, elsewhere / "text-processor")
    cwd = tmp_path / "empty"
    cwd.mkdir()
    args = ("plugin", "call", "text-processor", "transform", DOC_INPUT)
    assert cortex(*args, env=env, cwd=cwd).returncode == 2  # nothing in ./plugins or ~/.cortex
    by_flag = cortex("--plugin-dir", str(elsewhere), *args, env=env, cwd=cwd)
    by_env = cortex(*args, env={**env, "CORTEX_PLUGIN_PATH": os.pathsep.join(["/nonexistent",
                                                                              str(elsewhere)])},
                    cwd=cwd)
    assert by_flag.returncode == 0 and by_env.returncode == 0


def test_list_validate_inspect_install(text_processor: Path, env: dict[str, str], tmp_path: Path) -> None:
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    validate = cortex("plugin", "validate", str(text_processor), env=env, cwd=cwd)
    assert validate.returncode == 0 and "ok: text-processor 1.0.0" in validate.stdout

    inspect = cortex("plugin", "inspect", str(text_processor / "text_processor.wasm"), "--json",
                     env=env, cwd=cwd)
    report = json.loads(inspect.stdout)
    assert report["capabilities"] == ["transform"] and report["allocator"] == "malloc"
    assert {i["module"] for i in report["imports"]} == {"cortex"}
    assert report["memory"]["min_pages"] >= 1
    human = cortex("plugin", "inspect", str(text_processor), env=env, cwd=cwd)
    assert "transform (i32, i32) -> (i32)  [capability]" in human.stdout

    install = cortex("plugin", "install", str(text_processor), env=env, cwd=cwd)
    assert install.returncode == 0, install.stderr
    assert (Path(env["CORTEX_HOME"]) / "plugins" / "text-processor" / "plugin.json").is_file()
    again = cortex("plugin", "install", str(text_processor), env=env, cwd=cwd)
    assert again.returncode == 3 and "--force" in again.stderr
    listing = cortex("plugin", "list", "--json", env=env, cwd=cwd)
    assert [p["name"] for p in json.loads(listing.stdout)["plugins"]] == ["text-processor"]
    called = cortex("plugin", "call", "text-processor", "transform", DOC_INPUT, env=env, cwd=cwd)
    assert called.returncode == 0 and "olleh" in called.stdout


def test_validate_reports_a_broken_plugin(tmp_path: Path, env: dict[str, str]) -> None:
    folder = write_plugin(tmp_path, "broken", wasm={"maxMemoryPages": 0})
    done = cortex("plugin", "validate", str(folder), env=env, cwd=tmp_path)
    assert done.returncode == 3
    assert "wasm.maxMemoryPages" in done.stderr and done.stderr.count("\n") == 1
    bad_wasm = write_plugin(tmp_path, "notwasm")
    (bad_wasm / "plugin.wasm").write_bytes(b"\x7fELF" + bytes(60))
    done = cortex("plugin", "validate", str(bad_wasm), env=env, cwd=tmp_path)
    assert done.returncode == 3 and "not a WebAssembly" in done.stderr


def test_bench_help_is_the_suites(env: dict[str, str], tmp_path: Path) -> None:
    done = cortex("bench", "--help", env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: cortex bench")
    for option in ("--quick", "--only", "--out-dir", "--skip-extism"):
        assert option in done.stdout
    wrong = cortex("bench", "--no-such-option", env=env, cwd=tmp_path)
    assert wrong.returncode == 2
    assert "unrecognized arguments: --no-such-option" in wrong.stderr


@pytest.mark.slow
def test_bench_runs_the_suite_from_anywhere(env: dict[str, str], tmp_path: Path) -> None:
    """`cortex bench` runs the checkout's suite whatever the working directory, with its options."""
    out = tmp_path / "bench"
    done = cortex("bench", "--quick", "--only", "memory", "--skip-extism", "--out-dir", str(out),
                  env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((out / "benchmarks.json").read_text())
    assert results["meta"]["scenarios"] == ["memory"]
    rows = {row["id"]: row["values"] for row in results["rows"]}
    assert rows["rss_worker"]["A"] > 1 and rows["rss_worker_max"]["A"] >= rows["rss_worker"]["A"]
    assert (out / "benchmarks.md").read_text().startswith("# Benchmarks")


def test_bench_outside_a_checkout_says_so(env: dict[str, str], tmp_path: Path) -> None:
    # In a process of its own: the command configures the process's logging.
    script = ("import sys; from pathlib import Path; from cortex_runtime import cli; "
              "root = Path(sys.argv.pop(1)); cli.benchmarks_root = lambda: root; cli.main()")
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path), "bench", "--quick"],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)
    assert done.returncode == 2, done.stderr
    assert "benchmarks/" in done.stderr and str(tmp_path) in done.stderr
    assert not (tmp_path / "benchmarks").exists()
