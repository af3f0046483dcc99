"""Item ``map``: the failure map's Python side at scale.

- hypothesis: ``test_hypothesis`` over N x 512 float32 embeddings (full: 1,000,000), one class of ten
  (100k images ranked) and one class holding every image (1M ranked). Baseline: the obvious way,
  normalising a copy of all rows, then ranking with ``np.argsort``. Target: < 500 ms.
- selection: 100k of 1M points selected (as the page reports it: the plot widget's selection trait)
  -> grid of 24 thumbnails and the 95% Wilson CIs + Fisher p computed. Target: < 300 ms (Python side;
  what the browser adds is not measured here).
- layout: ``layout_2d`` of 100k x 64 embeddings, first call (UMAP when installed, and PCA) and the cached
  second call.
"""

from __future__ import annotations

import tempfile
import time

import numpy as np

from ._common import Row, not_available, pick, timed

ITEM = "map"


class _RandomTextEncoder:
    """A text side returning a fixed random unit vector (the cost of the phrase embedding is not the point)."""

    def __init__(self, dim: int, seed: int = 0):
        v = np.random.default_rng(seed).standard_normal(dim).astype(np.float32)
        self.v = v / np.linalg.norm(v)

    def encode_texts(self, texts):
        return np.tile(self.v, (len(texts), 1))


def run(profile: str = "quick", device: str = "cpu") -> list[Row]:
    try:
        from failwidgets.methods.hypotheses import test_hypothesis  # noqa: F401
        from failwidgets.widgets.failure_map import FailureMap  # noqa: F401
    except ImportError as exc:
        return [not_available(ITEM, "hypothesis", "< 500 ms", "-", f"failure map missing ({exc})")]
    n = pick(profile, 5_000, 100_000, 1_000_000)
    rng = np.random.default_rng(0)
    emb = rng.standard_normal((n, 512), dtype=np.float32)
    rows = _hypothesis(profile, emb, rng)
    del emb
    rows.append(_selection(profile, n, rng))
    rows += _layout(profile, rng)
    return rows


def _hypothesis(profile, emb, rng) -> list[Row]:
    from failwidgets.methods.hypotheses import test_hypothesis

    n = emb.shape[0]
    enc = _RandomTextEncoder(512)
    out = []
    for n_classes in (10, 1):
        labels = rng.integers(0, n_classes, n)
        preds = np.where(rng.random(n) < 0.2, (labels + 1) % max(n_classes, 2), labels)
        repeats = pick(profile, 2, 3, 5)
        ours_s, res = timed(lambda: test_hypothesis("a phrase", enc, emb, labels, preds, 0, top_fraction=0.2), repeats)

        def naive():
            rows = np.flatnonzero(labels == 0)
            unit = emb / np.linalg.norm(emb, axis=1, keepdims=True)  # a normalised copy of every row
            sim = unit[rows] @ enc.v
            order = np.argsort(-sim)
            top = rows[order[: int(round(0.2 * rows.size))]]
            err = labels != preds
            return top, err[top].mean()

        base_s, (top, _) = timed(naive, pick(profile, 1, 2, 2))
        ranked = int(np.sum(labels == 0))
        row = Row(
            ITEM,
            f"hypothesis, {ranked} images ranked",
            "< 500 ms",
            f"{n} x 512 float32, {n_classes} class(es)",
            "cpu",
            "normalise all rows + argsort",
            "test_hypothesis",
            base_s,
            ours_s,
        ).finish()
        row.met = ours_s < 0.5
        overlap = len(np.intersect1d(top, res.slice_indices)) / max(len(top), 1)
        row.agreement = {"slice_overlap": round(overlap, 4)}
        row.extra = {"slice_size": int(len(res.slice_indices))}
        out.append(row)
        # what the map's text box does from the second phrase on: the norms are computed once
        from failwidgets.methods.hypotheses import embedding_norms

        norms = embedding_norms(emb)
        warm_s, res2 = timed(
            lambda: test_hypothesis("a phrase", enc, emb, labels, preds, 0, top_fraction=0.2, row_norms=norms), repeats
        )
        row2 = Row(
            ITEM,
            f"hypothesis, {ranked} images ranked, norms precomputed",
            "< 500 ms",
            f"{n} x 512 float32, {n_classes} class(es)",
            "cpu",
            "normalise all rows + argsort",
            "test_hypothesis(row_norms=...)",
            base_s,
            warm_s,
        ).finish()
        row2.met = warm_s < 0.5
        row2.agreement = {"slice_overlap": round(len(np.intersect1d(top, res2.slice_indices)) / max(len(top), 1), 4)}
        out.append(row2)
    return out


def _selection(profile, n, rng) -> Row:
    from failwidgets.widgets.failure_map import FailureMap, jscatter_available

    k = n // 10
    labels = rng.integers(0, 10, n)
    preds = np.where(rng.random(n) < 0.2, (labels + 1) % 10, labels)
    xy = rng.standard_normal((n, 2)).astype(np.float32)
    base = rng.integers(0, 256, (256, 64, 64, 3), np.uint8)

    def images(rows):  # a source: images are fetched for the rows shown only
        return base[np.asarray(rows) % 256]

    backend = "jscatter" if jscatter_available() else "bqplot"
    t0 = time.perf_counter()
    fmap = FailureMap(labels=labels, preds=preds, xy=xy, images=images, backend=backend, n_grid=24)
    build_s = time.perf_counter() - t0
    sels = [np.sort(rng.choice(n, k, replace=False)) for _ in range(pick(profile, 2, 3, 5))]
    times = []
    for sel in sels:
        t = time.perf_counter()
        if backend == "jscatter":
            fmap.scatter.widget.selection = sel  # what the page's lasso writes
        else:
            fmap.selection = sel.tolist()
        times.append(time.perf_counter() - t)
    ok = fmap.last_evidence is not None and fmap.last_evidence.n_inside == k and len(fmap.grid) == 24
    fmap.close()
    ours = float(np.median(times))
    row = Row(
        ITEM,
        "selection -> grid + CI (Python side)",
        "< 300 ms",
        f"{k} of {n} points, 24 thumbnails 64px",
        "cpu",
        "",
        f"FailureMap ({backend}) selection",
        None,
        ours,
    ).finish()
    row.met = ours < 0.3
    row.agreement = {"evidence_and_grid_filled": bool(ok)}
    row.extra = {"build_s": round(build_s, 3), "max_ms": round(1000 * max(times), 1)}
    return row


def _layout(profile, rng) -> list[Row]:
    from failwidgets.compute import EmbeddingCache
    from failwidgets.compute.layout import layout_2d, umap_available

    n = pick(profile, 2_000, 20_000, 100_000)
    centres = rng.standard_normal((20, 64)) * 4
    emb = (centres[rng.integers(0, 20, n)] + rng.standard_normal((n, 64))).astype(np.float32)
    out = []
    # UMAP's first call in a process compiles its numba kernels (over a minute here): not at toy size
    use_umap = umap_available() and profile != "toy"
    for method in (["umap"] if use_umap else []) + ["pca"]:
        with tempfile.TemporaryDirectory() as root:
            cache = EmbeddingCache(root)
            first_s, a = timed(lambda: layout_2d(emb, method=method, cache=cache))
            warm_s, b = timed(lambda: layout_2d(emb, method=method, cache=cache), pick(profile, 2, 3, 3))
        row = Row(
            ITEM,
            f"layout_2d ({method}), first vs cached",
            "report; cached thereafter",
            f"{n} x 64 float32",
            "cpu",
            "first call (compute + write)",
            "cached call (hash + read)",
            first_s,
            warm_s,
        ).finish()
        row.agreement = {"identical": bool(np.array_equal(a, b))}
        row.met = None
        out.append(row)
    if not umap_available() and profile != "toy":
        out.append(not_available(ITEM, "layout_2d (umap)", "report", f"{n} x 64", "umap-learn not installed"))
    return out
