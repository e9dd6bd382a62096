"""Live progress of a soak on the terminal (rich), or one plain line every few seconds when stderr
is not a terminal. ``--json`` uses neither."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from rich.console import Console, RenderableType
    from rich.live import Live

    from .driver import SoakResult


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def _num(value: Any, fmt: str = "{:,.0f}") -> str:
    return "-" if value is None else fmt.format(value)


def _counts(counts: Mapping[str, int], limit: int = 5) -> str:
    if not counts:
        return "none"
    items = sorted(counts.items(), key=lambda kv: -kv[1])
    text = ", ".join(f"{k} {v:,}" for k, v in items[:limit])
    return text + (f", +{len(items) - limit} more" if len(items) > limit else "")


class RichProgress:
    """A live panel: elapsed/remaining, calls/s, p50/p99, errors by type, restarts, worker RSS."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.live: Live | None = None
        self.plan: Mapping[str, Any] = {}

    def start(self, plan: Mapping[str, Any]) -> None:
        from rich.live import Live

        self.plan = plan
        self.live = Live(self._render(None), console=self.console, refresh_per_second=2,
                         transient=False, redirect_stdout=False, redirect_stderr=False)
        self.live.start()

    def update(self, snapshot: Mapping[str, Any]) -> None:
        if self.live is not None:
            self.live.update(self._render(snapshot))

    def stop(self, result: SoakResult | None) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None

    def _render(self, snap: Mapping[str, Any] | None) -> RenderableType:
        from rich.panel import Panel
        from rich.progress_bar import ProgressBar
        from rich.table import Table

        plugins = ", ".join(self.plan.get("plugins", []))
        title = f"cortex soak: {plugins}  (seed {self.plan.get('seed')})"
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold", no_wrap=True)
        grid.add_column()
        if snap is None:
            grid.add_row("status", "starting...")
            return Panel(grid, title=title, expand=False)
        row = snap["row"]
        stats = snap["stats"]
        bar = ProgressBar(total=1.0, completed=snap["fraction"], width=40)
        head = Table.grid(padding=(0, 2))
        head.add_row(bar, f"elapsed {_clock(snap['elapsed_s'])}  remaining {_clock(snap['remaining_s'])}"
                     + ("  [yellow]stopping[/]" if snap["stopping"] else ""))
        grid.add_row("calls", f"{snap['completed']:,} done, {snap['in_flight']} in flight, "
                              f"{_num(row['throughput'])} calls/s")
        grid.add_row("latency", f"p50 {_num(row['p50_ms'], '{:.2f}')} ms  p99 "
                                f"{_num(row['p99_ms'], '{:.2f}')} ms  (whole run: p50 "
                                f"{_num(snap['p50_ms'], '{:.2f}')}, p99 {_num(snap['p99_ms'], '{:.2f}')})")
        grid.add_row("expected errors", _counts(snap["expected_errors"]))
        bad = snap["unexpected_errors"]
        grid.add_row("unexpected", f"[red]{_counts(bad)}[/]" if bad else "none")
        problems = (snap["lost"], snap["wrong_results"], snap["untyped"])
        style = "red" if any(problems) else "green"
        grid.add_row("lost / wrong / untyped", f"[{style}]{problems[0]} / {problems[1]} / {problems[2]}[/]")
        grid.add_row("faults", f"{snap['faults_injected']:,} injected, {snap['kills']} SIGKILLs, "
                               f"{snap['cancelled']:,} cancelled")
        grid.add_row("workers", f"{_num(row['workers'])} live, {stats.get('started', 0)} started, "
                                f"{stats.get('killed', 0)} failed, RSS max "
                                f"{_num(row['worker_rss_max_mib'], '{:.1f}')} MiB / all "
                                f"{_num(row['worker_rss_sum_mib'], '{:.1f}')} MiB")
        grid.add_row("supervisor", f"RSS {_num(row['supervisor_rss_mib'], '{:.1f}')} MiB, "
                                   f"{_num(row['supervisor_fds'])} fds, {_num(row['children'])} children, "
                                   f"{_num(row['zombies'])} zombies")
        outer = Table.grid()
        outer.add_row(head)
        outer.add_row(grid)
        return Panel(outer, title=title, expand=False)


class PlainProgress:
    """One line every ``every`` seconds (for logs and CI, where a live panel would be noise)."""

    def __init__(self, stream: TextIO, every: float = 10.0) -> None:
        self.stream = stream
        self.every = every
        self._last = 0.0

    def start(self, plan: Mapping[str, Any]) -> None:
        target = (f"{plan['duration_s']:g}s" if plan.get("duration_s") is not None
                  else f"{plan.get('calls')} calls")
        print(f"cortex soak: {', '.join(plan.get('plugins', []))} for {target}, concurrency "
              f"{plan.get('concurrency')}, faults {'on' if plan.get('faults') else 'off'}, "
              f"seed {plan.get('seed')}", file=self.stream, flush=True)

    def update(self, snap: Mapping[str, Any]) -> None:
        now = time.monotonic()
        if now - self._last < self.every:
            return
        self._last = now
        row = snap["row"]
        print(f"[{_clock(snap['elapsed_s'])}] {snap['completed']:,} calls, {_num(row['throughput'])}/s, "
              f"p50 {_num(row['p50_ms'], '{:.2f}')} ms p99 {_num(row['p99_ms'], '{:.2f}')} ms, "
              f"expected errors {sum(snap['expected_errors'].values()):,}, unexpected "
              f"{sum(snap['unexpected_errors'].values())}, lost {snap['lost']}, restarts "
              f"{snap['stats'].get('started', 0)}, supervisor RSS "
              f"{_num(row['supervisor_rss_mib'], '{:.1f}')} MiB, fds {_num(row['supervisor_fds'])}",
              file=self.stream, flush=True)

    def stop(self, result: SoakResult | None) -> None:
        return None
