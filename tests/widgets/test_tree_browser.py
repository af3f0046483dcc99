"""TreeBrowser: plain-pytest state tests (set traits, click buttons, set bqplot ``selected``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from failwidgets.methods.barlow import extract_features
from failwidgets.widgets.tree_browser import TreeBrowser


def _data(seed=0, n=300, d=30):
    """Class 1's images with feature 9 < -0.3 are mostly predicted as class 2; class 0 never fails."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32)
    labels = rng.integers(0, 3, n)
    preds = labels.copy()
    flip = (labels == 1) & (x[:, 9] < -0.3) & (rng.random(n) < 0.8)
    preds[flip] = 2
    imgs = (rng.random((n, 16, 16, 3)) * 255).astype(np.uint8)
    return x, labels, preds, imgs


@pytest.fixture
def browser():
    x, labels, preds, imgs = _data(0)
    hx, hl, hp, _ = _data(1)
    w = TreeBrowser.from_arrays(
        x, labels, preds, images=imgs, heldout=(hx, hl, hp), class_names=["a", "b", "c"], k=5, class_index=1
    )
    yield w
    w.close()


def test_initial_tree_and_status_for_a_group_without_failures(browser):
    w = browser
    assert w.result is not None and "label = b" in w.status and "held-out" in w.status
    assert w.result.fit.nodes.loc[0, "feature"] == 9
    w.class_dropdown.value = 0  # the user picks class a: no failures -> a status, no crash
    assert w.class_index == 0 and w.result is None
    assert "no failures" in w.status and "no failures" in w.status_html.value
    assert "no failures" in w.rules_text() and w.rules_frame().empty
    w.class_index = 1
    assert w.result is not None


def test_tree_drawing_encodes_er_as_colour_and_ec_as_size(browser):
    w = browser
    nodes = w.result.fit.nodes
    np.testing.assert_allclose(w.nodes_mark.color, nodes["ER"].to_numpy())
    np.testing.assert_allclose(w.nodes_mark.size, nodes["EC"].to_numpy())
    assert len(w.nodes_mark.x) == 3 and len(w.edges.x) == 2  # depth 1: root + two leaves, two edges
    # the root sits above the middle of its two leaves
    assert w.nodes_mark.x[0] == pytest.approx((w.nodes_mark.x[1] + w.nodes_mark.x[2]) / 2)
    valid = nodes.index[nodes["valid"]].to_numpy()
    np.testing.assert_allclose(w.valid_ring.x, np.asarray(w.nodes_mark.x)[valid])
    w.depth_slider.value = 2
    assert w.max_depth == 2 and len(w.nodes_mark.x) == len(w.result.fit.nodes) > 3


def test_click_node_shows_rule_metrics_and_samples_of_that_node(browser):
    w = browser
    w.nodes_mark.selected = [1]  # what a click in the browser writes
    assert w.selected_node == 1
    rule = w.result.fit.nodes.loc[1, "rule"]
    assert "feature[9] &lt;=" in w.node_html.value and "held-out" in w.node_html.value
    thr = w.result.fit.nodes.loc[0, "threshold"]
    fails = w.failures_grid.tile_keys
    oks = w.successes_grid.tile_keys
    assert 0 < len(fails) <= 8 and len(oks) > 0
    for i in fails:
        assert w.labels[i] == 1 and w.preds[i] != 1 and w.features[i, 9] <= thr
    for i in oks:
        assert w.labels[i] == 1 and w.preds[i] == 1 and w.features[i, 9] <= thr
    assert rule.startswith("feature[9] <=")
    assert w.split_feature(1) == 9 and w.split_feature(0) == 9
    assert not w.visualise_button.disabled
    w.selected_node = 2  # setting the trait moves the mark's selection too
    assert list(w.nodes_mark.selected) == [2]
    w.nodes_mark.selected = []
    assert w.selected_node == -1 and w.visualise_button.disabled


def test_delta_tau_change_validity_without_refit(browser):
    w = browser
    tree = w.result.tree
    assert len(w.valid_ring.x) == 1
    w.tau_slider.value = 1.0  # EC > 1 is impossible
    assert w.result.tree is tree and len(w.valid_ring.x) == 0
    assert "0 valid failure mode" in w.status
    w.tau_slider.value = 0.2
    w.delta_slider.value = 0.5  # ER > BER + 0.5 (~0.85): the leaf's ER ~0.8 is not enough
    assert w.result.tree is tree
    er = w.result.fit.leaves["ER"].max()
    assert (len(w.valid_ring.x) == 1) == (er > w.result.fit.ber + 0.5)


def test_bad_k_and_prediction_grouping(browser):
    w = browser
    tree = w.result.tree
    with pytest.raises(ValueError, match="k: expected at most 30"):
        w.k = 31  # more than the 30 features: rejected, the tree and k stay
    assert w.k == 5 and w.k_text.value == 5 and w.result.tree is tree and "k: expected at most 30" in w.log.text
    w.grouping_buttons.value = "prediction"
    w.class_index = 2  # false positives of class c: the flipped b images
    assert w.result is not None
    assert w.result.fit.n_errors == int(((w.preds == 2) & (w.labels != 2)).sum())


def test_state_round_trip(browser):
    w = browser
    w.depth_slider.value = 2
    w.tau_slider.value = 0.3
    w.nodes_mark.selected = [1]
    state = w.to_dict()
    x, labels, preds, imgs = _data(0)
    hx, hl, hp, _ = _data(1)
    w2 = TreeBrowser.from_arrays(x, labels, preds, images=imgs, heldout=(hx, hl, hp), class_names=["a", "b", "c"])
    try:
        assert w2.class_index == 0
        w2.from_dict(state)
        assert w2.to_dict() == state
        assert w2.depth_slider.value == 2 and w2.tau_slider.value == 0.3 and w2.class_dropdown.value == 1
        assert w2.node_html.value == w.node_html.value
        assert list(w2.nodes_mark.selected) == [1]
    finally:
        w2.close()
    with pytest.raises(ValueError, match="unknown state keys"):
        w.from_dict({**state, "colour": 1})


def test_export_rules_text_and_frame(browser):
    w = browser
    w.export_button.click()
    assert w.export_text.layout.display == ""
    assert "When feature[9] <=" in w.export_text.value and "[held-out]" in w.export_text.value
    frame = w.rules_frame()
    assert set(frame["split"]) == {"fit", "held-out"} and set(frame["class_name"]) == {"b"}
    assert frame["rule"].str.startswith("feature[9] <=").all()


class _ColourNet(nn.Module):
    """conv (1x1, channel c = colour c) -> pooled features -> head."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1, bias=False)
        with torch.no_grad():
            self.conv.weight.copy_(torch.eye(3).view(3, 3, 1, 1))
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = nn.Linear(3, 2)

    def forward(self, x):
        return self.fc(self.pool(self.conv(x)))


def test_visualise_feature_shows_top_images_heat_maps_and_attacks():
    rng = np.random.default_rng(0)
    n = 120
    imgs = (rng.random((n, 12, 12, 3)) * 255).astype(np.uint8)
    model = _ColourNet().eval()
    feats = extract_features(model, imgs, "pool", progress=False)
    labels = np.zeros(n, dtype=np.int64)
    preds = np.where((feats[:, 0] < np.median(feats[:, 0])) & (rng.random(n) < 0.8), 1, 0)  # low red fails
    w = TreeBrowser.from_arrays(
        feats,
        labels,
        preds,
        images=imgs,
        class_names=["x", "y"],
        k=3,
        feature_model=model,
        feature_layer="pool",
        conv_layer="conv",
        attack_steps=30,
    )
    try:
        assert w.result.fit.nodes.loc[0, "feature"] == 0
        w.nodes_mark.selected = [1]
        w.visualise_button.click()
        top = w.top_grid.tile_keys
        assert len(top) == 6
        assert list(top) == list(np.argsort(-feats[:, 0], kind="stable")[:6])  # the reddest images
        assert w.top_grid._overlays is not None and len(w.attack_grid) == 6
        assert all("→" in t.caption.value for t in w.attack_grid.tiles)
        assert "visualised feature[0]" in w.log.text
    finally:
        w.close()


@pytest.mark.slow
def test_from_demo_builds_a_working_browser_and_clicks_update_it():
    from failwidgets.demo import load

    demo = load(progress=False)
    w = TreeBrowser.from_demo(demo, small=True, n_images=600, attack_steps=3)
    try:
        # robust penultimate features of the first val images, the target's predictions, world classes
        assert w.features.shape == (600, demo.robust.feature_dim)
        np.testing.assert_allclose(
            w.features[:4],
            extract_features(demo.robust, demo.world["val"].images[:4], "features", progress=False),
            atol=1e-4,
        )
        np.testing.assert_array_equal(w.preds, demo.predictions("val", progress=False)[:600])
        np.testing.assert_array_equal(w.labels, demo.world["val"].labels[:600])
        np.testing.assert_array_equal(w.heldout[2], demo.predictions("test", progress=False)[:600])
        assert w.class_names == demo.world.class_names
        assert (w.feature_model, w.feature_layer, w.conv_layer) == (demo.robust, "features", "layer3")
        # the paper's defaults; the class shown first has the best held-out ALER - BER of all classes
        assert w.result is not None and (w.k, w.max_depth, w.delta, w.tau) == (20, 1, 0.1, 0.2)
        first, shown = w.class_index, w.result.heldout.aler_minus_ber
        for c in range(len(w.class_names)):
            w.class_dropdown.value = c  # the user picks each class in turn
            assert w.class_index == c and (w.result is None) == ("no tree" in w.status)
            if w.result is not None:
                assert w.result.class_index == c and w.result.heldout.aler_minus_ber <= shown + 1e-12
        w.class_dropdown.value = first
        # click the root: its rule, fit and held-out metrics; then visualise the split feature
        w.nodes_mark.selected = [0]
        assert "held-out" in w.node_html.value and "all samples" in w.node_html.value
        feat = w.split_feature(0)
        assert 0 <= feat < demo.robust.feature_dim and f"feature[{feat}]" in w.visualise_button.description
        w.visualise_button.click()
        top = np.asarray(w.top_grid.tile_keys)
        assert len(top) == 6 and np.all(w.labels[top] == first)  # top activating images of the group
        assert np.all(np.diff(w.features[top, feat]) <= 0)
        assert w.top_grid._overlays is not None and len(w.attack_grid) == 6
        # three L2 steps of size 1 uphill: every attacked image activates the feature more than before
        for tile in w.attack_grid.tiles:
            before, after = (float(v) for v in tile.caption.value.split(" (")[0].split(" → "))
            assert after > before
        w.depth_slider.value = 2
        assert len(w.nodes_mark.x) == len(w.result.fit.nodes) >= 3 and w.result.tree.max_depth == 2
        # the split features are named in words (the demo VL encoder) and every node shows its evidence
        w.nodes_mark.selected = [1]
        root = w.split_feature(0)  # node 1's rule is the root's condition
        name = w.feature_names[root]
        assert name.words and f"feature[{root}] {name.label}".replace('"', "&quot;") in w.node_html.value
        assert "held-out: " in w.node_html.value and "inside vs" in w.node_html.value
    finally:
        w.close()


def test_named_rules_and_leaf_evidence(browser):
    from failwidgets.methods import is_failure, slice_evidence
    from failwidgets.methods.barlow import FeatureName

    w = browser
    names = {9: FeatureName(9, ("snow", "white"), (0.3, 0.2), 0.9, np.arange(3))}
    w.feature_names = names
    w.selected_node = 1
    assert "feature[9] &quot;snow, white&quot; &lt;=" in w.node_html.value
    assert 'feature[9] "snow, white" (confidence 0.90)' in w.feature_html.value
    assert 'When feature[9] "snow, white" <=' in w.rules_text()
    assert w.rules_frame()["rule"].str.startswith('feature[9] "snow, white" <=').all()
    # evidence: the held-out images of the group inside the leaf vs the rest of the group
    hx, hl, hp = w.heldout
    idx = np.flatnonzero(hl == 1)
    inside = hx[idx, 9] <= w.result.fit.nodes.loc[0, "threshold"]
    ev = w.node_evidence(1)
    want = slice_evidence(inside, is_failure(hl[idx], hp[idx]))
    assert ev == want and ev.n_inside == int(w.result.heldout.nodes.loc[1, "size"])
    assert ev.rate_inside > ev.rate_outside and ev.p_value < 0.01
    assert (
        f"covers {int(w.result.fit.nodes.loc[1, 'size'])} of {len(w.result.fit_indices)} b fit images"
        in w.node_html.value
    )
    assert ev.summary("images") in w.node_evidence_text(1)


def test_constructor_takes_a_fitted_class_tree_first_and_shows_it_as_is():
    from failwidgets.methods.barlow import fit_class_tree

    x, labels, preds, imgs = _data(0)
    tree = fit_class_tree(x, labels, preds, 1, grouping="label", max_depth=2, k=4, tau=0.3)
    w = TreeBrowser(tree, x, labels, preds, images=imgs, class_names=["a", "b", "c"])
    try:
        assert w.result is tree and w.method is tree.tree  # shown as given, not refitted
        assert (w.class_index, w.grouping, w.max_depth, w.k, w.tau) == (1, "label", 2, 4, 0.3)
        assert w.depth_slider.value == 2 and w.k_text.value == 4 and len(w.nodes_mark.x) == len(tree.fit.nodes)
        w.depth_slider.value = 1  # a refit keeps the tree's other parameters
        assert w.result is not tree and w.result.tree.k == 4 and w.result.tree.tau == 0.3
    finally:
        w.close()
    with pytest.raises(TypeError, match="tree: expected a ClassTree"):
        TreeBrowser(x, labels, preds, imgs)
