"""Points of a scale curve, run in a fresh process: ``python -m benchmarks.scale_child METHOD N [N ...]``.

For each N (ascending) prints one JSON line ``{"method", "n", "time_s", "peak_delta_mb", "maxrss_mb",
"memory"}``: ``peak_delta_mb`` is the ``tracemalloc`` peak of the work (numpy / Python allocations;
torch tensor storage is not traced), ``maxrss_mb`` the process's resident high-water mark
(``VmHWM``) after that N -- sizes ascend tenfold, so at the largest N it is that N's peak.
One process per method (not per size) because importing torch costs ~20 s on this loaded machine.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time

import numpy as np


def _current_rss_mb() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    import os

    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_rss_mb() -> float:
    """Resident high-water mark of this process (``VmHWM``). Not ``getrusage(...).ru_maxrss``: Linux keeps
    that across ``exec``, so a child started from a big parent reports the parent's peak."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _prepare(method: str, n: int):
    rng = np.random.default_rng(0)
    if method == "cache":
        from failwidgets.compute import EmbeddingCache

        emb = rng.standard_normal((n, 512), dtype=np.float32)
        tmp = tempfile.TemporaryDirectory()

        def work():
            cache = EmbeddingCache(tmp.name)
            key = cache.key({"n": n})
            cache.put(key, emb, {"n": n})
            return cache.get(key)

        return work
    if method == "directions":
        from failwidgets.methods.directions import FailureDirections

        from .bench_svm import synthetic_failures

        n_classes = 100 if n >= 1000 else 10  # 10 per class at the smallest real size (1k)
        emb, labels, preds, train = synthetic_failures(n_classes, max(n // n_classes, 6))
        train = train[: max(len(train) // 2, 2)]
        return lambda: FailureDirections(progress=False).fit(emb, labels, preds, train)
    if method == "barlow":
        from failwidgets.methods.barlow import BarlowTree

        from .bench_barlow import planted_group

        x, fail, _ = planted_group(n, 512)
        return lambda: BarlowTree(max_depth=3, k=20).fit(x, fail)
    if method == "lavise":
        import torch

        from .bench_lavise import _fitted

        lav, _ = _fitted(100, 32, 7, 2000)  # the explainer is trained once on 100 maps; explain() scales with N
        feats = torch.from_numpy(np.maximum(rng.standard_normal((n, 32, 7, 7), dtype=np.float32), 0))
        return lambda: lav.explain(features=feats, methods=("attention",))
    if method == "relations":
        from failwidgets.methods.relations import RelationMiner

        n_attr = 12
        acts = np.maximum(rng.standard_normal((n, 16, 4, 4), dtype=np.float32), 0)
        grads = rng.standard_normal((n, n_attr, 16, 4, 4), dtype=np.float32)
        attrs = (rng.random((n, n_attr)) < 0.4).astype(np.float32)
        attrs[0], attrs[1] = 1, 0
        return lambda: RelationMiner(progress=False, batch_size=256).fit(acts, grads, attrs)
    if method == "retrieval":
        from failwidgets.methods.directions import RetrievalDecoder

        bank = rng.standard_normal((n, 512), dtype=np.float32)
        q = rng.standard_normal((16, 512), dtype=np.float32)
        return lambda: RetrievalDecoder(bank, np.zeros((n, 1, 1, 3), np.uint8)).nearest(q, 4)
    raise SystemExit(f"method: expected one of {METHODS}, got {method!r}")


METHODS = ("cache", "directions", "barlow", "lavise", "relations", "retrieval")


def measure_in_process(method: str, n: int) -> dict:
    """The same point measured in this process: time and the ``tracemalloc`` peak of the work (numpy and
    Python allocations; torch tensors' storage is not traced, so torch-heavy methods read low)."""
    import tracemalloc

    work = _prepare(method, n)
    tracemalloc.start()
    try:
        start = time.perf_counter()
        work()
        elapsed = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()
    return {"method": method, "n": n, "time_s": elapsed, "peak_delta_mb": peak, "memory": "tracemalloc"}


def main(argv: list[str]) -> None:
    import gc
    import warnings

    warnings.simplefilter("ignore")
    method = argv[0]
    for n in map(int, argv[1:]):
        point = measure_in_process(method, n)
        point["maxrss_mb"] = _peak_rss_mb()
        point["rss_now_mb"] = _current_rss_mb()
        print(json.dumps(point), flush=True)
        gc.collect()


if __name__ == "__main__":
    main(sys.argv[1:])
