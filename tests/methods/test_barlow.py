"""Barlow failure trees: formulas against hand-computed values, methods against planted cases."""

from __future__ import annotations

import time

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError

from failwidgets.methods.barlow import BarlowTree, fit_class_tree, group_mask
from failwidgets.methods.barlow.metrics import (
    aler,
    error_coverage,
    error_rate,
    importance_value,
    is_valid_failure_mode,
)
from failwidgets.methods.barlow.selection import binned_mutual_info, mutual_info, select_top_k


# ---------------------------------------------------------------- formulas, hand-computed
def test_metrics_hand_computed_paper_figure5_style():
    # Benchmark: 100 samples, 20 errors (BER 0.2). Leaf 1: 33 samples with 15 errors; leaf 2: 67 with 5.
    assert error_rate(20, 100) == pytest.approx(0.2)
    assert error_rate(15, 33) == pytest.approx(15 / 33)
    assert error_coverage(15, 20) == pytest.approx(0.75)
    assert importance_value(15, 33, 20) == pytest.approx((15 / 33) * 0.75)
    # ALER = 15/33 * 15/20 + 5/67 * 5/20 = 0.340909... + 0.018657... = 0.359566...
    assert aler([15, 5], [33, 67]) == pytest.approx(0.3409090909 + 0.0186567164, abs=1e-9)
    # valid: ER > BER + delta and EC > tau
    assert is_valid_failure_mode(15 / 33, 0.75, 0.2) is True
    assert is_valid_failure_mode(5 / 67, 0.25, 0.2) is False  # ER too low
    assert is_valid_failure_mode(0.9, 0.15, 0.2) is False  # EC too low
    assert is_valid_failure_mode(0.31, 0.5, 0.2, delta=0.1) is True
    assert is_valid_failure_mode(0.29, 0.5, 0.2, delta=0.1) is False


def test_metrics_undefined_cases_are_nan():
    assert np.isnan(error_rate(0, 0))
    assert np.isnan(error_coverage(0, 0))
    assert np.isnan(aler([0, 0], [3, 4]))
    # an empty leaf (possible on held-out data) contributes nothing
    assert aler([2, 0], [4, 0]) == pytest.approx(0.5)
    assert is_valid_failure_mode(np.nan, 0.9, 0.1) is False


def _hand_tree_case():
    """Depth-2 tree on two features with a fully known partition.

    feature 0 splits at 0.5, then feature 1 splits at 0.5 on each side. Cells (size, errors):
    x0<=.5 & x1<=.5: (40, 2); x0<=.5 & x1>.5: (20, 4); x0>.5 & x1<=.5: (10, 8); x0>.5 & x1>.5: (30, 6).
    """
    cells = [((0.2, 0.2), 40, 2), ((0.2, 0.8), 20, 4), ((0.8, 0.2), 10, 8), ((0.8, 0.8), 30, 6)]
    xs, fs = [], []
    for (a, b), n, e in cells:  # all points of a cell coincide, so only the cell borders can be split
        xs.append(np.tile([a, b], (n, 1)))
        fs.append(np.r_[np.ones(e, bool), np.zeros(n - e, bool)])
    return np.vstack(xs).astype(np.float32), np.concatenate(fs)


def test_tree_report_hand_computed_internal_nodes_use_true_error_rate():
    x, f = _hand_tree_case()
    tree = BarlowTree(max_depth=2, k=2).fit(x, f)
    nodes = tree.fit_report_.nodes.set_index("rule")
    rep = tree.fit_report_
    assert rep.n_samples == 100 and rep.n_errors == 20
    assert rep.ber == pytest.approx(0.2)
    # whichever feature the tree splits on first, every cell must appear as a leaf with its own counts
    leaves = rep.leaves
    assert sorted(zip(leaves["size"], leaves["errors"])) == [(10, 8), (20, 4), (30, 6), (40, 2)]
    # ALER = sum ER*EC = 8/10*8/20 + 4/20*4/20 + 6/30*6/20 + 2/40*2/20 = 0.32+0.04+0.06+0.005 = 0.425
    assert rep.aler == pytest.approx(0.425)
    assert rep.aler_minus_ber == pytest.approx(0.225)
    # internal nodes: their own ER. Root 20/100. Children of the root: if split on x0: (60, 6) -> 0.1 and
    # (40, 14) -> 0.35 (the average of its children's ERs would be (0.8+0.2)/2 = 0.5, the reference bug).
    internal = rep.nodes[~rep.nodes["is_leaf"] & (rep.nodes["depth"] == 1)]
    got = sorted(zip(internal["size"], internal["errors"], internal["ER"].round(6)))
    if int(rep.nodes.loc[0, "feature"]) == 0:
        assert got == [(40, 14, 0.35), (60, 6, 0.1)]
    else:  # split on x1 first: (50, 10) -> 0.2 and (50, 10) -> 0.2
        assert got == [(50, 10, 0.2), (50, 10, 0.2)]
    # IV and valid of the (10, 8) leaf: ER 0.8 > 0.3, EC 0.4 > 0.2 -> valid; IV = 0.32
    hot = leaves[leaves["size"] == 10].iloc[0]
    assert hot["IV"] == pytest.approx(0.32) and bool(hot["valid"])
    assert rep.top_leaf() == int(hot["node"])
    assert set(rep.valid_leaves["node"]) == {int(hot["node"])}
    # rules name original features with the sklearn split rule
    assert "feature[0]" in hot["rule"] and "feature[1]" in hot["rule"] and " and " in hot["rule"]
    assert "all samples" in nodes.index


def test_rules_use_original_feature_indices_not_selected_subset():
    # the informative feature is column 37 of 60; MI picks it first, the rule must say feature[37]
    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 60)).astype(np.float32)
    f = x[:, 37] > 0.8
    tree = BarlowTree(max_depth=1, k=5).fit(x, f)
    assert tree.selected_features_[0] == 37
    root = tree.fit_report_.nodes.iloc[0]
    assert root["feature"] == 37
    assert tree.fit_report_.leaves["rule"].str.contains(r"feature\[37\]").all()
    assert abs(root["threshold"] - 0.8) < 0.1


def test_with_thresholds_recomputes_valid_without_refit():
    x, f = _hand_tree_case()
    rep = BarlowTree(max_depth=2, k=2).fit(x, f).fit_report_
    assert len(rep.valid_leaves) == 1
    loose = rep.with_thresholds(delta=0.0, tau=0.0)  # ER > 0.2 and EC > 0: only the (10, 8) leaf again
    assert set(loose.valid_leaves["size"]) == {10}
    strict = rep.with_thresholds(delta=0.7, tau=0.2)  # needs ER > 0.9
    assert strict.valid_leaves.empty
    assert "no valid failure mode" in strict.rules_text()


# ---------------------------------------------------------------- MI selection
def _planted_mi_case(n=600, d=300, seed=0):
    rng = np.random.default_rng(seed)
    x = np.maximum(rng.normal(size=(n, d)), 0).astype(np.float32)  # ReLU-like, many ties at 0
    y = rng.random(n) < 0.3
    informative = np.array([3, 41, 77, 150, 299])
    strengths = np.array([1.5, 1.2, 1.0, 0.8, 0.7])
    x[:, informative] += y[:, None] * strengths
    return x, y, informative


def test_binned_mi_hand_computed_two_bins():
    # feature perfectly splits a balanced target: MI = log 2; Miller-Madow: K_bin 2 + K_y 2 - K_joint 2 - 1
    # = +1 -> + 1/(2N).
    x = np.array([[0.0], [0.0], [1.0], [1.0]])
    y = np.array([0, 0, 1, 1])
    assert binned_mutual_info(x, y, n_bins=2)[0] == pytest.approx(np.log(2) + 1 / 8)
    # independent feature: plug-in 0, correction (2 + 2 - 4 - 1)/8 < 0 -> clipped to 0
    y2 = np.array([0, 1, 0, 1])
    assert binned_mutual_info(x, y2, n_bins=2)[0] == 0.0
    # constant feature carries no information
    assert binned_mutual_info(np.ones((4, 1)), y, n_bins=4)[0] == 0.0


def test_binned_and_sklearn_mi_agree_on_planted_top_k():
    x, y, informative = _planted_mi_case()
    top_binned = select_top_k(mutual_info(x, y, "binned"), 5)
    top_sklearn = select_top_k(mutual_info(x, y, "sklearn", random_state=0), 5)
    assert set(top_binned) == set(informative)
    assert len(set(top_binned) & set(top_sklearn)) >= 4
    # larger k: substantial agreement beyond the planted features too is not expected (noise), but the
    # planted ones must lead both rankings
    assert set(select_top_k(mutual_info(x, y, "binned"), 10)[:5]) == set(informative)


def test_mi_selection_and_tree_fast_on_1300_by_2048():
    rng = np.random.default_rng(0)
    x = np.maximum(rng.normal(size=(1300, 2048)), 0).astype(np.float32)
    f = rng.random(1300) < 0.25
    x[:, 1456] -= f * 0.8
    BarlowTree(max_depth=3, k=20).fit(x, f)  # warm-up (imports, allocator)
    t0 = time.perf_counter()
    tree = BarlowTree(max_depth=3, k=20).fit(x, f)
    elapsed = time.perf_counter() - t0
    assert tree.selected_features_[0] == 1456
    assert elapsed < 2.0, f"MI + tree took {elapsed:.2f} s (target < 1 s on 2 idle cores)"


def test_select_top_k_orders_and_checks_k():
    mi = np.array([0.1, 0.5, 0.5, 0.0])
    assert list(select_top_k(mi, 3)) == [1, 2, 0]
    with pytest.raises(ValueError, match=r"k: expected at most 4"):
        select_top_k(mi, 5)


# ---------------------------------------------------------------- groupings and bad input
def test_group_mask_by_label_and_prediction():
    labels = np.array([0, 0, 1, 1, 2])
    preds = np.array([0, 1, 1, 0, 0])
    assert list(group_mask(labels, preds, 0, "label")) == [True, True, False, False, False]
    assert list(group_mask(labels, preds, 0, "prediction")) == [True, False, False, True, True]
    with pytest.raises(ValueError, match="grouping"):
        group_mask(labels, preds, 0, "both")


def _class_data(seed=0):
    rng = np.random.default_rng(seed)
    n, d = 400, 30
    x = rng.normal(size=(n, d)).astype(np.float32)
    labels = rng.integers(0, 3, n)
    preds = labels.copy()
    minority = x[:, 9] < -0.3
    flip = (labels == 1) & minority & (rng.random(n) < 0.8)
    preds[flip] = 2
    return x, labels, preds


def test_fit_class_tree_finds_planted_false_negatives_and_false_positives():
    x, labels, preds = _class_data()
    by_label = fit_class_tree(x, labels, preds, 1, grouping="label", k=5)
    assert by_label.fit.nodes.loc[0, "feature"] == 9
    top = by_label.fit.nodes.set_index("node").loc[by_label.fit.top_leaf()]
    assert "feature[9] <=" in top["rule"] and bool(top["valid"])
    # by prediction of class 2: its false positives are the flipped class-1 images (label 1, pred 2)
    by_pred = fit_class_tree(x, labels, preds, 2, grouping="prediction", k=5)
    assert by_pred.fit.n_errors == int(((preds == 2) & (labels != 2)).sum())
    assert np.all(preds[by_pred.fit_indices] == 2)


def test_heldout_report_uses_heldout_samples():
    x, labels, preds = _class_data(0)
    hx, hl, hp = _class_data(1)
    res = fit_class_tree(x, labels, preds, 1, heldout=(hx, hl, hp), k=5)
    g = hl == 1
    assert res.heldout.n_samples == int(g.sum())
    assert res.heldout.n_errors == int((hp[g] != 1).sum())
    assert res.heldout.split == "held-out"
    # recompute the held-out ER of each leaf by hand from the rule's threshold
    thr = res.fit.nodes.loc[0, "threshold"]
    left = hx[g, 9] <= thr
    err = hp[g] != 1
    leaves = res.heldout.nodes.set_index("node")
    assert leaves.loc[1, "ER"] == pytest.approx(err[left].mean())
    assert leaves.loc[2, "ER"] == pytest.approx(err[~left].mean())
    frame = res.to_frame(valid_only=False)
    assert set(frame["split"]) == {"fit", "held-out"}
    assert "[held-out]" in res.rules_text()


def test_bad_inputs_give_clear_errors():
    x, labels, preds = _class_data()
    with pytest.raises(ValueError, match="no failures"):
        fit_class_tree(x, labels, preds, 0)  # class 0 is never misclassified
    only_fail = preds.copy()
    only_fail[labels == 0] = 1
    with pytest.raises(ValueError, match="only failures"):
        fit_class_tree(x, labels, only_fail, 0)
    with pytest.raises(ValueError, match=r"k: expected at most 30"):
        fit_class_tree(x, labels, preds, 1, k=31)
    with pytest.raises(ValueError, match="max_depth"):
        fit_class_tree(x, labels, preds, 1, max_depth=4)
    with pytest.raises(ValueError, match="group is empty"):
        fit_class_tree(x, labels, preds, 7)
    with pytest.raises(ValueError, match="features: expected 30 columns"):
        BarlowTree(k=3).fit(x[labels == 1], preds[labels == 1] != 1).report(x[:, :5], np.zeros(400, bool))
    with pytest.raises(NotFittedError, match="not fitted yet: call fit"):
        BarlowTree().apply(x)


def test_aler_is_at_least_ber_and_some_leaf_reaches_aler():
    # Proposition 1 of the paper plus Cauchy-Schwarz: for any partition, BER <= ALER <= max leaf ER.
    rng = np.random.default_rng(3)
    for _ in range(50):
        sizes = rng.integers(1, 40, size=rng.integers(1, 6))
        errors = np.array([rng.integers(0, s + 1) for s in sizes])
        if errors.sum() == 0:
            continue
        a = aler(errors, sizes)
        assert errors.sum() / sizes.sum() - 1e-12 <= a <= (errors / sizes).max() + 1e-12


def test_fit_model_is_fit_on_extracted_features():
    import torch

    from failwidgets.methods.barlow import extract_features

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 6, 3), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1)).eval()
    images = np.random.default_rng(0).integers(0, 256, (50, 8, 8, 3), dtype=np.uint8)
    feats = extract_features(model, images, "2", progress=False)
    failures = feats[:, 1] > np.median(feats[:, 1])
    a = BarlowTree(k=3, progress=False).fit_model(model, images, "2", failures)
    b = BarlowTree(k=3).fit(feats, failures)
    np.testing.assert_array_equal(a.selected_features_, b.selected_features_)
    assert a.fit_report_.to_frame().equals(b.fit_report_.to_frame())
    assert a.get_params()["progress"] is False  # fit_model changed no parameter
