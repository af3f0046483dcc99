"""Selections everywhere: each method widget publishes its pick as ``.selection`` (with a frame), accepts
one from Python (its examples then stay inside it), and ``failwidgets.link`` joins it to a FailureMap."""

from __future__ import annotations

import numpy as np
import pytest

import failwidgets
from failwidgets.widgets.failure_map import FailureMap


def _map(labels, preds, images=None):
    rng = np.random.default_rng(0)
    return FailureMap(labels=labels, preds=preds, images=images, xy=rng.normal(size=(len(labels), 2)), backend="bqplot")


# ------------------------------------------------------------------------------------------ TreeBrowser
def test_tree_leaf_lights_up_on_the_map_and_a_lasso_filters_its_samples():
    from failwidgets.widgets.tree_browser import TreeBrowser
    from tests.widgets.test_tree_browser import _data

    x, labels, preds, imgs = _data(0)
    tree = TreeBrowser.from_arrays(
        x, labels, preds, images=imgs, class_names=["a", "b", "c"], k=5, class_index=1, n_samples=50
    )
    fmap = _map(labels, preds, imgs)
    try:
        failwidgets.link(fmap, tree)
        leaf = int(tree.result.fit.nodes.query("is_leaf")["ER"].idxmax())
        tree.selected_node = leaf  # a click on the leaf
        members = tree.node_members(leaf)
        assert members.size and sorted(tree.selection) == sorted(members.tolist())
        assert sorted(fmap.selection) == sorted(members.tolist())  # lit up on the map
        assert fmap.last_evidence.n_inside == members.size
        frame = tree.selection_frame()
        assert set(frame.columns) >= {"index", "label", "prediction", "error", "leaf"}
        assert np.all(frame["leaf"] == leaf) and np.all(frame["label"] == 1)
        # a lasso on the map around half of the leaf: the tree's samples stay inside it
        lasso = members[: members.size // 2]
        fmap.mark.selected = np.flatnonzero(np.isin(fmap._sample, lasso)).tolist()
        assert sorted(tree.selection) == sorted(lasso.tolist())
        shown = set(tree.failures_grid.tile_keys) | set(tree.successes_grid.tile_keys)
        assert shown and shown <= set(lasso.tolist())
        tree.clear_selection_filter()
        shown = set(tree.failures_grid.tile_keys) | set(tree.successes_grid.tile_keys)
        assert not shown <= set(lasso.tolist())
    finally:
        tree.close()
        fmap.close()


# -------------------------------------------------------------------------------------- DirectionSlider
def _slider():
    from failwidgets.methods.directions import FailureDirections
    from failwidgets.widgets.direction_slider import DirectionSlider

    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 120)
    X = rng.normal(size=(360, 16))
    X[np.arange(360), 8 + labels] += 3.0
    minority = rng.random(360) < 0.3
    X[minority, 3] += 3.0
    err = (rng.random(360) < np.where(minority, 0.8, 0.03)) & (labels != 1)
    preds = np.where(err, (labels + 1) % 3, labels)
    fd = FailureDirections(max_modes=1, progress=False, n_permutations=0).fit(
        X, labels, preds, rng.normal(size=(500, 16))
    )
    images = np.zeros((360, 8, 8, 3), np.uint8)
    return DirectionSlider(fd, images, X, labels, preds, class_names=["x", "y", "z"]), labels, preds, images


def test_direction_flagged_set_lights_up_and_a_selection_limits_the_hardest():
    slider, labels, preds, images = _slider()
    fmap = _map(labels, preds, images)
    try:
        failwidgets.link(fmap, slider)
        slider.class_index = 2
        flagged = slider.flagged()["index"].to_numpy()
        assert flagged.size and sorted(slider.selection) == sorted(flagged.tolist())
        assert sorted(fmap.selection) == sorted(flagged.tolist())
        frame = slider.selection_frame()
        assert (frame["decision_value"] < 0).all() and "prediction" in frame
        # a selection from Python: the hardest / easiest grids stay inside it
        inside = np.flatnonzero(labels == 2)[::3]
        fmap.selection = inside.tolist()
        assert set(slider.hard_grid.tile_keys) <= set(inside.tolist())
        assert set(slider.easy_grid.tile_keys) <= set(inside.tolist())
        slider.class_index = 0  # the limit stays while browsing
        assert slider.hard_grid.tile_keys == [] or set(slider.hard_grid.tile_keys) <= set(inside.tolist())
    finally:
        slider.close()
        fmap.close()


# ----------------------------------------------------------------------------------- FilterWordExplorer
def test_filter_qualified_images_light_up_and_a_selection_limits_the_top_images():
    from failwidgets.compute.words import WordSpace
    from failwidgets.methods.lavise import LaViSE
    from failwidgets.widgets.filter_word_explorer import FilterWordExplorer
    from tests.methods.test_lavise import COLOURS, ColourNet, colour_world

    rng = np.random.default_rng(1)
    words = list(COLOURS) + ["grass", "sand"]
    space = WordSpace(words, rng.normal(size=(len(words), 16)), name="planted")
    images, masks, _ = colour_world(40, seed=5, bias=True)
    lav = LaViSE(space, lr=3e-2, epochs=5, batch_size=128, p=6, s=2, quantile=0.05, progress=False).fit_model(
        ColourNet().eval(), images, "features", masks
    )
    ex = lav.explain(images, methods=("attention",))
    n = ex.max_activations.shape[0]
    w = FilterWordExplorer(ex, images)
    labels = np.arange(n) % 2
    fmap = _map(labels, labels)
    try:
        failwidgets.link(fmap, w)
        u = int(ex.filters[0])
        w.selected_filter = u
        q = w.qualified(u)
        assert np.array_equal(np.sort(w.selection), q) and np.array_equal(np.sort(fmap.selection), q)
        frame = w.selection_frame()
        assert (frame["activation"] > ex.thresholds[u]).all()
        assert "label" in frame and "prediction" in frame  # shared from the map by link
        top = ex.top_images[ex.row(u)]
        fmap.selection = top[:2].tolist()
        assert set(w.grid.tile_keys) == set(top[:2].tolist())
    finally:
        w.close()
        fmap.close()


# -------------------------------------------------------------------------------- RelationshipAnnotator
def test_relation_cell_lights_up_and_a_selection_limits_the_examples():
    from failwidgets.methods.relations import RelationMiner
    from failwidgets.widgets.relationship_annotator import RelationshipAnnotator
    from tests.methods.test_relations import N_ATTR, _attributes, _planted_gradients

    rng = np.random.default_rng(0)
    acts, grads = _planted_gradients(rng, 120, share_4_5=1.5)
    attrs = _attributes(rng, 120)
    miner = RelationMiner(progress=False, max_units=32).fit(acts, grads, attrs, [f"a{k}" for k in range(N_ATTR)])
    images = rng.integers(0, 255, size=(40, 12, 12, 3), dtype=np.uint8)
    w = RelationshipAnnotator(miner, images=images, gradients=grads[:40], example_attributes=attrs[:40], n_examples=4)
    labels = np.zeros(40, np.int64)
    fmap = _map(labels, labels, images)
    try:
        failwidgets.link(fmap, w)
        w.selected_pair = [0, 2]
        cell = w.relation_cell(0, 2)
        ea = attrs[:40] > 0
        assert np.array_equal(cell, np.flatnonzero(ea[:, 0] & ea[:, 2]))
        assert np.array_equal(np.sort(fmap.selection), cell)
        only = np.flatnonzero(ea[:, 0] | ea[:, 2])[-2:]
        fmap.selection = only.tolist()
        assert np.array_equal(w.example_indices(0, 2), only)
    finally:
        w.close()
        fmap.close()


def test_link_rejects_non_widgets_and_mismatched_rows():
    labels = np.zeros(10, np.int64)
    a = _map(labels, labels)
    try:
        with pytest.raises(TypeError, match="target"):
            failwidgets.link(a, object())
        b = _map(labels[:5], labels[:5])
        with pytest.raises(ValueError, match="rows"):
            failwidgets.link(a, b, rows=[0, 1])
        with pytest.raises(ValueError, match="rows"):
            failwidgets.link(a, b, rows=[0, 1, 2, 3, 99])
        b.close()
    finally:
        a.close()


class AxisEncoder:
    def encode_texts(self, texts):
        out = np.zeros((len(texts), 16), np.float32)
        for r, t in enumerate(texts):
            out[r, int(t.split()[-1])] = 1.0
        return out


def test_slider_hypothesis_box_and_caption_evidence_on_heldout_data():
    slider, _, _, _ = _slider()
    slider.captions = lambda c, m: {"failure": [("axis 3", -1.2), ("axis 5", -0.3)], "easy": []}
    rng = np.random.default_rng(7)  # held-out draw of the same planted world
    labels = np.repeat(np.arange(3), 200)
    X = rng.normal(size=(600, 16))
    X[np.arange(600), 8 + labels] += 3.0
    minority = rng.random(600) < 0.3
    X[minority, 3] += 3.0
    err = (rng.random(600) < np.where(minority, 0.8, 0.03)) & (labels != 1)
    preds = np.where(err, (labels + 1) % 3, labels)
    try:
        slider.class_index = 0
        slider.set_hypothesis_data(AxisEncoder(), X, labels, preds, top_fraction=0.25)
        table = slider.caption_hypotheses()
        assert list(table["caption"]) == ["axis 3", "axis 5"]
        planted, other = table.iloc[0], table.iloc[1]
        assert planted.error_inside > planted.error_outside + 0.4 and planted.p_value < 1e-6
        assert other.p_value > 1e-3
        assert "axis 3" in slider.caption_evidence_html.value
        slider.hypothesis_box.value = "axis 3"  # typing a hypothesis
        res = slider.last_hypothesis
        assert res.class_index == 0 and res.evidence.significant()
        assert "inside" in slider.hypothesis_html.value and "outside" in slider.hypothesis_html.value
        slider.class_index = 2  # captions re-checked for the new class
        assert slider.caption_evidence_html.value and slider.caption_hypotheses().iloc[0].p_value < 1e-6
    finally:
        slider.close()
