"""``report.json`` (the summary, every check and every time series) and ``report.html`` (the same
with charts rendered by matplotlib, embedded as base64 PNGs so the page is one self-contained file).
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from .driver import SoakResult

CHART_SIZE = (10.0, 3.4)
COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
          "#7f7f7f", "#bcbd22", "#17becf"]


def write_report(result: SoakResult, directory: Path) -> dict[str, Path]:
    """Write ``report.json`` and ``report.html`` into ``directory``; return their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    json_path = directory / "report.json"
    html_path = directory / "report.html"
    files = {"json": json_path, "html": html_path}
    result.report_files = files
    data = result.to_json(series=True)
    json_path.write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY))
    html_path.write_text(render_html(data, charts(data["series"])), encoding="utf-8")
    return files


# -- charts ---------------------------------------------------------------------------------------


def charts(series: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """(id, title, base64 PNG) of every chart."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    t = [float(v) for v in series["t"]]
    out: list[tuple[str, str, str]] = []

    def render(chart_id: str, title: str, draw: Any, ylabel: str) -> None:
        figure = Figure(figsize=CHART_SIZE, dpi=100)
        FigureCanvasAgg(figure)
        axes = figure.add_subplot(1, 1, 1)
        draw(axes)
        axes.set_title(title, fontsize=11, loc="left")
        axes.set_xlabel("elapsed (s)")
        axes.set_ylabel(ylabel)
        axes.grid(True, alpha=0.3)
        if axes.get_legend_handles_labels()[0]:
            axes.legend(loc="upper left", fontsize=8, ncols=4, framealpha=0.8)
        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
        out.append((chart_id, title, base64.b64encode(buffer.getvalue()).decode("ascii")))

    def line(axes: Axes, name: str, label: str, color: str, **kw: Any) -> None:
        xs, ys = _points(t, series[name])
        if xs:
            axes.plot(xs, ys, label=label, color=color, linewidth=1.4, **kw)

    def latency(axes: Axes) -> None:
        for name, label, color in (("p50_ms", "p50", COLORS[0]), ("p90_ms", "p90", COLORS[2]),
                                   ("p99_ms", "p99", COLORS[1]), ("max_ms", "max", COLORS[7])):
            line(axes, name, label, color)
        values = [v for v in series["max_ms"] if v]
        if values and max(values) / max(min(values), 1e-3) > 50:
            axes.set_yscale("log")

    def throughput(axes: Axes) -> None:
        line(axes, "throughput", "calls completed/s", COLORS[0])
        line(axes, "faults", "fault calls/s", COLORS[3])

    def memory(axes: Axes) -> None:
        line(axes, "supervisor_rss_mib", "supervisor RSS", COLORS[0])
        line(axes, "supervisor_rss_untrimmed_mib", "supervisor RSS before malloc_trim", COLORS[0],
             linestyle=":", alpha=0.6)
        line(axes, "worker_rss_max_mib", "largest worker RSS", COLORS[1])
        line(axes, "worker_rss_sum_mib", "all workers RSS", COLORS[2], linestyle="--")

    def descriptors(axes: Axes) -> None:
        line(axes, "supervisor_fds", "supervisor open fds", COLORS[0])
        line(axes, "children", "live child processes", COLORS[2])
        line(axes, "zombies", "zombies", COLORS[3])
        line(axes, "workers", "live workers", COLORS[4], linestyle=":")

    def errors(axes: Axes) -> None:
        by_outcome: Mapping[str, Sequence[int]] = series.get("errors_by_outcome", {})
        bottom = [0.0] * len(t)
        for index, (name, counts) in enumerate(sorted(by_outcome.items())):
            values = [float(c) for c in counts[:len(t)]]
            axes.bar(t[:len(values)], values, bottom=bottom[:len(values)], width=0.9,
                     label=name, color=COLORS[index % len(COLORS)], alpha=0.85)
            bottom = [b + v for b, v in zip(bottom, values + [0.0] * (len(t) - len(values)),
                                            strict=True)]
        xs, ys = _points(t, series["errors_unexpected"])
        if any(ys):
            axes.plot(xs, ys, label="UNEXPECTED", color="black", linewidth=2.0)

    def restarts(axes: Axes) -> None:
        xs, ys = _points(t, series["restarts"])
        axes.bar(xs, ys, width=0.9, label="workers started", color=COLORS[4], alpha=0.8)
        line(axes, "kills_injected", "SIGKILLs injected", COLORS[3])
        line(axes, "workers_killed", "workers retired as failed", COLORS[1], linestyle="--")

    render("latency", "Latency of healthy calls (per second)", latency, "ms")
    render("throughput", "Throughput", throughput, "calls/s")
    render("memory", "Memory (RSS)", memory, "MiB")
    render("fds", "File descriptors and processes", descriptors, "count")
    render("errors", "Errors by type (per second)", errors, "calls")
    render("restarts", "Worker restarts and injected kills (per second)", restarts, "count")
    return out


def _points(t: Sequence[float], values: Sequence[Any]) -> tuple[list[float], list[float]]:
    xs: list[float] = []
    ys: list[float] = []
    for x, y in zip(t, values, strict=False):
        if y is not None:
            xs.append(x)
            ys.append(float(y))
    return xs, ys


# -- HTML -----------------------------------------------------------------------------------------

_CSS = """
body { font-family: system-ui, -apple-system, Segoe UI, sans-serif; margin: 24px; color: #222;
       max-width: 1100px; }
h1 { margin-bottom: 4px; } h2 { margin-top: 28px; border-bottom: 1px solid #ddd; }
.verdict { display: inline-block; padding: 6px 16px; border-radius: 6px; font-weight: bold;
           font-size: 20px; color: white; }
.pass { background: #2e7d32; } .fail { background: #c62828; }
.cards { display: flex; flex-wrap: wrap; gap: 12px; margin: 16px 0; }
.card { border: 1px solid #ddd; border-radius: 6px; padding: 8px 14px; min-width: 130px; }
.card b { display: block; font-size: 20px; }
table { border-collapse: collapse; margin: 8px 0; font-size: 14px; }
td, th { border: 1px solid #ddd; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f4f4f4; }
tr.bad td { background: #fdecea; } tr.skip td { color: #888; }
img.chart { display: block; width: 100%; max-width: 1000px; margin: 10px 0 18px; }
code, pre { background: #f6f6f6; font-size: 12px; } pre { padding: 8px; overflow-x: auto; }
"""


def _e(value: Any) -> str:
    return html.escape(str(value))


def _table(rows: Sequence[Sequence[Any]], header: Sequence[str],
           classes: Sequence[str] | None = None) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = []
    for index, row in enumerate(rows):
        cls = f' class="{classes[index]}"' if classes and classes[index] else ""
        body.append(f"<tr{cls}>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def render_html(data: Mapping[str, Any], images: Sequence[tuple[str, str, str]]) -> str:
    passed = bool(data["passed"])
    acct = data["accounting"]
    lat = data["latency_ms"]
    faults = data["faults"]
    plugins = ", ".join(f"{p['name']} {p['version']}" for p in data["plugins"])
    cards = [
        ("calls issued", f"{acct['issued']:,}"), ("results", f"{acct['results']:,}"),
        ("typed errors", f"{acct['typed_errors']:,}"), ("lost", acct["lost"]),
        ("unexpected errors", sum(acct["unexpected_errors"].values())),
        ("calls/s", data["throughput"]["calls_per_s"]),
        ("p50 / p99 ms", f"{lat['p50']} / {lat['p99']}"),
        ("faults injected", f"{faults['total']:,} ({faults['fraction_of_calls']:.1%})"),
        ("SIGKILLs", faults["kills"]), ("workers started", data["runtime_stats"].get("started", 0)),
    ]
    parts = [
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">",
        f"<title>cortex soak: {'PASS' if passed else 'FAIL'}: {_e(plugins)}</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>cortex soak report</h1>",
        f"<p>{_e(plugins)} &middot; started {_e(data['started_at'])} &middot; "
        f"{_e(data['elapsed_s'])} s &middot; seed {_e(data['seed'])}</p>",
        f"<div class=\"verdict {'pass' if passed else 'fail'}\" id=\"verdict\">"
        f"{'PASS' if passed else 'FAIL'}</div>",
        "<div class=\"cards\">" + "".join(f"<div class=\"card\">{_e(k)}<b>{_e(v)}</b></div>"
                                          for k, v in cards) + "</div>",
    ]
    if data["failures"]:
        parts.append("<h2>Why it failed</h2><ul>"
                     + "".join(f"<li>{_e(f)}</li>" for f in data["failures"]) + "</ul>")
    if data["warnings"]:
        parts.append("<h2>Warnings</h2><ul>"
                     + "".join(f"<li>{_e(w)}</li>" for w in data["warnings"]) + "</ul>")
    checks = data["checks"]
    parts.append("<h2>Checks</h2>")
    parts.append(_table(
        [("skipped" if c["skipped"] else "pass" if c["passed"] else "FAIL", c["name"], c["value"],
          c["limit"], c["unit"], c["detail"]) for c in checks],
        ("", "check", "value", "limit", "unit", "what"),
        ["skip" if c["skipped"] else "" if c["passed"] else "bad" for c in checks]))
    parts.append("<h2>Charts</h2>")
    for chart_id, title, png in images:
        parts.append(f"<img class=\"chart\" id=\"chart-{_e(chart_id)}\" alt=\"{_e(title)}\" "
                     f"src=\"data:image/png;base64,{png}\">")
    parts.append("<h2>Outcomes</h2>")
    healthy = acct["healthy_outcomes"]
    parts.append("<p>Healthy calls (no injected fault):</p>")
    parts.append(_table(sorted(healthy.items()), ("outcome", "calls")))
    parts.append("<p>Calls carrying an injected fault:</p>")
    fault_rows = [(kind, outcome, n) for kind, counts in acct["fault_outcomes"].items()
                  for outcome, n in sorted(counts.items())]
    parts.append(_table(fault_rows, ("fault", "outcome", "calls")))
    parts.append(_table([(k, v) for k, v in acct.items() if not isinstance(v, dict)],
                        ("accounting", "value")))
    examples = data.get("examples") or {}
    if examples:
        parts.append("<h2>Examples of problems</h2>")
        for kind, items in examples.items():
            parts.append(f"<h3>{_e(kind)}</h3>")
            parts.append(_table([(i["id"], i["plugin"], i["capability"], i["fault"], i["outcome"],
                                  i["latency_ms"], i["problem"]) for i in items],
                                ("call", "plugin", "capability", "fault", "outcome", "ms", "problem")))
    parts.append("<h2>Mix</h2>")
    parts.append(_table([(m["plugin"], m["capability"], m["case"], f"{m['share']:.2%}", m["expect"])
                         for m in data["mix"]], ("plugin", "capability", "case", "share", "expect")))
    parts.append("<h2>Resources</h2>")
    parts.append(_table([(k, v["first"], v["last"], v["min"], v["max"])
                         for k, v in data["resources"].items()],
                        ("series", "first", "last", "min", "max")))
    parts.append(_table(sorted(data["runtime_stats"].items()), ("Runtime.stats", "count")))
    if data.get("log_events"):
        parts.append(_table(sorted(data["log_events"].items()), ("runtime log event", "count")))
    parts.append("<h2>Configuration</h2>")
    parts.append(f"<pre>{_e(orjson.dumps(data['config'], option=orjson.OPT_INDENT_2).decode())}</pre>")
    parts.append("<p>Every time series is in <code>report.json</code> (key <code>series</code>).</p>")
    parts.append("</body></html>")
    return "\n".join(parts)
