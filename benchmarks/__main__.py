"""``python -m benchmarks [--quick] [--only a,b] [--out-dir DIR] [--no-docs] [--skip-extism]``

Full mode (the default) rewrites docs/benchmarks.md, docs/benchmarks.png and
benchmarks/results/benchmarks.json. Quick mode (seconds, for CI) writes its report, chart and
JSON into benchmarks/results/quick/ (or --out-dir) and leaves docs/ alone unless --write-docs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .build import BuildError
from .suite import SCENARIOS, run_suite


def main(argv: list[str] | None = None, prog: str = "python -m benchmarks") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a short run (CI smoke test)")
    parser.add_argument("--only", default="", help=f"comma-separated scenarios: {', '.join(SCENARIOS)}")
    parser.add_argument("--out-dir", type=Path, help="also write benchmarks.{json,md,png} here")
    parser.add_argument("--write-docs", action="store_true", help="write docs/ even in quick mode")
    parser.add_argument("--no-docs", action="store_true", help="do not write docs/ in full mode")
    parser.add_argument("--skip-extism", action="store_true", help="leave out C (Extism)")
    args = parser.parse_args(argv)
    only = {s.strip() for s in args.only.split(",") if s.strip()} or None
    write_docs = (args.write_docs or not args.quick) and not args.no_docs
    out_dir = args.out_dir
    if out_dir is None and args.quick:
        out_dir = Path(__file__).resolve().parent / "results" / "quick"
    try:
        results = run_suite(quick=args.quick, out_dir=out_dir, write_docs=write_docs, only=only,
                            skip_extism=args.skip_extism)
    except BuildError as exc:
        print(exc, file=sys.stderr)
        return 2
    from .report import results_table, targets_table

    print(results_table(results))
    print()
    print(targets_table(results))
    if out_dir is not None:
        print(f"\nwrote {out_dir}/benchmarks.md, .png, .json")
    if write_docs:
        print("wrote docs/benchmarks.md, docs/benchmarks.png, benchmarks/results/benchmarks.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
