"""The adversarial corpus: every hostile guest gets its typed error while the pool keeps serving.

``conformance/adversarial/cases.json`` lists the cases (see the README next to it). For each one
this test builds the plugin folder, then loads it and makes the bad call while ten tasks keep
calling a healthy echo plugin, for as long as the bad operation lasts. Every good result is
checked, the pool must serve one more call afterwards, and the bad operation must fail with the
case's error class, in the case's phase (``load`` or ``call``), with its ``trap_code`` and message
(``match``, a regular expression) when the case gives them.

Every case also checks what no guest may do to the host: the bad operation ends in bounded time,
the plugin's log lines stay within the log budget, and the test process's memory does not grow
by more than a few tens of MiB (a stdout flood must not be buffered in the supervisor).

Cases marked ``"heavy": true`` (1 GiB fills, the slow compile, the 10-MB module, the log flood) run
under one anyio backend only, alternating between asyncio and trio, to keep the file within its
time budget (~90 s) on a 2-core machine; everything else runs under both backends.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import psutil
import pytest
import wasmtime
from conftest import REPO, PluginFactory, wat_bytes
from structlog.testing import capture_logs

from cortex_runtime import Runtime
from cortex_runtime.errors import CortexError, PluginTrap
from sandbox.engine import make_engine

pytestmark = pytest.mark.anyio

RuntimeFactory = Callable[..., Runtime]
CORPUS = REPO / "conformance" / "adversarial"
CASES: list[dict[str, Any]] = json.loads((CORPUS / "cases.json").read_text())
HEALTHY = "healthy"
GOOD_TASKS = 10
DEFAULT_LOG_BYTES = 64 * 1024
#: How much the test process may grow while one case runs (the stdout flood writes 10 MiB).
MAX_RSS_GROWTH = 64 * 1024 * 1024


# -- generated modules (non-WAT cases too large or too binary to store) ---------------------------


def _leb(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | 0x80 if n else byte)
        if not n:
            return bytes(out)


def _section(section_id: int, payload: bytes) -> bytes:
    return bytes([section_id]) + _leb(len(payload)) + payload


def _vec(items: list[bytes]) -> bytes:
    return _leb(len(items)) + b"".join(items)


def _name(text: str) -> bytes:
    return _leb(len(text)) + text.encode()


def _module_with_run_body(locals_decl: bytes, code: bytes) -> bytes:
    """A module exporting memory, ``cortex_alloc`` and ``run(ptr, len) -> i32`` with this body."""
    types = _vec([b"\x60\x01\x7f\x01\x7f", b"\x60\x02\x7f\x7f\x01\x7f"])
    exports = _vec([_name("memory") + b"\x02\x00", _name("cortex_alloc") + b"\x00\x00",
                    _name("run") + b"\x00\x01"])
    alloc_body = b"\x00\x41" + _leb(1024) + b"\x0b"  # no locals; i32.const 1024; end
    run_body = locals_decl + code + b"\x0b"
    bodies = _vec([_leb(len(alloc_body)) + alloc_body, _leb(len(run_body)) + run_body])
    return (b"\x00asm\x01\x00\x00\x00" + _section(1, types) + _section(3, _vec([b"\x00", b"\x01"]))
            + _section(5, _vec([b"\x00\x01"])) + _section(7, exports) + _section(10, bodies))


UNREACHABLE = b"\x00"


def precompiled_artifact() -> bytes:
    """Native code serialised by an engine configured exactly like the workers' own."""
    return bytes(wasmtime.Module(make_engine(), wat_bytes("echo_cortex_alloc")).serialize())


def truncated_module() -> bytes:
    wasm = wat_bytes("echo_cortex_alloc")
    return wasm[: len(wasm) // 2]


def compile_bomb_locals() -> bytes:
    """One function declaring 4 billion i64 locals (the validator's limit is 50,000)."""
    return _module_with_run_body(b"\x01" + _leb(2**32 - 1) + b"\x7e", UNREACHABLE)


def compile_bomb_nested_blocks() -> bytes:
    """100,000 nested empty blocks, then unreachable: compiles in well under a second."""
    depth = 100_000
    return _module_with_run_body(b"\x00", b"\x02\x40" * depth + b"\x0b" * depth + UNREACHABLE)


def compile_bomb_5mb_body() -> bytes:
    """A 5-MB straight-line body of ``i32.const; drop`` (cheap to compile), then unreachable."""
    unit = b"\x41\xff\xff\xff\xff\x07\x1a"  # i32.const 0x7fffffff; drop
    return _module_with_run_body(b"\x00", unit * (5_000_000 // len(unit)) + UNREACHABLE)


def compile_bomb_slow_body() -> bytes:
    """A 5-MB dependency chain ``x = x * 3`` on a local: Cranelift needs ~20 s on this machine."""
    unit = b"\x20\x00\x41\x03\x6c\x21\x00"  # local.get 0; i32.const 3; i32.mul; local.set 0
    return _module_with_run_body(b"\x00", unit * (5_000_000 // len(unit)) + UNREACHABLE)


def exports_bomb() -> bytes:
    """100,000 capability exports (the validator's maximum) with 100-byte names: a 10-MB module
    whose description (exports, signatures) is too large for the worker's reply frame."""
    exports = [_name("memory") + b"\x02\x00", _name("cortex_alloc") + b"\x00\x00"]
    exports += [_name(f"capability_{i:06d}".ljust(100, "x")) + b"\x00\x01" for i in range(100_000)]
    types = _vec([b"\x60\x01\x7f\x01\x7f", b"\x60\x02\x7f\x7f\x01\x7f"])
    alloc_body = b"\x00\x41" + _leb(1024) + b"\x0b"
    run_body = b"\x00" + UNREACHABLE + b"\x0b"
    bodies = _vec([_leb(len(alloc_body)) + alloc_body, _leb(len(run_body)) + run_body])
    return (b"\x00asm\x01\x00\x00\x00" + _section(1, types) + _section(3, _vec([b"\x00", b"\x01"]))
            + _section(5, _vec([b"\x00\x01"])) + _section(7, _vec(exports)) + _section(10, bodies))


GENERATORS: dict[str, Callable[[], bytes]] = {
    f.__name__: f for f in (precompiled_artifact, truncated_module, compile_bomb_locals,
                            compile_bomb_nested_blocks, compile_bomb_5mb_body,
                            compile_bomb_slow_body, exports_bomb)
}


def case_wasm(case: dict[str, Any]) -> bytes:
    file: str = case["file"]
    if file.startswith("generated:"):
        return GENERATORS[file.removeprefix("generated:")]()
    path = CORPUS / file
    if path.suffix == ".wat":
        return bytes(wasmtime.wat2wasm(path.read_text()))
    return path.read_bytes()


# -- parametrisation ----------------------------------------------------------------------------


#: Cases whose documented outcome the runtime does not deliver yet (reported; see the README).
#: Cases that fail against the documented behaviour: each is a runtime bug to fix (none now).
KNOWN_BUGS: dict[str, str] = {}


def _params() -> list[Any]:
    params = []
    heavy = 0
    for case in CASES:
        if case.get("heavy"):
            backends = [("asyncio", "trio")[heavy % 2]]
            heavy += 1
        else:
            backends = ["asyncio", "trio"]
        marks = []
        if case["name"] in KNOWN_BUGS:
            marks.append(pytest.mark.xfail(strict=True, reason=KNOWN_BUGS[case["name"]]))
        for backend in backends:
            params.append(pytest.param(case, backend, id=f"{case['name']}-{backend}", marks=marks))
    return params


def test_corpus_is_complete() -> None:
    """Every case names a file that exists, an error class that exists, and a known phase."""
    import cortex_runtime.errors as errors

    names = [case["name"] for case in CASES]
    assert len(names) == len(set(names)) >= 30
    listed = set()
    for case in CASES:
        assert set(case) <= {"name", "file", "capability", "input", "call_options", "manifest",
                             "expect", "phase", "trap_code", "match", "runtime", "heavy"}, case
        assert case["phase"] in ("load", "call"), case
        assert issubclass(getattr(errors, case["expect"]), CortexError), case
        file = case["file"]
        if file.startswith("generated:"):
            assert file.removeprefix("generated:") in GENERATORS, case
        else:
            assert (CORPUS / file).is_file(), case
            listed.add(file)
    on_disk = {p.name for p in CORPUS.iterdir() if p.suffix in (".wat", ".bin")}
    assert on_disk == listed, f"files without a case: {sorted(on_disk - listed)}"
    readme = (CORPUS / "README.md").read_text()
    missing = [name for name in names if f"`{name}`" not in readme]
    assert not missing, f"cases not described in README.md: {missing}"


# -- the harness -------------------------------------------------------------------------------


def _rss() -> int:
    return int(psutil.Process().memory_info().rss)


async def _bad_operation(rt: Runtime, folder: Path, case: dict[str, Any],
                         outcome: dict[str, Any]) -> None:
    """Load the case's plugin, then (if it loads) make the bad call; record what happened."""
    started = time.monotonic()
    try:
        info = await rt.load(folder)
    except CortexError as exc:
        outcome.update(phase="load", error=exc, seconds=time.monotonic() - started)
        return
    outcome["load_seconds"] = time.monotonic() - started
    options = case.get("call_options") or {}
    try:
        value = await rt.call(info.name, case["capability"], case.get("input"), **options)
    except CortexError as exc:
        outcome.update(phase="call", error=exc)
    else:
        outcome.update(phase="call", result=value)
    outcome["seconds"] = time.monotonic() - started


@pytest.mark.parametrize(("case", "anyio_backend"), _params())
async def test_adversarial_case(
    case: dict[str, Any], runtime: RuntimeFactory, make_plugin: PluginFactory
) -> None:
    wasm = case_wasm(case)
    plugin = "bad-" + case["name"].replace("_", "-")
    folder = make_plugin(wasm_bytes=wasm, name=plugin, **(case.get("manifest") or {}))
    options = {"quarantine_after": 0, **(case.get("runtime") or {})}
    async with runtime(**options) as rt:
        await rt.load(make_plugin("echo_cortex_alloc", name=HEALTHY))
        assert await rt.call(HEALTHY, "echo", "warm") == "warm"
        rss_before = _rss()
        outcome: dict[str, Any] = {}
        bad_done = anyio.Event()
        good: list[int] = []  # good calls that completed while the bad operation ran
        wrong: list[tuple[Any, Any]] = []

        async def bad() -> None:
            try:
                await _bad_operation(rt, folder, case, outcome)
            finally:
                bad_done.set()

        async def innocent(task: int) -> None:
            n = 0
            while n == 0 or not bad_done.is_set():
                sent = {"task": task, "n": n, "text": "ok ✓"}
                got = await rt.call(HEALTHY, "echo", sent)
                if got != sent:
                    wrong.append((sent, got))
                if not bad_done.is_set():
                    good.append(task)
                n += 1

        # a supervisor that hangs on a hostile guest fails the test instead of hanging it
        with capture_logs() as events, anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                tg.start_soon(bad)
                for task in range(GOOD_TASKS):
                    tg.start_soon(innocent, task)

        # the healthy plugin was served correctly throughout, and still is
        assert not wrong, wrong[:3]
        assert len(good) >= GOOD_TASKS or outcome["seconds"] < 0.2, (len(good), outcome)
        assert await rt.call(HEALTHY, "echo", ["after"]) == ["after"]
        growth = _rss() - rss_before

    # the expected typed error, in the expected phase
    assert "error" in outcome, f"{case['name']}: the bad operation succeeded: {outcome}"
    exc = outcome["error"]
    assert (type(exc).__name__, outcome["phase"]) == (case["expect"], case["phase"]), (
        f"{case['name']}: got {type(exc).__name__} at {outcome['phase']}: {exc}")
    if "trap_code" in case:
        assert isinstance(exc, PluginTrap)
        assert exc.trap_code == case["trap_code"], exc
    if "match" in case:
        assert re.search(case["match"], exc.message), exc.message
    if case["phase"] == "call":
        assert exc.plugin == plugin

    # bounded time: loads well under 30 s, timeouts close to their deadline, the rest quickly
    load_limit = (case.get("runtime") or {}).get("load_timeout", 30)
    assert outcome.get("load_seconds", outcome["seconds"]) < load_limit + 1.5, outcome
    if case["expect"] == "CallTimeout":
        timeout: float = case["call_options"]["timeout"]
        assert outcome["seconds"] - outcome.get("load_seconds", 0) < timeout + 2.0, outcome
    else:
        assert outcome["seconds"] < load_limit + 12, outcome

    # bounded logs and bounded supervisor memory
    lines = [e for e in events if e.get("event") == "plugin.log" and e.get("plugin") == plugin]
    log_budget = ((case.get("manifest") or {}).get("limits") or {}).get("maxLogBytes",
                                                                         DEFAULT_LOG_BYTES)
    assert sum(len(str(e.get("message", "")).encode()) for e in lines) <= log_budget
    # every line costs at least one byte of the budget: the number of events is bounded too
    assert len(lines) <= log_budget, f"{len(lines)} plugin.log events for one call"
    assert growth < MAX_RSS_GROWTH, f"the test process grew by {growth / 2**20:.0f} MiB"
