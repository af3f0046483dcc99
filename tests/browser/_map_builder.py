"""A FailureMap built in a second from planted data, for the Voilà browser test.

Two clusters on the map: the left one (x < 0, 60 points) is all errors, the right one (240 points)
all correct, so a lasso around the left cluster must show "60 selected" and 100% error inside.
"""

from __future__ import annotations

import numpy as np

N_LEFT, N_RIGHT = 60, 240


class AxisEncoder:
    """Text side: "axis k" embeds to unit vector k (the hypothesis box test)."""

    def encode_texts(self, texts):
        out = np.zeros((len(texts), 4), np.float32)
        for r, t in enumerate(texts):
            out[r, int(t.split()[-1])] = 1.0
        return out


def build_map():
    from failwidgets.widgets import FailureMap

    rng = np.random.default_rng(0)
    n = N_LEFT + N_RIGHT
    xy = np.concatenate(
        [rng.normal(loc=(-5, 0), scale=0.4, size=(N_LEFT, 2)), rng.normal(loc=(5, 0), scale=0.4, size=(N_RIGHT, 2))]
    ).astype(np.float32)
    labels = np.zeros(n, np.int64)
    preds = np.concatenate([np.ones(N_LEFT, np.int64), np.zeros(N_RIGHT, np.int64)])
    emb = rng.normal(size=(n, 4)).astype(np.float32)
    emb[:N_LEFT, 1] += 4.0  # "axis 1" ranks the failing cluster first
    images = np.zeros((n, 24, 24, 3), np.uint8)
    images[:N_LEFT, ..., 0] = 255  # failing images are red, the others green
    images[N_LEFT:, ..., 1] = 255
    w = FailureMap(
        labels=labels,
        preds=preds,
        xy=xy,
        images=images,
        class_names=["cat", "dog"],
        encoder=AxisEncoder(),
        hypothesis_embeddings=emb,
        n_grid=8,
        backend="jscatter",
        previews=False,
    )
    w.add_class("fw-test-root")
    w.evidence_html.add_class("fw-test-evidence")
    w.grid.add_class("fw-test-grid")
    w.plot.layout.width = "600px"
    w.phrase_box.add_class("fw-test-phrase")
    w.hypothesis_html.add_class("fw-test-hypothesis")
    return w


def build_tree_and_map():
    """The browser tests' TreeBrowser (``tests/browser/_builders.py``) linked to a map of its images."""
    import ipywidgets as W

    from failwidgets.compute.layout import layout_2d
    from failwidgets.widgets import FailureMap, link
    from tests.browser._builders import build

    tree = build("tree_browser")
    fmap = FailureMap(
        labels=tree.labels,
        preds=tree.preds,
        images=tree.images,
        xy=layout_2d(tree.features, method="pca", cache=False),
        class_names=tree.class_names,
        n_grid=8,
        backend="jscatter",
        previews=False,
    )
    fmap.add_class("fw-test-map")
    fmap.evidence_html.add_class("fw-test-evidence")
    fmap.plot.layout.width = "600px"
    box = W.VBox([tree, fmap])
    box.links = [link(tree, fmap)]
    return box
