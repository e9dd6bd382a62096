"""The ``cortex soak`` command: options (:func:`soak_options`) and what it does (:func:`main`).

Exit codes: 0 the soak passed, 1 it failed (lost calls, leaks, unexpected errors: see the checks),
2 usage error (bad option, mix file, unknown plugin), 3/4 a plugin could not be loaded (as the rest
of the CLI: docs/cli.md).
"""

from __future__ import annotations

import collections
import logging
import sys
from collections.abc import Callable, Mapping, MutableMapping
from pathlib import Path
from typing import Any, TextIO, TypeVar

import click
import orjson

from .. import eventloop
from .config import FaultSettings, SoakConfig, SoakSetupError, Thresholds, parse_duration

F = TypeVar("F", bound=Callable[..., Any])


def _duration(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return parse_duration(value)
    except SoakSetupError as exc:
        raise click.BadParameter(str(exc)) from None


def soak_options(function: F) -> F:
    """Every option of ``cortex soak`` (applied by the command in cortex_runtime/cli.py)."""
    options = [
        click.argument("plugins", metavar="PLUGIN...", nargs=-1, required=True),
        click.option("--duration", callback=_duration, default=None,
                     help="How long to run: 90s, 10m, 1h30m (default 60s)."),
        click.option("--calls", type=click.IntRange(min=1), default=None,
                     help="Run this many calls instead of a duration."),
        click.option("--concurrency", type=click.IntRange(min=1), default=None,
                     help="Calls in flight at once (default: 2 x workers)."),
        click.option("--rate", type=click.FloatRange(min=0, min_open=True), default=None,
                     help="Target calls per second (default: as fast as the concurrency allows)."),
        click.option("--workers", type=click.IntRange(min=1), default=None,
                     help="Worker processes (default: one per CPU)."),
        click.option("--mix", "mix_path", type=click.Path(exists=True, dir_okay=False),
                     default=None, help="Input generator file: JSON lines, JSON spec or .py."),
        click.option("--report", "report_dir", type=click.Path(file_okay=False), default=None,
                     help="Write report.json, report.html and runtime.log into this folder."),
        click.option("--json", "as_json", is_flag=True,
                     help="No live progress; print a machine-readable summary on stdout."),
        click.option("--faults/--no-faults", default=True, show_default=True,
                     help="Inject faults (traps, loops, memory bombs, tiny budgets, SIGKILLs, "
                          "cancellations, bad output)."),
        click.option("--fault-rate", type=click.FloatRange(0, 1), default=None,
                     help="Fraction of calls that carry a fault (default 0.05)."),
        click.option("--worker-faults-per-s", type=click.FloatRange(min=0), default=None,
                     help="Budget of faults that cost a worker process, per second (default 2)."),
        click.option("--seed", type=int, default=None, help="Random seed (printed in the report)."),
        click.option("--watchdog", type=click.FloatRange(min=0, min_open=True), default=60.0,
                     show_default=True, help="Seconds after which a call without an outcome is lost."),
        click.option("--threshold", "thresholds", multiple=True, metavar="NAME=VALUE",
                     help=f"Change a pass/fail threshold (repeatable): {', '.join(Thresholds.names())}."),
    ]
    for option in reversed(options):
        function = option(function)
    return function


_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
           "warn": logging.WARNING, "error": logging.ERROR, "exception": logging.ERROR,
           "critical": logging.CRITICAL, "fatal": logging.CRITICAL}


class _EventCounter:
    """structlog processor: counts events by name, writes the ones worth keeping, drops the rest."""

    def __init__(self, counts: collections.Counter[str], sink: TextIO | None, verbose: bool) -> None:
        self.counts = counts
        self.sink = sink
        self.level = logging.DEBUG if verbose else logging.WARNING

    def __call__(self, logger: Any, method: str, event: MutableMapping[str, Any]) -> str:
        import structlog

        self.counts[str(event.get("event"))] += 1
        if self.sink is None or _LEVELS.get(method, logging.INFO) < self.level:
            raise structlog.DropEvent
        event["level"] = method
        return orjson.dumps(event, default=str).decode()


def _configure_logging(counts: collections.Counter[str], report_dir: Path | None,
                       verbose: bool) -> None:
    """Count the runtime's log events (INFO and up, or everything with -v) for the report; keep
    warnings (everything with -v) in ``<report>/runtime.log``. Nothing goes to the terminal."""
    import structlog

    sink: TextIO | None = None
    if report_dir is not None:
        report_dir.mkdir(parents=True, exist_ok=True)
        sink = (report_dir / "runtime.log").open("a", encoding="utf-8")
    structlog.configure(
        processors=[structlog.processors.TimeStamper(fmt="iso", utc=True),
                    _EventCounter(counts, sink, verbose)],
        wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG if verbose else logging.INFO),
        logger_factory=structlog.PrintLoggerFactory(sink or sys.stderr),
        cache_logger_on_first_use=False,
    )


def resolve_plugins(names: tuple[str, ...], plugin_dirs: list[Path]) -> list[Path]:
    """Paths as given; anything else is a plugin name looked up in the plugin folders."""
    from ..cli import find_manifests

    paths: list[Path] = []
    manifests = None
    for name in names:
        path = Path(name)
        if path.exists():
            paths.append(path)
            continue
        if manifests is None:
            manifests, _ = find_manifests(plugin_dirs)
        match = next((m for m in manifests if m.name == name), None)
        if match is None:
            searched = ", ".join(str(d) for d in plugin_dirs)
            raise SoakSetupError(f"{name!r} is neither a path nor a plugin in {searched}")
        paths.append(match.root)
    return paths


def main(settings: Mapping[str, Any], *, verbose: bool, plugins: tuple[str, ...],
         duration: float | None, calls: int | None, concurrency: int | None, rate: float | None,
         workers: int | None, mix_path: str | None, report_dir: str | None, as_json: bool,
         faults: bool, fault_rate: float | None, worker_faults_per_s: float | None,
         seed: int | None, watchdog: float, thresholds: tuple[str, ...]) -> int:
    """Run the soak the options describe; returns the exit code."""

    from ..errors import CortexError
    from .driver import run_soak

    try:
        limits = Thresholds()
        for item in thresholds:
            name, sep, value = item.partition("=")
            if not sep:
                raise SoakSetupError(f"--threshold needs NAME=VALUE, got {item!r}")
            limits.set(name.strip(), value.strip())
        overrides: dict[str, Any] = {}
        if fault_rate is not None:
            overrides["rate"] = fault_rate
        if worker_faults_per_s is not None:
            overrides["worker_faults_per_s"] = worker_faults_per_s
        config = SoakConfig(
            plugins=resolve_plugins(plugins, settings["plugin_dirs"]), duration_s=duration,
            calls=calls, concurrency=concurrency, rate=rate, workers=workers,
            mix_path=Path(mix_path) if mix_path else None,
            report_dir=Path(report_dir) if report_dir else None, seed=seed,
            faults=FaultSettings(enabled=faults), fault_overrides=overrides, thresholds=limits,
            call_watchdog_s=watchdog, cache_dir=settings.get("cache_dir"),
            require_confinement=bool(settings.get("require_confinement")),
        )
        config.validate()
    except SoakSetupError as exc:
        click.echo(f"error: usage: {exc}", err=True)
        return 2

    counts: collections.Counter[str] = collections.Counter()
    _configure_logging(counts, config.report_dir, verbose)
    progress: Any = None
    if not as_json:
        from rich.console import Console

        from .progress import PlainProgress, RichProgress

        console = Console(stderr=True)
        progress = RichProgress(console) if console.is_terminal else PlainProgress(sys.stderr)

    async def go() -> Any:
        return await run_soak(config, progress, log_events=counts, handle_sigint=True)

    try:
        result = eventloop.run(go)
    except SoakSetupError as exc:
        click.echo(f"error: usage: {exc}", err=True)
        return 2
    except CortexError as exc:
        from ..cli import exit_code_for

        click.echo(f"error: {exc.kind}: {str(exc).splitlines()[0] if str(exc) else exc.kind}", err=True)
        return exit_code_for(exc)
    except KeyboardInterrupt:
        return 130
    if as_json:
        click.echo(orjson.dumps(result.to_json(series=False), option=orjson.OPT_INDENT_2).decode())
    else:
        click.echo(human_summary(result.to_json(series=False)))
    return int(result.exit_code)


def human_summary(data: Mapping[str, Any]) -> str:
    acct = data["accounting"]
    lat = data["latency_ms"]
    faults = data["faults"]
    lines = [
        f"{'PASS' if data['passed'] else 'FAIL'}: {acct['issued']:,} calls in {data['elapsed_s']:.1f}s "
        f"({data['throughput']['calls_per_s']:,.0f}/s), {acct['results']:,} results, "
        f"{acct['typed_errors']:,} typed errors, {acct['cancelled']:,} cancelled, "
        f"{acct['lost']} lost",
        f"  latency of healthy calls: p50 {lat['p50']} ms, p90 {lat['p90']} ms, p99 {lat['p99']} ms, "
        f"max {lat['max']} ms",
        f"  faults: {faults['total']:,} injected ({faults['fraction_of_calls']:.1%}), "
        f"{faults['kills']} SIGKILLs; workers started: {data['runtime_stats'].get('started', 0)}",
        f"  expected errors: {dict(acct['expected_errors']) or 'none'}",
        f"  unexpected errors: {dict(acct['unexpected_errors']) or 'none'}",
    ]
    for check in data["checks"]:
        if check["skipped"]:
            lines.append(f"  [skip] {check['name']}: {check['detail']}")
            continue
        mark = "ok  " if check["passed"] else "FAIL"
        lines.append(f"  [{mark}] {check['name']}: {check['value']} (limit {check['limit']} "
                     f"{check['unit']})" + ("" if check["passed"] else f": {check['detail']}"))
    for warning in data["warnings"]:
        lines.append(f"  warning: {warning}")
    for kind, path in data["report_files"].items():
        lines.append(f"  report ({kind}): {path}")
    return "\n".join(lines)
