"""The four method widgets built in seconds from small synthetic data with planted structure.

The widget cases of the method registry (``MethodSpec.widget_case``): the shared widget contract
(:mod:`failwidgets.testing.widget_checks`) runs on them, the browser fixture notebooks call
:func:`build`, and the static-export tests build the same widgets in the test process, so what the
browser shows and what the assertions expect come from one place. No model is trained and nothing is downloaded:
the method objects are fitted on planted arrays (an SVM, a depth-1 tree, mined relations) or, for
LaViSE, :class:`~failwidgets.methods.lavise.FilterExplanations` is filled in directly.

Each builder also tags a few children with CSS classes (``fw-test-*``) so the browser tests can find
them; the tags change nothing else. Each builder carries ``invalid_values``: for some state traits,
values the widget must reject (the contract checks that they raise and change nothing).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "build",
    "BUILDERS",
    "PLANTED_WORD",
    "PLANTED_WORD_FILTER",
    "N_FILTERS",
    "N_PAIRS",
    "CLASS_NAMES",
    "TREE_SPLIT_FEATURE",
]

CLASS_NAMES = ["cat", "dog", "cow"]
TREE_SPLIT_FEATURE = 9  # TreeBrowser: class "dog" fails when feature[9] < -0.3
N_FILTERS = 5  # FilterWordExplorer: filters explained
PLANTED_WORD, PLANTED_WORD_FILTER = "grass", 3  # the only filter whose top words contain "grass"
N_ATTR = 6
N_PAIRS = N_ATTR * (N_ATTR - 1) // 2


def _noise_images(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    """uint8 (n, size, size, 3): a random colour per image plus noise, so every thumbnail differs."""
    base = rng.integers(30, 226, size=(n, 1, 1, 3))
    noise = rng.integers(-30, 30, size=(n, size, size, 3))
    return np.clip(base + noise, 0, 255).astype(np.uint8)


def direction_slider():
    """Classes cat/dog/cow; in cat and cow a minority along embedding axis 3 fails; dog never fails."""
    from failwidgets.methods.directions import FailureDirections, RetrievalDecoder
    from failwidgets.widgets import DirectionSlider

    rng = np.random.default_rng(0)
    d, n = 16, 360
    labels = np.repeat(np.arange(3), n // 3)
    emb = rng.normal(size=(n, d))
    emb[np.arange(n), 8 + labels] += 3.0
    minority = rng.random(n) < 0.3
    emb[minority, 3] += 3.0
    err = (rng.random(n) < np.where(minority, 0.8, 0.03)) & (labels != 1)
    preds = np.where(err, (labels + 1) % 3, labels)
    fd = FailureDirections(max_modes=1, progress=False, random_state=0).fit(
        emb, labels, preds, rng.normal(size=(500, d))
    )
    images = _noise_images(rng, n, 24)
    images[minority, :6] = (255, 0, 0)  # a red band marks the failing minority
    captions = lambda c, m: {"failure": [("a photo on grass", -1.5)], "easy": [("indoors", 0.7)]}  # noqa: E731
    w = DirectionSlider(
        fd,
        images,
        emb,
        labels,
        preds,
        class_names=CLASS_NAMES,
        captions=captions,
        decoders={"retrieval": RetrievalDecoder(emb, images)},
        n_images=6,
        n_decoded=4,
    )
    w.add_class("fw-test-root")
    w.hard_grid.add_class("fw-test-hard")
    w.decoded_grid.add_class("fw-test-decoded")
    w.slider.add_class("fw-test-slider")
    return w


def tree_browser():
    """Class dog's images with feature[9] < -0.3 are mostly predicted cow; cat never fails."""
    from failwidgets.widgets import TreeBrowser

    def data(seed, n=300, d=30):
        rng = np.random.default_rng(seed)
        x = rng.normal(size=(n, d)).astype(np.float32)
        labels = rng.integers(0, 3, n)
        preds = labels.copy()
        preds[(labels == 1) & (x[:, TREE_SPLIT_FEATURE] < -0.3) & (rng.random(n) < 0.8)] = 2
        return x, labels, preds, _noise_images(rng, n, 24)

    x, labels, preds, images = data(0)
    hx, hl, hp, _ = data(1)
    w = TreeBrowser.from_arrays(
        x, labels, preds, images=images, heldout=(hx, hl, hp), class_names=CLASS_NAMES, k=5, class_index=1, n_samples=6
    )
    w.add_class("fw-test-root")
    w.node_html.add_class("fw-test-node")
    w.failures_grid.add_class("fw-test-failures")
    return w


def relationship_annotator():
    """Six attributes on 60 conv units; pairs (a0, a1), (a2, a3), (a4, a5) share units (planted)."""
    from failwidgets.methods.relations import RelationMiner
    from failwidgets.widgets import RelationshipAnnotator

    rng = np.random.default_rng(0)
    m, shape = 160, (2, 5, 6)
    units = int(np.prod(shape))
    group = lambda k: np.arange(8 * k, 8 * k + 8)  # noqa: E731  attribute k's own units
    acts = rng.uniform(0.5, 1.5, size=(m, units))
    grads = 0.02 * rng.standard_normal((m, N_ATTR, units))
    for k in range(N_ATTR):
        grads[:, k, group(k)] += rng.uniform(0.5, 1.5, size=(m, 8))
    grads[:, 1, group(0)[:4]] += rng.uniform(0.5, 1.5, size=(m, 4))
    grads[:, 3, group(2)[:4]] -= rng.uniform(0.5, 1.5, size=(m, 4))
    grads[:, 4, group(5)] += 1.5 * rng.uniform(0.5, 1.5, size=(m, 8))
    attrs = (rng.random((m, N_ATTR)) < 0.5).astype(np.float32)
    acts, grads = acts.reshape(m, *shape), grads.reshape(m, N_ATTR, *shape)
    miner = RelationMiner(progress=False, max_units=32).fit(acts, grads, attrs, [f"a{k}" for k in range(N_ATTR)])
    images = _noise_images(rng, 8, 24)
    w = RelationshipAnnotator(
        miner, images=images, gradients=grads[:8], example_attributes=attrs[:8], n_examples=3, auto_advance=False
    )
    w.add_class("fw-test-root")
    w.counter.add_class("fw-test-counter")
    w.pair_label.add_class("fw-test-pair")
    return w


def filter_word_explorer():
    """Five filters of a 5-filter layer on 40 images; filter u fires on images of colour u % 3 and its
    top words are planted (only filter 3 has ``grass``)."""
    import pandas as pd

    from failwidgets.methods.lavise import FilterExplanations
    from failwidgets.widgets import FilterWordExplorer

    rng = np.random.default_rng(0)
    n, size, h, p = 40, 24, 6, 5
    colour = np.arange(n) % 3
    images = np.zeros((n, size, size, 3), np.uint8)
    images[np.arange(n), :, :, colour] = 200
    images = np.clip(images.astype(int) + rng.integers(0, 40, images.shape), 0, 255).astype(np.uint8)
    max_act = rng.uniform(0.0, 0.2, size=(n, N_FILTERS))
    for u in range(N_FILTERS):
        max_act[colour == u % 3, u] += 1.0
    words = [
        [("red", 4), ("apple", 2), ("fire", 1)],
        [("green", 5), ("leaf", 2)],
        [("blue", 5), ("sky", 3), ("water", 1)],
        [("red", 3), (PLANTED_WORD, 2), ("brick", 1)],
        [("green", 4), ("moss", 2)],
    ]
    top = np.argsort(-max_act, axis=0)[:p].T  # (U, p) most activating first
    maps = np.zeros((N_FILTERS, p, h, h))
    maps[:, :, 1:4, 1:4] = 1.0
    concepts = ["red", "green", "blue"]
    iou = pd.DataFrame(
        np.where(np.arange(3)[None] == (np.arange(N_FILTERS) % 3)[:, None], 0.4, 0.01),
        index=range(N_FILTERS),
        columns=concepts,
    )
    ex = FilterExplanations(
        layer="conv4",
        filters=np.arange(N_FILTERS),
        methods=("attention",),
        words={"attention": words},
        top_images=top,
        top_activations=np.take_along_axis(max_act, top.T, axis=0).T,
        activation_maps=maps,
        thresholds=np.full(N_FILTERS, 0.5),
        max_activations=max_act,
        image_size=(size, size),
        train_concepts=concepts,
        heldout_concepts=[],
        p=p,
        s=3,
        iou=iou,
    )
    groups = np.where(colour == 0, "reddish", np.where(colour == 1, "greenish", None))
    w = FilterWordExplorer(ex, images, groups)
    w.selected_filter = 0
    w.add_class("fw-test-root")
    w.search_box.add_class("fw-test-search")
    w.count_label.add_class("fw-test-count")
    w.filter_list.add_class("fw-test-list")
    return w


# user actions beyond the controls (button clicks, clicks on marks), run by the scripted interaction
direction_slider.script = lambda w: [
    ("click the third strength bar", lambda: setattr(w.strength_chart.bars, "selected", [2])),
    ("select a hard image", lambda: w.hard_grid.tiles[0].button.set_state({"value": True})),
]
tree_browser.script = lambda w: [
    ("group by label", lambda: w.grouping_buttons.set_state({"index": 0})),
    ("pick class dog (it has a failure tree)", lambda: w.class_dropdown.set_state({"index": 1})),
    ("click node 1", lambda: setattr(w.nodes_mark, "selected", [1])),
    ("visualise its feature", lambda: w.visualise_button.disabled or w.visualise_button.click()),
    ("export the rules", w.export_button.click),
]
relationship_annotator.script = lambda w: [
    ("type hotkey 3", lambda: w.hotkeys.set_state({"value": "3"})),
    ("undo", w.undo_button.click),
    ("click cell (2, 5)", lambda: setattr(w.matrix, "selected", np.array([[2, 5]]))),
    ("next pair", w.next_button.click),
]
filter_word_explorer.script = lambda w: [
    ("search grass", lambda: w.search_box.set_state({"value": PLANTED_WORD})),
    ("pick the listed filter", lambda: w.filter_list.set_state({"index": 0})),
    ("open the groups tab", lambda: w.tabs.set_state({"selected_index": 1})),
]

direction_slider.invalid_values = {
    "class_index": [3, -1],
    "alpha": [1.5, float("nan")],
    "decoder": ["no such decoder"],
    "mode": [5, -1],
}
tree_browser.invalid_values = {
    "class_index": [3, -1],
    "grouping": ["sideways"],
    "max_depth": [0, 4],
    "k": [0, 31],
    "delta": [-0.1, 0.6],
    "tau": [-0.1, 1.5],
    "selected_node": [999, -2],
}
relationship_annotator.invalid_values = {
    "annotations": [[["a0", "nope", "related"]], [["a0"]]],
    "selected_pair": [[0, 0], [0, 99], [1]],
    "pair_view": ["nonsense"],
}
filter_word_explorer.invalid_values = {
    "layer": ["conv9"],
    "sort_by": ["nonsense"],
    "selected_filter": [99, -1],
    "view": ["sideways"],
}

BUILDERS = {
    "direction_slider": direction_slider,
    "tree_browser": tree_browser,
    "relationship_annotator": relationship_annotator,
    "filter_word_explorer": filter_word_explorer,
}


def build(name: str):
    """The widget called ``name`` (a key of :data:`BUILDERS`)."""
    if name not in BUILDERS:
        raise ValueError(f"name: expected one of {sorted(BUILDERS)}, got {name!r}")
    return BUILDERS[name]()
