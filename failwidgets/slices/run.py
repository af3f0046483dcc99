"""Run the slice-discovery benchmark: ``python -m failwidgets.slices.run --profile small|full``.

``small``: 21 settings on the world (7 per kind) and 4 on Fashion-MNIST; ``full``: 210 on the world (the
small ones first, so its cache is reused) and 40 on Fashion-MNIST; ``toy``: 2 tiny world settings (the test
suite's smoke run). Fashion-MNIST settings need Debian's ``dataset-fashion-mnist``; without it they are
skipped with a message. Prints the tables and writes a JSON file with every setting, every (setting, method)
result and the summaries.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from typing import Iterable, Sequence

import numpy as np
from tqdm.auto import tqdm

from failwidgets._io import atomic_write
from failwidgets._validation import check_choice
from failwidgets.compute import EmbeddingCache
from failwidgets.slices.interface import MAX_SLICES, check_memberships
from failwidgets.slices.methods import default_methods
from failwidgets.slices.metrics import FOUND_THRESHOLD, best_slice, summarize
from failwidgets.slices.settings import KINDS, Setting, SettingSpec, build_setting, draw_settings

__all__ = ["PROFILES", "profile_specs", "evaluate", "run_benchmark", "format_tables", "losses_to_baselines", "main"]

#: profile -> (world settings, SettingSpec size overrides, share range, Fashion-MNIST settings)
PROFILES = {
    "toy": (2, {"n_train_per_class": 120, "epochs": 2, "n_val": 120, "min_test_slice": 10}, (0.1, 0.25), 0),
    "small": (21, {}, (0.02, 0.25), 4),
    "full": (210, {}, (0.02, 0.25), 40),
}
#: the names of the methods that are baselines (not failwidgets' own)
BASELINES = ("random", "low confidence", "high loss", "domino")


def profile_specs(profile: str, seed: int = 0, *, fashion: bool = False) -> list:
    """The world settings of a profile (``draw_settings`` with its count and sizes); with ``fashion=True``
    its Fashion-MNIST settings instead (``draw_fashion_settings``; possibly empty)."""
    check_choice(profile, "profile", list(PROFILES))
    n, sizes, shares, n_fashion = PROFILES[profile]
    if fashion:
        from failwidgets.slices.fashion import draw_fashion_settings

        return draw_fashion_settings(n_fashion, seed, share_range=shares, **sizes) if n_fashion else []
    kinds = ("rare", "noisy") if profile == "toy" else KINDS
    return draw_settings(n, seed, kinds=kinds, share_range=shares, **sizes)


def evaluate(settings: Iterable, methods: Sequence, *, cache: EmbeddingCache | None = None, progress: bool = True):
    """Fit every method on each setting's validation data and score its test data.

    Parameters
    ----------
    settings : iterable of Setting, SettingSpec or FashionSpec (specs are built with ``cache``)
    methods : sequence of SliceMethod
    cache : EmbeddingCache, optional

    Returns
    -------
    (rows, built) : list of dict (one per setting and method: ``setting, kind, method, slice,
    precision_at_10, precision_at_25, n_slices, seconds``) and the list of built :class:`Setting`.
    """
    rows, built = [], []
    settings = list(settings)
    for i, s in enumerate(tqdm(settings, desc="slice settings", disable=not progress)):
        if isinstance(s, SettingSpec):
            s = build_setting(s, cache=cache)
        elif type(s).__name__ == "FashionSpec":
            from failwidgets.slices.fashion import build_fashion_setting

            s = build_fashion_setting(s, cache=cache)
        if not isinstance(s, Setting):
            raise TypeError(f"settings[{i}]: expected a Setting or SettingSpec, got {type(s).__name__}")
        built.append(s)
        for m in methods:
            t0 = time.perf_counter()
            scores = m.fit(s.val).score(s.test)
            seconds = time.perf_counter() - t0
            mem = check_memberships(scores, len(s.test), name=f"{m.name}: scores", max_slices=MAX_SLICES)
            rows.append(
                {
                    "setting": i,
                    "kind": s.kind,
                    "dataset": "world" if isinstance(s.spec, SettingSpec) else "fashion-mnist",
                    "method": m.name,
                    "n_slices": int(mem.shape[1]),
                    "seconds": seconds,
                    **best_slice(s.test_truth, mem),
                }
            )
    return rows, built


def _machine() -> dict:
    import torch

    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "cuda": torch.cuda.is_available(),
    }


def run_benchmark(
    profile: str = "small",
    *,
    seed: int = 0,
    cache: EmbeddingCache | None = None,
    methods: Sequence | None = None,
    limit: int | None = None,
    progress: bool = True,
) -> dict:
    """Build the profile's settings, score the methods, summarise.

    Parameters
    ----------
    profile : {"toy", "small", "full"}
    seed : int
    cache : EmbeddingCache, optional
    methods : sequence of SliceMethod, optional (default :func:`default_methods`)
    limit : int, optional
        Only the first ``limit`` world settings of the profile (and no Fashion-MNIST ones).

    Returns
    -------
    dict with ``profile, seed, machine, load_start, load_end, seconds, settings`` (spec, description and
    build info of each), ``rows`` and ``summary`` (:func:`~failwidgets.slices.metrics.summarize`).
    """
    cache = EmbeddingCache() if cache is None else cache
    methods = default_methods(seed) if methods is None else list(methods)
    specs = profile_specs(profile, seed)
    fashion, skipped = [], None
    if limit is not None:
        specs = specs[:limit]
    else:
        from failwidgets.slices.fashion import fashion_mnist_available, skip_message

        fashion = profile_specs(profile, seed, fashion=True)
        if fashion and not fashion_mnist_available():
            skipped, fashion = skip_message(), []
            if progress:
                print(skipped, file=sys.stderr)
    specs = list(specs) + list(fashion)
    load_start = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    t0, c0 = time.perf_counter(), time.process_time()
    rows, built = evaluate(specs, methods, cache=cache, progress=progress)
    return {
        "profile": profile,
        "seed": seed,
        "machine": _machine(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - (time.perf_counter() - t0))),
        "load_start": load_start,
        "load_end": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "seconds": time.perf_counter() - t0,
        "cpu_seconds": time.process_time() - c0,
        "found_threshold": FOUND_THRESHOLD,
        "settings": [
            {
                "index": i,
                "fingerprint": s.spec.fingerprint,
                "description": s.spec.describe(),
                "spec": s.spec.to_dict(),
                "info": s.info,
            }
            for i, s in enumerate(built)
        ],
        "rows": rows,
        "summary": summarize([r for r in rows if r["dataset"] == "world"]),
        "fashion_summary": summarize([r for r in rows if r["dataset"] == "fashion-mnist"]),
        "fashion_skipped": skipped,
    }


def format_tables(result: dict, key: str = "summary") -> str:
    """Markdown: share found (P@10 >= 0.8) and mean P@10 / P@25 per kind, seconds per setting.

    ``key``: ``"summary"`` (the world's settings) or ``"fashion_summary"``.
    """
    summary = result[key]
    if not summary:
        return result.get("fashion_skipped") or "no settings"
    groups = [g for g in dict.fromkeys(e["group"] for e in summary) if g != "all"] + ["all"]
    methods = list(dict.fromkeys(e["method"] for e in summary))
    cell = {(e["method"], e["group"]): e for e in summary}
    head = "| method | " + " | ".join(f"{g}: found / P@10 / P@25" for g in groups) + " | s per setting |"
    lines = [head, "|" + "---|" * (len(groups) + 2)]
    for m in methods:
        parts = []
        for g in groups:
            e = cell.get((m, g))
            parts.append(
                "-"
                if e is None
                else f"{e['n_found']}/{e['n']} ({e['found']:.0%}) / {e['mean_precision_at_10']:.2f} / "
                f"{e['mean_precision_at_25']:.2f}"
            )
        lines.append(f"| {m} | " + " | ".join(parts) + f" | {cell[(m, 'all')]['mean_seconds']:.2f} |")
    dataset = "world" if key == "summary" else "fashion-mnist"
    info = [s["info"] for s in result["settings"] if s["spec"].get("dataset", "world") == dataset]
    build = np.array([i["build_seconds"] for i in info])
    cached = sum(bool(i["cached"]) for i in info)
    gap = np.array([i["test_slice_error_rate"] - i["test_rest_error_rate"] for i in info])
    lines.append("")
    cpu = result.get("cpu_seconds", float("nan"))
    lines.append(
        f"{len(info)} settings, built in {build.sum():.0f} s ({np.mean(build):.1f} s each; {cached} from the "
        f"cache); whole run {result['seconds']:.0f} s wall, {cpu:.0f} s CPU of this process. Model error "
        f"rate on the test slice minus the rest of the class: median {np.median(gap):+.2f} (slice worse in "
        f"{int(np.sum(gap > 0))}/{len(gap)})."
    )
    return "\n".join(lines)


def losses_to_baselines(result: dict, baselines: Sequence[str] = BASELINES, key: str = "summary") -> list[str]:
    """Sentences naming every (kind, failwidgets method) whose share found is below a baseline's."""
    summary = result[key]
    cell = {(e["method"], e["group"]): e for e in summary}
    groups = list(dict.fromkeys(e["group"] for e in summary))

    def is_baseline(m):
        return any(m == b or m.startswith(b + " (") for b in baselines)

    ours = [m for m in dict.fromkeys(e["method"] for e in summary) if not is_baseline(m)]
    out = []
    for g in groups:
        base = [e for (m, gg), e in cell.items() if gg == g and is_baseline(m)]
        if not base:
            continue
        best = max(base, key=lambda e: (e["found"], e["mean_precision_at_10"]))
        for m in ours:
            e = cell.get((m, g))
            if e is not None and e["found"] < best["found"]:
                out.append(
                    f"{g}: {m} found {e['n_found']}/{e['n']}, fewer than the baseline {best['method']} "
                    f"({best['n_found']}/{best['n']})"
                )
    return out


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=list(PROFILES), default="small")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, default=None, help="only the first N settings of the profile")
    parser.add_argument("--cache", default=None, help="cache directory (default: FAILWIDGETS_CACHE or the user cache)")
    parser.add_argument("--out", default=None, help="JSON output (default benchmarks/results/slices-<profile>.json)")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    result = run_benchmark(
        args.profile,
        seed=args.seed,
        cache=EmbeddingCache(args.cache) if args.cache else None,
        limit=args.limit,
        progress=not args.no_progress,
    )
    out = args.out or os.path.join("benchmarks", "results", f"slices-{args.profile}.json")
    atomic_write(out, json.dumps(result, indent=1))
    load = result["load_start"], result["load_end"]
    print(
        f"slice benchmark, profile {args.profile}, {result['started']}, load average {load[0]} -> {load[1]} on "
        f"{result['machine']['cpus']} CPUs, torch {result['machine']['torch']} "
        f"({result['machine']['torch_threads']} threads)"
    )
    print(format_tables(result))
    for line in losses_to_baselines(result):
        print("- " + line)
    print()
    print("Fashion-MNIST:")
    print(format_tables(result, "fashion_summary"))
    if result["fashion_summary"]:
        for line in losses_to_baselines(result, key="fashion_summary"):
            print("- " + line)
    print(f"wrote {out}", file=sys.stderr)
    return result


if __name__ == "__main__":
    main()
