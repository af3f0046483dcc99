"""Widgets whose user strings are hostile markup, for the injection tests (browser and snapshot).

Attribute names, a relation level, class names and captions carry payloads that would set
``window.__fwPwned`` if the browser ever made elements of them. Built from the same small planted data
as ``tests/browser/_builders.py`` (seconds, no training).
"""

from __future__ import annotations

import numpy as np

__all__ = ["PAYLOADS", "LEVEL", "build_hostile"]

PAYLOADS = [
    '<img src=x onerror="window.__fwPwned=1">',
    '"><script>window.__fwPwned=2</script>',
    '<svg onload="window.__fwPwned=3"></svg>',
]
LEVEL = '<b onmouseover="window.__fwPwned=4">zero</b>'


def build_hostile():
    """A VBox (CSS class ``fw-test-hostile``) with a RelationshipAnnotator, DirectionSlider and TreeBrowser."""
    import ipywidgets as W

    from failwidgets.methods.directions import FailureDirections, RetrievalDecoder
    from failwidgets.methods.relations import RelationGraph, RelationMiner
    from failwidgets.widgets import DirectionSlider, RelationshipAnnotator, TreeBrowser

    rng = np.random.default_rng(0)
    # relations: six attributes, three of them named with payloads, a payload level
    m, units, n_attr = 120, 48, 6
    acts = rng.uniform(0.5, 1.5, size=(m, units)).reshape(m, 2, 4, 6)
    grads = 0.02 * rng.standard_normal((m, n_attr, units))
    for k in range(n_attr):
        grads[:, k, 8 * k : 8 * k + 8] += rng.uniform(0.5, 1.5, size=(m, 8))
    grads = grads.reshape(m, n_attr, 2, 4, 6)
    attrs = (rng.random((m, n_attr)) < 0.5).astype(np.float32)
    names = PAYLOADS + ["c", "d", "e"]
    miner = RelationMiner(progress=False, max_units=32).fit(acts, grads, attrs, names)
    graph = RelationGraph(
        names, levels=[LEVEL, "probably negative", "not related", "probably positive", "definitely positive"]
    )
    graph.set(0, 1, LEVEL)
    graph.set(0, 2, "probably positive")
    graph.set(3, 4, "not related")
    images = rng.integers(0, 255, size=(8, 24, 24, 3), dtype=np.uint8)
    ra = RelationshipAnnotator(
        miner,
        graph=graph,
        images=images,
        gradients=grads[:8],
        example_attributes=attrs[:8],
        n_examples=2,
        auto_advance=False,
    )
    ra.pair_label.add_class("fw-test-pair")
    # directions: class names and captions are payloads
    d, n = 16, 180
    labels = np.repeat(np.arange(3), n // 3)
    emb = rng.normal(size=(n, d))
    emb[np.arange(n), 8 + labels] += 3.0
    minority = rng.random(n) < 0.3
    emb[minority, 3] += 3.0
    err = (rng.random(n) < np.where(minority, 0.8, 0.03)) & (labels != 1)
    preds = np.where(err, (labels + 1) % 3, labels)
    fd = FailureDirections(max_modes=1, n_permutations=0, progress=False).fit(
        emb, labels, preds, rng.normal(size=(200, d))
    )
    thumbs = rng.integers(0, 255, size=(n, 16, 16, 3), dtype=np.uint8)
    caps = lambda c, m: {"failure": [(PAYLOADS[0], -1.0)], "easy": [(PAYLOADS[1], 1.0)]}  # noqa: E731
    ds = DirectionSlider(
        fd,
        thumbs,
        emb,
        labels,
        preds,
        class_names=PAYLOADS,
        captions=caps,
        decoders={"retrieval": RetrievalDecoder(emb, thumbs)},
        n_images=3,
        n_decoded=2,
    )
    # barlow: class names are payloads
    x = rng.normal(size=(300, 30)).astype(np.float32)
    tl = rng.integers(0, 3, 300)
    tp = tl.copy()
    tp[(tl == 1) & (x[:, 9] < -0.3) & (rng.random(300) < 0.8)] = 2
    tb = TreeBrowser.from_arrays(
        x,
        tl,
        tp,
        images=rng.integers(0, 255, size=(300, 16, 16, 3), dtype=np.uint8),
        class_names=PAYLOADS,
        k=5,
        class_index=1,
        n_samples=3,
    )
    leaf = int(np.flatnonzero(tb.result.fit.nodes["is_leaf"].to_numpy())[0])
    tb.selected_node = leaf
    root = W.VBox([ra, ds, tb])
    root.add_class("fw-test-hostile")
    return root
