"""The benchmark suite (benchmarks/, docs/benchmarks.md) runs in quick mode and its numbers are sane.

A benchmark is not a test: nothing here looks at how fast anything is. It checks that the quick
run finishes, that every figure is a positive finite number, that the ratio columns are the
ratios of the value columns, and that the Markdown report has a row for every scenario.
"""

from __future__ import annotations

import importlib.util
import json
import math
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.report import COLUMNS, RATIOS, fmt, fmt_ratio  # noqa: E402

pytestmark = pytest.mark.slow

#: Every scenario's rows in quick mode (scaling goes up to 10 plugins there).
EXPECTED_ROWS = {
    "tiny_p50", "tiny_p99", "throughput_1", "throughput_8", "throughput_64", "large_transform",
    "parse_100k", "cold_fresh", "cold_warm", "restart_next", "restart_next_default",
    "scale_p50_1", "scale_p50_10", "scale_load_10", "scale_first_10", "rss_worker", "rss_worker_max",
    "rss_per_plugin", "scale_p50_1_miss", "scale_p50_10_bounded",
}
#: Rows where each of these backends must have a figure (D has nothing to load or restart).
NEEDS = {
    "tiny_p50": "ABD", "tiny_p99": "ABD", "throughput_1": "ABD", "throughput_8": "ABD",
    "throughput_64": "ABD", "large_transform": "ABD", "parse_100k": "ABD", "cold_fresh": "AB",
    "cold_warm": "AB", "restart_next": "AB", "restart_next_default": "AB", "scale_p50_1": "AB",
    "scale_p50_10": "AB", "scale_load_10": "AB", "scale_first_10": "AB", "rss_worker": "ABD",
    "rss_worker_max": "A", "rss_per_plugin": "AB", "scale_p50_1_miss": "AB",
    "scale_p50_10_bounded": "AB",
}
#: Rows where C (Extism, when it is installed) must have a figure too.
NEEDS_C = EXPECTED_ROWS - {"rss_worker_max", "scale_p50_1_miss", "scale_p50_10_bounded"}


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any], str]:
    out = tmp_path_factory.mktemp("bench")
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--out-dir", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=600, check=False,
    )
    assert proc.returncode == 0, f"quick benchmark run failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    results = json.loads((out / "benchmarks.json").read_text())
    return out, results, (out / "benchmarks.md").read_text()


def _rows(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["id"]: row for row in results["rows"]}


def test_quick_mode_has_every_scenario(quick_run: tuple[Path, dict[str, Any], str]) -> None:
    _, results, _ = quick_run
    assert results["meta"]["mode"] == "quick"
    rows = _rows(results)
    assert set(rows) >= EXPECTED_ROWS, f"missing rows: {EXPECTED_ROWS - set(rows)}"
    c_available = results["backends"]["C"]["available"]
    for row_id in EXPECTED_ROWS:
        needed = set(NEEDS[row_id]) | ({"C"} if c_available and row_id in NEEDS_C else set())
        missing = needed - set(rows[row_id]["values"])
        assert not missing, f"{row_id} has no figure for {missing}"
    if not c_available:
        assert results["backends"]["C"]["reason"], "C is missing without a reason"


def test_every_figure_is_positive_and_finite(quick_run: tuple[Path, dict[str, Any], str]) -> None:
    _, results, _ = quick_run
    for row in results["rows"]:
        assert row["unit"] and row["better"] in ("lower", "higher"), row["id"]
        for backend, value in row["values"].items():
            assert backend in COLUMNS, (row["id"], backend)
            assert isinstance(value, (int, float)) and math.isfinite(value) and value > 0, (
                f"{row['id']} / {backend}: {value!r}")
        for backend, samples in results["samples"][row["id"]].items():
            assert all(math.isfinite(x) and x > 0 for x in samples), (row["id"], backend)


def test_figures_are_the_medians_of_their_samples(quick_run: tuple[Path, dict[str, Any], str]) -> None:
    _, results, _ = quick_run
    for row in results["rows"]:
        for backend, value in row["values"].items():
            samples = sorted(results["samples"][row["id"]][backend])
            mid = len(samples) // 2
            median = samples[mid] if len(samples) % 2 else (samples[mid - 1] + samples[mid]) / 2
            assert value == pytest.approx(median, rel=1e-4, abs=1e-6), (row["id"], backend)


def test_p99_is_not_below_p50(quick_run: tuple[Path, dict[str, Any], str]) -> None:
    # a property of percentiles (each repetition's p99 >= its p50), not of speed
    _, results, _ = quick_run
    rows = _rows(results)
    for backend, p50 in rows["tiny_p50"]["values"].items():
        assert rows["tiny_p99"]["values"][backend] >= p50


def test_ratio_columns_are_consistent(quick_run: tuple[Path, dict[str, Any], str]) -> None:
    _, results, markdown = quick_run
    lines = markdown.splitlines()
    for row in results["rows"]:
        values, ratios = row["values"], row["ratios"]
        for ratio in RATIOS:
            num, den = ratio.split("/")
            if num in values and den in values:
                assert ratios[ratio] == pytest.approx(values[num] / values[den], rel=1e-9), (row["id"], ratio)
            else:
                assert ratio not in ratios, (row["id"], ratio)
        line = next(li for li in lines if li.startswith(f"| {row['label']} |"))
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert cells[2:2 + len(COLUMNS)] == [fmt(values.get(b)) for b in COLUMNS], row["id"]
        assert cells[2 + len(COLUMNS):] == [fmt_ratio(ratios.get(r)) for r in RATIOS], row["id"]


def test_markdown_has_every_row_targets_and_machine(quick_run: tuple[Path, dict[str, Any], str]) -> None:
    out, results, markdown = quick_run
    for row in results["rows"]:
        assert f"| {row['label']} |" in markdown, row["label"]
    assert results["targets"], "no targets evaluated"
    for target in results["targets"]:
        assert target["target"] in markdown
        assert target["pass"] in (True, False, None)
        if target["measured"] is not None and target["context"]:
            assert target["pass"] is None and math.isfinite(target["measured"])
        elif target["measured"] is not None:
            assert target["pass"] is not None and math.isfinite(target["measured"])
    machine = results["meta"]["machine"]
    for key in ("cpu", "cores", "python", "wasmtime_py"):
        assert machine[key], key
        assert str(machine[key]) in markdown
    assert "## Where the time goes in A" in markdown
    if importlib.util.find_spec("matplotlib") is not None:
        assert (out / "benchmarks.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert "![Benchmark chart](benchmarks.png)" in markdown


def test_cold_start_used_the_cache_as_intended(quick_run: tuple[Path, dict[str, Any], str]) -> None:
    # functional, not timing: the fresh-cache loads compiled, the warm-cache loads did not
    _, results, _ = quick_run
    cold = results["details"]["cold_start"]
    assert cold["A_cold"] and all(e["cache"] == "miss" for e in cold["A_cold"])
    assert cold["A_warm"] and all(e["cache"] == "hit" for e in cold["A_warm"])


def test_the_time_breakdown_has_every_layer(quick_run: tuple[Path, dict[str, Any], str]) -> None:
    # "Where the time goes" reaches into private internals; a layer it could not measure is
    # reported as "<name>_error" instead of failing the run, so the run alone does not show it.
    _, results, _ = quick_run
    profile = results["details"]["profile"]
    assert not {k: v for k, v in profile.items() if k.endswith("_error")}
    for layer in ("runtime_call_us", "worker_request_us", "worker_elapsed_us", "d_echo_us",
                  "executor_call_us", "executor_call_prepared_us", "b_call_us"):
        assert isinstance(profile[layer], (int, float)) and profile[layer] > 0, layer


def test_the_bounded_scaling_run_missed_its_bound(
        quick_run: tuple[Path, dict[str, Any], str]) -> None:
    """Workers keeping a tenth of the plugins, round-robin: calls must have unloaded some (or the
    row would not measure that bound's misses), and each worker held at most its bound."""
    _, results, _ = quick_run
    bounded = results["details"]["scaling"]["A_bounded"]
    assert bounded["max_resident_plugins"] == 1
    assert bounded["unloaded"] > 0
    assert bounded["p50_us"] > 0


def test_the_scaling_ends_are_medians_of_alternating_rounds(
        quick_run: tuple[Path, dict[str, Any], str]) -> None:
    """The target compares the top level with the miss path (A) and B's first level: each of those
    figures is the median of rounds measured side by side, not one run minutes from the other."""
    _, results, _ = quick_run
    rounds = results["meta"]["settings"]["scaling_rounds"]
    assert rounds >= 2
    scaling = results["details"]["scaling"]
    top = scaling["A"][-1]
    assert len(top["p50_us_rounds"]) == rounds and top["p50_us_sweep"] > 0
    assert len(scaling["A_miss_path_rounds"]) == rounds
    assert top["p50_us"] == pytest.approx(statistics.median(top["p50_us_rounds"]))
    assert scaling["A_miss_path_p50_us"] == pytest.approx(
        statistics.median(scaling["A_miss_path_rounds"]))
    rows = _rows(results)
    levels = results["meta"]["settings"]["scaling_levels"]
    assert rows[f"scale_p50_{levels[-1]}"]["values"]["A"] == pytest.approx(top["p50_us"])
    assert rows["scale_p50_1_miss"]["values"]["A"] == pytest.approx(scaling["A_miss_path_p50_us"])
    for index in (0, -1):
        level = scaling["B"]["levels"][index]
        assert len(level["p50_us_rounds"]) == rounds
        assert level["p50_us"] == pytest.approx(statistics.median(level["p50_us_rounds"]))
    assert rows[f"scale_p50_{levels[0]}"]["values"]["B"] == pytest.approx(
        scaling["B"]["levels"][0]["p50_us"])
    # The target's ratio pairs each round's two figures (taken one right after the other).
    target = {t["id"]: t for t in results["targets"]}["scaling_beyond_misses"]
    paired = [t / m for t, m in zip(top["p50_us_rounds"], scaling["A_miss_path_rounds"], strict=True)]
    assert target["measured"] == pytest.approx(statistics.median(paired))


def test_the_past_caches_target_pairs_its_rounds() -> None:
    """Past the caches' capacity, N=max is judged against calls over the first level above it,
    measured in the same rounds: the median of the rounds' own ratios, not the sweep's (whose
    two figures are minutes apart)."""
    from benchmarks.report import evaluate_targets

    level = {"plugins": 0, "p50_us": 0.0}
    scaling = {
        "A": [dict(level, plugins=1, p50_us=50.0), dict(level, plugins=100, p50_us=60.0),
              dict(level, plugins=1000, p50_us=66.0, p50_us_sweep=90.0,
                   p50_us_rounds=[70.0, 66.0, 64.0])],
        "A_miss_path_p50_us": 55.0, "A_miss_path_rounds": [56.0, 55.0, 50.0],
        "A_cache_capacity": 24,
        "A_past_caches_rounds": {"plugins": 100, "p50_us_rounds": [60.0, 60.0, 58.0]},
    }
    results: dict[str, Any] = {"rows": [], "details": {"scaling": scaling}}
    targets = {t["id"]: t for t in evaluate_targets(results)}
    assert targets["scaling_past_caches"]["measured"] == pytest.approx(
        statistics.median([70 / 60, 66 / 60, 64 / 58]))
    assert targets["scaling_beyond_misses"]["measured"] == pytest.approx(
        statistics.median([70 / 56, 66 / 55, 64 / 50]))
    # Without the rounds (results of an older run): the sweep's own figures.
    del scaling["A_past_caches_rounds"]
    targets = {t["id"]: t for t in evaluate_targets(results)}
    assert targets["scaling_past_caches"]["measured"] == pytest.approx(90 / 60)


def test_b_growth_is_an_allowance_never_a_penalty() -> None:
    """The row beyond B's growth takes B's growth off A's; when B measured faster over many
    modules than over one (noise: the same code runs), nothing is taken off, and nothing added."""
    from benchmarks.report import evaluate_targets

    def b_levels(first: list[float], last: list[float]) -> dict[str, Any]:
        return {"levels": [
            {"plugins": 1, "p50_us": statistics.median(first), "p50_us_rounds": first},
            {"plugins": 1000, "p50_us": statistics.median(last), "p50_us_rounds": last}]}

    scaling: dict[str, Any] = {
        "A": [{"plugins": 1, "p50_us": 50.0},
              {"plugins": 1000, "p50_us": 66.0, "p50_us_rounds": [66.0, 66.0, 66.0]}],
        "A_miss_path_p50_us": 55.0, "A_miss_path_rounds": [55.0, 55.0, 55.0],
    }
    results: dict[str, Any] = {"rows": [], "details": {"scaling": scaling}}
    scaling["B"] = b_levels([130.0, 140.0, 120.0], [141.0, 150.0, 131.0])  # +11 µs each round
    target = {t["id"]: t for t in evaluate_targets(results)}["scaling_beyond_wasmtime"]
    assert target["measured"] == pytest.approx(66 / 55 - 11 / 55)
    scaling["B"] = b_levels([130.0, 140.0, 120.0], [122.0, 132.0, 112.0])  # -8 µs each round
    targets = {t["id"]: t for t in evaluate_targets(results)}
    assert targets["scaling_beyond_wasmtime"]["measured"] == pytest.approx(66 / 55)
    assert targets["scaling_beyond_wasmtime"]["measured"] == pytest.approx(
        targets["scaling_beyond_misses"]["measured"])
    assert "nothing is taken off" in targets["scaling_beyond_wasmtime"]["note"]


def test_the_committed_report_is_what_the_report_makes_of_its_json() -> None:
    """docs/benchmarks.md is generated, never edited by hand: rendering the committed JSON with
    today's report code gives it back (a change to the report's wording regenerates it)."""
    from benchmarks.report import DOCS_DIR, RESULTS_DIR, evaluate_targets, markdown

    results = json.loads((RESULTS_DIR / "benchmarks.json").read_text())
    results["targets"] = evaluate_targets(results)
    assert markdown(results, chart_name="benchmarks.png") == (
        DOCS_DIR / "benchmarks.md").read_text()
