"""Build every language's conformance plugin and run every vector against it through ``Runtime``.

A language that cannot be built is a failure, not a skip: CI must prove every promised language.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import orjson
import structlog
from structlog.testing import capture_logs

from cortex_runtime import Runtime
from cortex_runtime.errors import CortexError

from .reference import transform

ROOT = Path(__file__).resolve().parent
REPO = ROOT.parent
PLUGINS = ROOT / "plugins"
LANGUAGES = ("c", "cpp", "rust", "go", "zig", "assemblyscript", "wat")
BUILD_TIMEOUT = 900


@dataclass
class Outcome:
    """One vector against one language."""

    language: str
    vector: str
    ok: bool
    detail: str = ""
    canonical: bytes | None = None  # the result (or error kind + message) for cross-checking
    seconds: float = 0.0


@dataclass
class Report:
    languages: list[str]
    vectors: list[str]
    build_errors: dict[str, str] = field(default_factory=dict)
    outcomes: dict[tuple[str, str], Outcome] = field(default_factory=dict)
    mismatches: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return (not self.build_errors and not self.mismatches
                and all(o.ok for o in self.outcomes.values())
                and len(self.outcomes) == len(self.languages) * len(self.vectors))

    def failures(self) -> list[str]:
        lines = [f"{lang}: build failed: {err}" for lang, err in self.build_errors.items()]
        lines += [f"{o.language} / {o.vector}: {o.detail}" for o in self.outcomes.values() if not o.ok]
        lines += self.mismatches
        return lines


def load_vectors(path: Path = ROOT / "vectors.json") -> list[dict[str, Any]]:
    vectors: list[dict[str, Any]] = orjson.loads(path.read_bytes())
    names = [v["name"] for v in vectors]
    if len(set(names)) != len(names):
        raise ValueError("vector names must be unique")
    return vectors


def build(language: str, *, rebuild: bool = False) -> str | None:
    """Run ``plugins/<language>/build.sh``; return an error message, or None on success."""
    folder = PLUGINS / language
    script = folder / "build.sh"
    if not script.is_file():
        return f"no conformance plugin for {language} ({script} is missing)"
    if rebuild:
        (folder / "plugin.wasm").unlink(missing_ok=True)
    env = dict(os.environ, PYTHON=sys.executable)
    try:
        done = subprocess.run(["bash", str(script)], cwd=folder, env=env, capture_output=True,
                              text=True, timeout=BUILD_TIMEOUT, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return f"build.sh took longer than {BUILD_TIMEOUT}s"
    if done.returncode != 0:
        tail = (done.stderr.strip() or done.stdout.strip()).splitlines()[-5:]
        return f"build.sh exited {done.returncode}: " + " | ".join(tail)
    if not (folder / "plugin.wasm").is_file():
        return "build.sh succeeded but produced no plugin.wasm"
    return None


def make_input(vector: dict[str, Any]) -> tuple[str, Any]:
    """('value', python value) for Runtime.call or ('json', text) for Runtime.call_json."""
    if "input_json" in vector:
        return "json", vector["input_json"]
    if "input_generator" in vector:
        gen = vector["input_generator"]
        text = gen["repeat"] * gen["times"]
        if gen["kind"] == "text":
            return "value", {"text": text, "mode": gen["mode"]}
        if gen["kind"] == "echo":
            return "value", text
        raise ValueError(f"unknown generator kind {gen['kind']!r}")
    return "value", vector["input"]


def expected_result(vector: dict[str, Any], value: Any) -> Any:
    expect = vector["expect"]
    if "result" in expect:
        return expect["result"]
    if expect.get("reference"):
        if vector["capability"] == "transform":
            return transform(value["text"], value["mode"])
        if vector["capability"] == "echo":
            return value
    raise ValueError(f"vector {vector['name']} has no usable expectation")


async def run_vector(rt: Runtime, language: str, vector: dict[str, Any]) -> Outcome:
    name = vector["name"]
    kind, value = make_input(vector)
    plugin = f"conformance-{language}"
    started = time.perf_counter()
    with capture_logs() as events:
        try:
            if kind == "json":
                got: Any = await rt.call_json(plugin, vector["capability"], value)
            else:
                got = await rt.call(plugin, vector["capability"], value)
            error: CortexError | None = None
        except CortexError as exc:
            got, error = None, exc
    seconds = time.perf_counter() - started
    expect = vector["expect"]

    def outcome(ok: bool, detail: str = "", canonical: bytes | None = None) -> Outcome:
        return Outcome(language, name, ok, detail, canonical, seconds)

    if "error" in expect:
        if error is None:
            return outcome(False, f"expected {expect['error']}, got result {_short(got)}")
        if type(error).__name__ != expect["error"]:
            return outcome(False, f"expected {expect['error']}, got {type(error).__name__}: {error}")
        if "message" in expect and error.message != expect["message"]:
            return outcome(False, f"error message {error.message!r} != {expect['message']!r}")
        canonical = orjson.dumps([expect["error"], expect.get("message")])
        return outcome(True, "", canonical)
    if error is not None:
        return outcome(False, f"{type(error).__name__}: {error}")
    want = expected_result(vector, value if kind == "value" else orjson.loads(value))
    if got != want:
        return outcome(False, f"result {_short(got)} != expected {_short(want)}")
    if "expect_log" in vector:
        messages = [e.get("message") for e in events if e.get("event") == "plugin.log"]
        if vector["expect_log"] not in messages:
            return outcome(False, f"log line {vector['expect_log']!r} not among {messages!r}")
    return outcome(True, "", orjson.dumps(got, option=orjson.OPT_SORT_KEYS))


def _short(value: Any) -> str:
    text = orjson.dumps(value).decode(errors="replace")
    return text if len(text) <= 120 else text[:117] + "..."


async def run(languages: Sequence[str], *, rebuild: bool = False,
              cache_dir: Path | None = None, vectors: list[dict[str, Any]] | None = None) -> Report:
    vectors = vectors if vectors is not None else load_vectors()
    report = Report(list(languages), [v["name"] for v in vectors])
    for language in languages:
        error = await anyio.to_thread.run_sync(partial(build, language, rebuild=rebuild))
        if error:
            report.build_errors[language] = error
    cache = cache_dir or REPO / ".cortex-cache"
    async with Runtime(workers=2, cache_dir=cache, quarantine_after=0) as rt:
        for language in languages:
            if language in report.build_errors:
                continue
            try:
                await rt.load(PLUGINS / language)
            except CortexError as exc:
                report.build_errors[language] = f"does not load: {exc}"
                continue
            for vector in vectors:
                report.outcomes[language, vector["name"]] = await run_vector(rt, language, vector)
    for vector in vectors:
        seen = {o.canonical for lang in languages
                if (o := report.outcomes.get((lang, vector["name"]))) is not None and o.ok}
        if len(seen) > 1:
            report.mismatches.append(f"{vector['name']}: languages disagree ({len(seen)} results)")
    return report


def render(report: Report) -> str:
    """A language x vector table: '.' pass, 'F' fail, 'B' not built."""
    langs = report.languages
    width = max(len(v) for v in report.vectors)
    head = " " * width + "  " + " ".join(f"{lang[:6]:>6}" for lang in langs)
    lines = [head]
    for vector in report.vectors:
        cells = []
        for lang in langs:
            if lang in report.build_errors:
                cells.append("B")
            else:
                o = report.outcomes.get((lang, vector))
                cells.append("." if o and o.ok else "F")
        lines.append(f"{vector:<{width}}  " + " ".join(f"{c:>6}" for c in cells))
    totals = []
    for lang in langs:
        ok = sum(1 for v in report.vectors if (o := report.outcomes.get((lang, v))) and o.ok)
        totals.append(f"{ok}/{len(report.vectors)}")
    lines.append(f"{'passed':<{width}}  " + " ".join(f"{t:>6}" for t in totals))
    failures = report.failures()
    if failures:
        lines.append("")
        lines.append("failures:")
        lines.extend(f"  {f}" for f in failures)
    total = len(langs) * len(report.vectors)
    passed = sum(1 for o in report.outcomes.values() if o.ok)
    lines.append(f"conformance: {passed} passed, {total - passed} failed")
    return "\n".join(lines)


def _quiet(logger: Any, method: str, event: Any) -> Any:
    raise structlog.DropEvent


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m conformance", description=__doc__)
    parser.add_argument("--lang", action="append", choices=LANGUAGES,
                        help="only this language (repeatable); default: all")
    parser.add_argument("--rebuild", action="store_true", help="rebuild every plugin first")
    args = parser.parse_args(argv)
    structlog.configure(processors=[_quiet])  # capture_logs() still sees every event
    report = anyio.run(lambda: run(args.lang or LANGUAGES, rebuild=args.rebuild))
    print(render(report))
    return 0 if report.passed else 1
