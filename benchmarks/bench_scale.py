"""Item 8: scale curves -- each method's time and peak memory at 1k, 10k and 100k images.

Memory is the ``tracemalloc`` peak of the work (numpy allocations; torch tensor storage is not traced).
In the full profile each method runs in a fresh process (``benchmarks.scale_child``, sizes ascending),
which also reports the resident high-water mark (``getrusage`` maxrss) after each size; in the quick
and toy profiles the points run in this process, because a fresh one costs ~20 s of imports here. Inputs are
synthetic (512-d embeddings / features, 32 x 7 x 7 LaViSE maps, 12 attributes x 256 units of relation
gradients). Methods: cache put+get (N x 512), failure directions (100 classes, N/100 per class),
Barlow MI + depth-3 tree on one group of N x 512, LaViSE explain (attention) over N images' maps,
relation mining ``fit`` from precomputed gradients, retrieval for 16 queries over an N x 512 bank.
Per-image CNN gradients are not in the curves (linear by construction, and 100k images of CPU backward
passes would take most of an hour here; item 2 gives their throughput).

Target: growth linear or better, i.e. time exponent ``log10(t(10N) / t(N)) <= 1.15`` per decade
between the two largest sizes (the smallest point is dominated by fixed costs); the same is reported
for peak memory growth.
"""

from __future__ import annotations

import math

from ._common import Row, pick, run_child

ITEM = "scale"


def run(profile: str = "quick", device: str = "cpu", methods=None, subprocess: bool | None = None) -> list[Row]:
    from .scale_child import METHODS, measure_in_process

    sizes = pick(profile, [100, 1000], [500, 5000], [1000, 10_000, 100_000])
    subprocess = profile == "full" if subprocess is None else subprocess
    rows = []
    for method in methods or METHODS:
        try:
            if subprocess:
                points = run_child("benchmarks.scale_child", [method, *map(str, sizes)])
            else:
                points = [measure_in_process(method, n) for n in sizes]
        except Exception as exc:  # a failed point is reported, not hidden
            rows.append(
                Row(
                    ITEM,
                    method,
                    "linear or better",
                    "/".join(map(str, sizes)),
                    "cpu",
                    available=False,
                    note=f"not available: {str(exc).splitlines()[0][:200]}",
                )
            )
            continue
        t = [p["time_s"] for p in points]
        mem = [p["peak_delta_mb"] for p in points]
        exp_t = math.log10(max(t[-1], 1e-9) / max(t[-2], 1e-9)) / math.log10(sizes[-1] / sizes[-2])
        exp_m = math.log10(max(mem[-1], 1.0) / max(mem[-2], 1.0)) / math.log10(sizes[-1] / sizes[-2])
        row = Row(
            ITEM,
            method,
            "time exponent <= 1.15 (linear or better)",
            "N = " + " / ".join(f"{n:,}" for n in sizes),
            "cpu",
        )
        row.extra = {
            "time_s": [float(f"{x:.6g}") for x in t],
            "peak_MiB": [round(x, 1) for x in mem],
            "memory": points[0]["memory"],
            "time_exponent": round(exp_t, 2),
            "memory_exponent": round(exp_m, 2),
        }
        if subprocess:
            row.extra["maxrss_MiB"] = [round(p["maxrss_mb"], 1) for p in points]
        row.ours, row.ours_s = f"at N={sizes[-1]:,}", t[-1]  # no baseline side: the curve is the result
        row.met = exp_t <= 1.15
        rows.append(row)
    return rows
