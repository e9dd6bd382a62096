"""In-process hosts (B and C) measured in a child process of their own: many loaded plugins and
their memory. A clean process makes RSS figures mean something (the suite's own process holds
every host at once) and keeps 1,000 Extism plugins out of the suite's address space.

    python -m benchmarks.probe --host wasmtime|extism --copies DIR --levels 1,10,100 --calls 500
                               [--rounds 7]

Prints one JSON object: for each level, load time per plugin, the first call of each newly
loaded plugin, the steady-state latency of calls spread round-robin over every loaded plugin,
and the process RSS. With ``--rounds``, the first and the last level's latencies are then measured
again in that many alternating rounds (over the first level's plugins, then over all of them) and
their medians replace the sweep's (kept as ``p50_us_sweep``): the suite compares those two ends.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import psutil

from .stats import median, percentile, us
from .workloads import TINY_INPUT


def _rss() -> int:
    gc.collect()
    return int(psutil.Process().memory_info().rss)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.probe")
    parser.add_argument("--host", choices=["wasmtime", "extism"], required=True)
    parser.add_argument("--copies", type=Path, required=True, help="folder of plugin copies")
    parser.add_argument("--levels", default="1,10")
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=0)
    args = parser.parse_args(argv)

    folders = sorted(p for p in args.copies.iterdir() if p.is_dir())
    levels = [int(x) for x in args.levels.split(",")]
    if levels[-1] > len(folders):
        raise SystemExit(f"{args.copies} holds {len(folders)} copies, fewer than {levels[-1]}")
    payload = orjson.dumps(TINY_INPUT)

    rss_start = _rss()
    if args.host == "wasmtime":
        from .wasmtime_host import WasmtimeHost

        host = WasmtimeHost()

        def load(folder: Path) -> Any:
            return host.load((folder / "cortex_bench.wasm").read_bytes())

        def call(plugin: Any) -> Any:
            return plugin.call("transform", payload)
    else:
        from .extism_host import ExtismPluginHost

        def load(folder: Path) -> Any:
            return ExtismPluginHost((folder / "extism_bench.wasm").read_bytes())

        def call(plugin: Any) -> Any:
            return plugin.call("transform", payload)

    def round_robin(plugins: list[Any], calls: int) -> list[float]:
        samples: list[float] = []
        for i in range(calls):
            plugin = plugins[i % len(plugins)]
            t0 = time.perf_counter()
            call(plugin)
            samples.append(time.perf_counter() - t0)
        return samples

    rss_engine = _rss()
    loaded: list[Any] = []
    out_levels: list[dict[str, Any]] = []
    for level in levels:
        load_times: list[float] = []
        first_calls: list[float] = []
        while len(loaded) < level:
            folder = folders[len(loaded)]
            t0 = time.perf_counter()
            plugin = load(folder)
            t1 = time.perf_counter()
            call(plugin)
            t2 = time.perf_counter()
            loaded.append(plugin)
            load_times.append(t1 - t0)
            first_calls.append(t2 - t1)
        round_robin(loaded, min(50, args.calls))  # warm-up
        samples = round_robin(loaded, args.calls)
        out_levels.append({
            "plugins": level,
            "load_ms_median": median(load_times) * 1e3 if load_times else None,
            "first_call_us_median": us(median(first_calls)) if first_calls else None,
            "p50_us": us(median(samples)),
            "p99_us": us(percentile(samples, 99)),
            "rss": _rss(),
        })
    if args.rounds and len(out_levels) > 1:
        first, top = out_levels[0], out_levels[-1]
        for level in (first, top):
            level["p50_us_sweep"], level["p50_us_rounds"] = level["p50_us"], []
        for turn in range(args.rounds):
            sides = [(loaded[:first["plugins"]], first), (loaded, top)]
            for plugins, level in sides[::-1] if turn % 2 else sides:
                level["p50_us_rounds"].append(us(median(round_robin(plugins, args.calls))))
        for level in (first, top):
            level["p50_us"] = median(level["p50_us_rounds"])
    print(orjson.dumps({
        "host": args.host, "pid": os.getpid(), "rss_start": rss_start, "rss_engine": rss_engine,
        "levels": out_levels,
    }).decode())
    sys.stdout.flush()
    os._exit(0)  # skip tearing down 1,000 plugins


if __name__ == "__main__":
    main()
