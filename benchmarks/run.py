"""Run the failwidgets benchmark suite: ``python -m benchmarks.run [--quick] [--only NAME ...]``.

Prints a table and writes JSON to ``benchmarks/results/`` (``<profile>-<time>.json`` and
``latest.json``). Profiles: ``--quick`` (small sizes, about 2 minutes), default full (the sizes named in
the issue, about 20 minutes on 2 shared cores), ``--toy`` (seconds-scale sizes, used by the smoke test).
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
import traceback
import warnings
from pathlib import Path

if __package__ in (None, ""):  # `python benchmarks/run.py`: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    __package__ = "benchmarks"

from benchmarks._common import Row, environment, format_table, write_json  # noqa: E402

# item name -> module (one module per item of the issue, in the order)
ITEMS = {
    "cache": "benchmarks.bench_cache",
    "gradients": "benchmarks.bench_gradients",
    "svm": "benchmarks.bench_svm",
    "barlow": "benchmarks.bench_barlow",
    "lavise": "benchmarks.bench_lavise",
    "relations": "benchmarks.bench_relations",
    "widgets": "benchmarks.bench_widgets",
    "scale": "benchmarks.bench_scale",
    "data": "benchmarks.bench_data",
    "map": "benchmarks.bench_map",
    "ray": "benchmarks.bench_ray",
    "scale1m": "benchmarks.bench_scale1m",
}


def run_suite(profile: str = "quick", only=None, device: str = "cpu", verbose: bool = True) -> tuple[list[Row], dict]:
    """Run the chosen items; an item that crashes gives a "not available" row with the error."""
    names = list(only) if only else list(ITEMS)
    unknown = [n for n in names if n not in ITEMS]
    if unknown:
        raise ValueError(f"only: expected names from {list(ITEMS)}, got {unknown}")
    env = environment()
    rows: list[Row] = []
    for name in names:
        start = time.perf_counter()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                item_rows = importlib.import_module(ITEMS[name]).run(profile, device)
        except Exception as exc:  # report, do not hide: the row says what broke
            if verbose:
                traceback.print_exc()
            item_rows = [
                Row(
                    name,
                    "(item crashed)",
                    "-",
                    "-",
                    device,
                    available=False,
                    note=f"not available: {type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}",
                )
            ]
        rows += item_rows
        env.setdefault("item_wall_s", {})[name] = round(time.perf_counter() - start, 1)
        if verbose:
            print(f"[{name}] {time.perf_counter() - start:.1f} s", file=sys.stderr, flush=True)
    env["loadavg_end_1_5_15"] = environment()["loadavg_1_5_15"]
    return rows, env


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--quick", action="store_true", help="small sizes (about 2 minutes)")
    group.add_argument("--toy", action="store_true", help="tiny sizes (code paths only, numbers meaningless)")
    parser.add_argument("--only", nargs="+", metavar="NAME", choices=list(ITEMS), help="run only these items")
    parser.add_argument("--out", type=Path, default=None, help="JSON path (default benchmarks/results/...)")
    args = parser.parse_args(argv)
    profile = "toy" if args.toy else "quick" if args.quick else "full"
    rows, env = run_suite(profile, args.only)
    print(format_table(rows, env))
    path = write_json(rows, env, profile, args.out)
    print(f"\nJSON: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
