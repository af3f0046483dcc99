"""Relation mining (Zhang et al. 2018): formulas against hand-computed values, masks and relations on
planted gradients, diagnosis on a planted biased pair, annotation files, evaluation and baseline."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import NotFittedError

from failwidgets.methods.relations import (
    RelationGraph,
    RelationMiner,
    attribute_kl,
    entropy_baseline,
    evaluate_modes,
    heatmap_rgb,
    histogram_density,
    inference_map,
    kl_gaussian_histogram,
    merge_annotations,
    mode_accuracy_drop,
    relation_matrices,
)
from failwidgets.methods.relations.evaluation import failure_mode_cell, mode_counts, to_signs
from failwidgets.methods.relations.kl import density_from_counts
from failwidgets.methods.relations.masks import contributions, select_mask


# ---------------------------------------------------------------------------------------------
# formulas, hand-computed
def test_relation_matrices_cosines_by_hand():
    v = np.array([[[1.0, 0.0], [1.0, 1.0], [0.0, 0.0], [-2.0, 0.0]]])  # (1, 4, 2)
    r = relation_matrices(v)[0]
    assert r.shape == (4, 4)
    assert r[0, 1] == pytest.approx(1 / math.sqrt(2), abs=1e-6)
    assert r[1, 0] == pytest.approx(1 / math.sqrt(2), abs=1e-6)
    assert r[0, 3] == pytest.approx(-1.0, abs=1e-6)
    assert r[1, 3] == pytest.approx(-1 / math.sqrt(2), abs=1e-6)
    assert np.isnan(r[0, 2]) and np.isnan(r[2, 2])  # a zero pattern has no direction
    assert r[0, 0] == pytest.approx(1.0)


def test_histogram_density_smoothing_by_hand():
    # 4 bins on [-1, 1] (width 0.5); values fall into bins 0, 3, 3; smoothing 1:
    # q = (count + 1) / (3 + 4) / 0.5 = [2, 1, 1, 3] / 3.5
    q = histogram_density(np.array([-0.9, 0.6, 1.0, np.nan]), bins=4, smoothing=1.0)
    np.testing.assert_allclose(q, np.array([2, 1, 1, 3]) / 3.5)
    assert (q * 0.5).sum() == pytest.approx(1.0)


def test_kl_against_uniform_q_closed_form():
    # Q uniform on [-1, 1] (density 1/2), P = N(0, 0.1^2) (all its mass inside):
    # KL = -H(P) + log 2 = -0.5 log(2 pi e 0.01) + log 2 = 1.57676...
    q = np.full(40, 0.5)
    expected = -0.5 * math.log(2 * math.pi * math.e * 0.01) + math.log(2)
    assert kl_gaussian_histogram(0.0, 0.1, q) == pytest.approx(expected, abs=1e-4)
    assert expected == pytest.approx(1.5768, abs=1e-4)


def test_kl_against_two_bin_q_by_hand():
    # Q: density 0.8 on [-1, 0), 0.2 on [0, 1]. P = N(0, sigma) very wide -> nearly uniform 1/2:
    # KL ~ 0.5 log(0.5/0.8) + 0.5 log(0.5/0.2) = 0.5 log(2.5/1.6) = 0.22314
    q = np.array([0.8, 0.2])
    assert kl_gaussian_histogram(0.0, 1e4, q) == pytest.approx(0.5 * math.log(2.5 / 1.6), abs=1e-5)


def test_kl_rejects_bad_inputs():
    with pytest.raises(ValueError, match="sigma"):
        kl_gaussian_histogram(0.0, 0.0, np.full(4, 0.5))
    with pytest.raises(ValueError, match="q_density"):
        kl_gaussian_histogram(0.0, 0.1, np.array([1.0, 0.0]))


def test_attribute_kl_is_mean_over_labelled_neighbours():
    kl = np.array([[0, 1.0, 3.0], [1.0, 0, 5.0], [3.0, 5.0, 0]])
    lab = np.array([[0, 1, 1], [1, 0, 0], [1, 0, 0]], dtype=bool)
    out = attribute_kl(kl, lab)
    np.testing.assert_allclose(out, [2.0, 1.0, 3.0])  # (1+3)/2, 1/1, 3/1
    assert np.isnan(attribute_kl(kl, np.zeros((3, 3), bool))).all()


# ---------------------------------------------------------------------------------------------
# masks on planted contributions
def _planted_contributions(rng, m=200, n_units=60, support=(3, 7, 11), noise=0.01):
    c = noise * rng.standard_normal((m, n_units))
    c[:, list(support)] += rng.uniform(0.5, 1.5, size=(m, len(support)))
    return c


@pytest.mark.parametrize("selection", ["greedy", "lars"])
def test_select_mask_recovers_planted_units(selection):
    rng = np.random.default_rng(0)
    c = _planted_contributions(rng)
    mask = select_mask(c, selection=selection, l1_penalty=1e-3, max_units=20)
    assert np.flatnonzero(mask).tolist() == [3, 7, 11]


def test_select_mask_budget_and_penalty():
    rng = np.random.default_rng(1)
    c = _planted_contributions(rng, support=(1, 2, 3, 4, 5))
    c[:, 1] *= 3  # the strongest unit enters first
    assert np.flatnonzero(select_mask(c, max_units=1)).tolist() == [1]
    assert select_mask(c, l1_penalty=10.0).sum() == 0  # price of one unit above any gain
    assert select_mask(np.zeros((5, 4))).sum() == 0
    with pytest.raises(ValueError, match="selection"):
        select_mask(c, selection="omp")
    with pytest.raises(ValueError, match="l1_penalty"):
        select_mask(c, l1_penalty=-1.0)


def test_contributions_shape_check():
    with pytest.raises(ValueError, match="gradients"):
        contributions(np.ones((3, 4)), np.ones((3, 5)))


# ---------------------------------------------------------------------------------------------
# mining on planted gradients
N_ATTR = 6
SHAPE = (2, 5, 6)  # (C, H, W): 60 units, groups of 8 units per attribute


def _group(k):
    return np.arange(8 * k, 8 * k + 8)


def _planted_gradients(rng, m, share_4_5: float, shares=None):
    """Attribute k uses its own unit group; ``shares[(i, j)] = w`` makes attribute i also use group j
    with weight w (sign = direction). Default: 1 uses half of 0's group (positive), 3 uses half of 2's
    group with the opposite sign (negative), and 4 uses 5's group with weight ``share_4_5`` (the
    planted bias)."""
    n_units = int(np.prod(SHAPE))
    acts = rng.uniform(0.5, 1.5, size=(m, n_units))
    grads = 0.02 * rng.standard_normal((m, N_ATTR, n_units))
    for k in range(N_ATTR):
        grads[:, k, _group(k)] += rng.uniform(0.5, 1.5, size=(m, 8))
    if shares is None:
        grads[:, 1, _group(0)[:4]] += rng.uniform(0.5, 1.5, size=(m, 4))
        grads[:, 3, _group(2)[:4]] -= rng.uniform(0.5, 1.5, size=(m, 4))
        grads[:, 4, _group(5)] += share_4_5 * rng.uniform(0.5, 1.5, size=(m, 8))
    else:
        for (i, j), w in shares.items():
            grads[:, i, _group(j)] += w * rng.uniform(0.5, 1.5, size=(m, 8))
    return acts.reshape(m, *SHAPE), grads.reshape(m, N_ATTR, *SHAPE)


def _attributes(rng, m):
    attrs = (rng.random((m, N_ATTR)) < 0.5).astype(np.float32)
    # pair (4, 5): (-,+) rare, (+,-) common in training
    attrs[:, 5] = rng.random(m) < 0.5
    attrs[:, 4] = np.where(attrs[:, 5] > 0, rng.random(m) < 0.98, rng.random(m) < 0.4)
    return attrs


@pytest.fixture(scope="module")
def planted():
    rng = np.random.default_rng(0)
    m = 240
    acts, grads = _planted_gradients(rng, m, share_4_5=1.5)
    attrs = _attributes(rng, m)
    names = [f"a{k}" for k in range(N_ATTR)]
    miner = RelationMiner(progress=False, max_units=32).fit(acts, grads, attrs, names)
    return miner, acts, grads, attrs, names


def test_masks_select_the_planted_groups(planted):
    miner = planted[0]
    assert miner.masks_.shape == (N_ATTR, 60)
    assert miner.unit_shape_ == SHAPE
    assert set(np.flatnonzero(miner.masks_[0])) == set(_group(0))
    assert set(np.flatnonzero(miner.masks_[1])) == set(_group(1)) | set(_group(0)[:4])
    assert set(np.flatnonzero(miner.masks_[4])) == set(_group(4)) | set(_group(5))
    # units that lower the score (negative contributions) are part of the pattern too
    assert set(np.flatnonzero(miner.masks_[3])) == set(_group(3)) | set(_group(2)[:4])


def test_relations_follow_the_planted_sharing(planted):
    miner = planted[0]
    assert miner.relations_.shape == (240, N_ATTR, N_ATTR)
    assert miner.means_[0, 1] > 0.3  # shared units, same sign
    assert miner.means_[2, 3] < -0.3  # shared units, opposite sign
    assert abs(miner.means_[0, 2]) < 0.05  # disjoint masks -> orthogonal
    assert miner.means_[4, 5] > 0.4  # the planted bias
    np.testing.assert_allclose(miner.means_, miner.means_.T, atol=1e-6)


def test_q_uses_images_where_either_attribute_is_present(planted):
    miner, _, _, attrs, _ = planted
    either = (attrs[:, 0] > 0) | (attrs[:, 1] > 0)
    assert miner.n_images_[0, 1] == either.sum()
    rel = miner.relations_[either, 0, 1]
    assert miner.means_[0, 1] == pytest.approx(rel.mean(), abs=1e-5)
    assert miner.histograms_[0, 1].sum() == either.sum()


def test_relation_matches_cosine_of_masked_gradients(planted):
    miner, _, grads, _, _ = planted
    v = miner.inference_patterns(grads[:3]).reshape(3, N_ATTR, -1)
    a, b = v[1, 0], v[1, 4]
    expected = a @ b / np.linalg.norm(a) / np.linalg.norm(b)
    assert miner.relations_[1, 0, 4] == pytest.approx(expected, abs=1e-5)


def _not_related_graph(names, planted_level="not related"):
    g = RelationGraph(names)
    for i in range(N_ATTR):
        for j in range(i + 1, N_ATTR):
            g.set(i, j, "not related")
    g.set(0, 1, "probably positive")
    g.set(4, 5, planted_level)
    g.set(2, 3, "probably negative")
    return g


def test_diagnose_ranks_planted_pair_first_as_failure_mode_with_rare_cell(planted):
    miner, *_, names = planted
    g = _not_related_graph(names)
    with pytest.warns(UserWarning, match="single labelled pair"):
        diag = miner.diagnose(g)
    top = diag.pairs.iloc[0]
    assert (top.attr_i, top.attr_j) == ("a4", "a5")
    assert top.kind == "failure mode"
    counts = miner.mode_counts_[4, 5]
    assert counts[0, 1] < counts[1, 0]  # as planted: (-,+) is the rare opposite cell
    assert (top.a, top.b) == (-1, 1)  # positive relation -> rarer of (+,-) and (-,+)
    assert list(diag.failure_modes.attr_i) == ["a4"]
    assert len(diag.pairs) == len(g) == 15
    # KL per attribute: a4 and a5 carry the bias
    assert set(diag.attribute_kl.nlargest(2).index) == {"a4", "a5"}
    nr = diag.level_stats.loc["not related"]
    assert nr.n_pairs == 13


def test_blind_spot_when_expected_relation_is_missing():
    rng = np.random.default_rng(2)
    # a positive chain 0-1-2-3 is encoded; 4 and 5 use disjoint units
    acts, grads = _planted_gradients(rng, 200, 0.0, shares={(1, 0): 1.0, (2, 1): 1.0, (3, 2): 1.0})
    attrs = _attributes(rng, 200)
    names = [f"a{k}" for k in range(N_ATTR)]
    miner = RelationMiner(progress=False, max_units=32).fit(acts, grads, attrs, names)
    g = RelationGraph(names)
    for i in range(N_ATTR):
        for j in range(i + 1, N_ATTR):
            g.set(i, j, "not related")
    for i, j in [(0, 1), (1, 2), (2, 3), (4, 5)]:
        g.set(i, j, "probably positive")  # (4, 5) is expected positive but not encoded
    diag = miner.diagnose(g)
    row = diag.pairs[(diag.pairs.attr_i == "a4") & (diag.pairs.attr_j == "a5")].iloc[0]
    assert abs(row["mean"]) < 0.2 and row.mu_level > 0.2
    assert row.kind == "blind spot"
    assert list(zip(diag.blind_spots.attr_i, diag.blind_spots.attr_j)) == [("a4", "a5")]
    assert diag.pairs.index[(diag.pairs.attr_i == "a4") & (diag.pairs.attr_j == "a5")][0] == 0


def test_unbiased_pair_is_not_flagged():
    rng = np.random.default_rng(3)
    acts, grads = _planted_gradients(rng, 200, share_4_5=0.0)
    attrs = _attributes(rng, 200)
    names = [f"a{k}" for k in range(N_ATTR)]
    miner = RelationMiner(progress=False, max_units=32).fit(acts, grads, attrs, names)
    with pytest.warns(UserWarning):
        diag = miner.diagnose(_not_related_graph(names))
    row = diag.pairs[(diag.pairs.attr_i == "a4") & (diag.pairs.attr_j == "a5")].iloc[0]
    assert row.kind == ""
    assert diag.pairs.index[(diag.pairs.attr_i == "a4") & (diag.pairs.attr_j == "a5")][0] >= 3


def test_fit_bad_inputs():
    rng = np.random.default_rng(0)
    acts, grads = _planted_gradients(rng, 20, 0.0)
    attrs = _attributes(rng, 20)
    with pytest.raises(ValueError, match="gradients"):
        RelationMiner(progress=False).fit(acts, grads[:, :, :1], attrs)
    with pytest.raises(ValueError, match="attributes"):
        RelationMiner(progress=False).fit(acts, grads, attrs[:, :3])
    with pytest.raises(ValueError, match="attributes"):
        RelationMiner(progress=False).fit(acts, grads, attrs + 2)
    with pytest.raises(ValueError, match="attribute_names"):
        RelationMiner(progress=False).fit(acts, grads, attrs, ["x"])
    with pytest.raises(ValueError, match="selection"):
        RelationMiner(selection="nope", progress=False).fit(acts, grads, attrs)
    attrs[:, 2] = 0
    with pytest.warns(UserWarning, match=r"\['attr2'\] have no positive images"):
        RelationMiner(progress=False).fit(acts, grads, attrs)
    with pytest.raises(NotFittedError, match="not fitted yet: call fit"):
        RelationMiner().diagnose(RelationGraph(["a", "b"]))


def test_diagnose_checks_graph_names(planted):
    miner = planted[0]
    with pytest.raises(ValueError, match="attribute names"):
        miner.diagnose(RelationGraph(["x", "y"]))


def test_pair_without_positive_images_has_undefined_kl():
    rng = np.random.default_rng(5)
    acts, grads = _planted_gradients(rng, 60, 0.0)
    attrs = _attributes(rng, 60)
    attrs[:, 0] = 0
    attrs[:, 2] = 0
    names = [f"a{k}" for k in range(N_ATTR)]
    with pytest.warns(UserWarning, match="no positive images"):
        miner = RelationMiner(progress=False).fit(acts, grads, attrs, names)
    g = RelationGraph(names)
    g.set(0, 2, "not related")
    g.set(1, 3, "not related")
    g.set(1, 4, "not related")
    with pytest.warns(UserWarning, match="Q and the KL are undefined"):
        diag = miner.diagnose(g)
    row = diag.pairs[(diag.pairs.attr_i == "a0")].iloc[0]
    assert np.isnan(row.kl)


# ---------------------------------------------------------------------------------------------
# heat maps
def test_inference_map_and_colours():
    pattern = np.zeros((2, 2, 2))
    pattern[0, 0, 0] = 1.0
    pattern[1, 0, 0] = 1.0
    pattern[0, 1, 1] = -3.0
    heat = inference_map(pattern)
    np.testing.assert_allclose(heat, [[2.0, 0.0], [0.0, -3.0]])
    rgb = heatmap_rgb(heat, alpha=1.0)
    assert rgb.dtype == np.uint8 and rgb.shape == (2, 2, 3)
    assert tuple(rgb[1, 1]) == (0, 0, 255)  # most negative: full blue
    assert rgb[0, 0, 0] == 255 and rgb[0, 0, 2] < rgb[0, 0, 0]  # positive: red
    assert tuple(rgb[0, 1]) == (255, 255, 255)  # zero: untouched
    img = np.full((8, 8, 3), 128, np.uint8)
    assert heatmap_rgb(heat, image=img).shape == (8, 8, 3)


# ---------------------------------------------------------------------------------------------
# annotation files
NAMES = ["smiling", "black hair", "blond hair", "hat"]


def test_graph_roundtrip_and_atomic_save(tmp_path):
    g = RelationGraph(NAMES, annotator="ann")
    g.set("black hair", "blond hair", "definitely negative")
    g.set("hat", "smiling", 2)
    assert g.get("smiling", "hat") == "not related"
    assert len(g) == 2 and g.n_pairs == 6
    path = g.save(tmp_path / "sub" / "rel.json")
    assert [p.name for p in path.parent.iterdir()] == ["rel.json"]  # no temporary file left
    data = json.loads(path.read_text())
    assert data["schema_version"] == 1
    assert RelationGraph.load(path, NAMES) == g
    g.clear("hat", "smiling")
    assert g.get("hat", "smiling") is None


def test_load_partial_graph_against_model_names(tmp_path):
    g = RelationGraph(NAMES[:2])
    g.set(0, 1, "not related")
    path = g.save(tmp_path / "partial.json")
    full = RelationGraph.load(path, NAMES)
    assert full.attribute_names == NAMES
    assert full.get("smiling", "black hair") == "not related"


def test_load_rejects_unknown_names_and_conflicts(tmp_path):
    g = RelationGraph(NAMES)
    g.set(0, 1, "not related")
    data = g.to_dict()
    data["edges"].append({"a": "smiling", "b": "wings", "level": "not related"})
    with pytest.raises(ValueError, match=r"\['wings'\].*model does not have"):
        RelationGraph.from_dict(data, NAMES)
    data = g.to_dict()
    data["edges"].append({"a": "black hair", "b": "smiling", "level": "probably positive"})
    with pytest.raises(ValueError, match="labelled twice with different levels"):
        RelationGraph.from_dict(data, NAMES)
    data = g.to_dict()
    data["edges"].append({"a": "black hair", "b": "smiling", "level": "not related"})  # same level: fine
    assert len(RelationGraph.from_dict(data, NAMES)) == 1
    data["schema_version"] = 99
    with pytest.raises(ValueError, match="schema_version"):
        RelationGraph.from_dict(data, NAMES)
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="not a valid JSON"):
        RelationGraph.load(bad)
    with pytest.raises(ValueError, match="level"):
        g.set(0, 2, "maybe")
    with pytest.raises(ValueError, match="two different attributes"):
        g.set(1, 1, "not related")


def test_merge_reports_agreement_per_pair():
    a, b, c = (RelationGraph(NAMES, annotator=x) for x in "abc")
    for g in (a, b, c):
        g.set("black hair", "blond hair", "definitely negative")
    a.set("smiling", "hat", "not related")
    b.set("smiling", "hat", "not related")
    c.set("smiling", "hat", "probably positive")
    a.set("hat", "blond hair", "probably negative")
    b.set("hat", "blond hair", "probably positive")  # tie 1-1: lower median of (1, 3) -> 1
    merged, table = merge_annotations([a, b, c])
    assert merged.get("smiling", "hat") == "not related"
    assert merged.get("blond hair", "black hair") == "definitely negative"
    assert merged.get("hat", "blond hair") == "probably negative"
    row = table[(table.a == "smiling") & (table.b == "hat")].iloc[0]
    assert row.n_votes == 3 and row.agreement == pytest.approx(2 / 3)
    assert table[table.a == "black hair"].iloc[0].agreement == 1.0


# ---------------------------------------------------------------------------------------------
# failure-mode cells, evaluation, entropy baseline
def test_mode_counts_and_failure_cell_by_hand():
    signs = to_signs(np.array([[1, 1], [1, 0], [0, 1], [0, 1], [0, 0]]))
    c = mode_counts(signs)[0, 1]
    np.testing.assert_array_equal(c, [[1, 2], [1, 1]])  # [a][b], index 0 = -1
    assert failure_mode_cell(0.5, c) == (1, -1)  # (+,-) has 1 < (-,+) 2
    assert failure_mode_cell(-0.5, np.array([[3, 0], [0, 1]])) == (1, 1)
    assert failure_mode_cell(-0.5, np.array([[1, 0], [0, 3]])) == (-1, -1)


def test_mode_accuracy_drop_by_hand():
    true = np.array([[1, -1], [1, -1], [1, 1], [1, 1], [-1, -1]])
    pred = np.array([[-1, -1], [1, 1], [1, 1], [1, 1], [-1, -1]])
    out = mode_accuracy_drop(pred, true, 0, 1, 1, -1)
    # Acc(Y0 | Y0*=+1) = 3/4; Acc(Y1 | Y1*=-1) = 2/3 -> ordinary = (0.75 + 0.6667)/2
    # in mode (rows 0,1): Acc(Y0) = 1/2, Acc(Y1) = 1/2 -> 0.5
    assert out["ordinary"] == pytest.approx((0.75 + 2 / 3) / 2)
    assert out["in_mode"] == pytest.approx(0.5)
    assert out["decrease"] == pytest.approx((0.75 + 2 / 3) / 2 - 0.5)
    assert out["n_mode"] == 2


def test_entropy_baseline_by_hand():
    # pair (0,1): cells (+,+)=2, (+,-)=1, (-,+)=1, (-,-)=0 -> rarest (-,-); entropy over the first
    # three: H(1/2, 1/4, 1/4) = 1.5 log 2. pair (0,2): (+,+)=3, (-,-)=1 -> H(1) = 0.
    attrs = np.array([[1, 1, 1], [1, 1, 1], [1, 0, 1], [0, 1, 0]])
    table = entropy_baseline(attrs, ["x", "y", "z"])
    top = table.iloc[0]
    assert (top.i, top.j) == (0, 1)
    assert top.entropy == pytest.approx(1.5 * math.log(2))
    assert (top.a, top.b) == (-1, -1)
    row = table[(table.i == 0) & (table.j == 2)].iloc[0]
    assert row.entropy == pytest.approx(0.0)


def test_evaluate_modes_mean_decrease():
    true = np.array([[1, 0], [1, 0], [1, 1], [1, 1], [0, 0]])
    pred = np.array([[0, 0], [1, 1], [1, 1], [1, 1], [0, 0]])
    modes = pd.DataFrame({"i": [0], "j": [1], "a": [1], "b": [-1]})
    out = evaluate_modes(modes, pred, true, top=1)
    assert out.decrease.iloc[0] == pytest.approx((0.75 + 2 / 3) / 2 - 0.5)
    with pytest.raises(ValueError, match="pred_attributes"):
        evaluate_modes(modes, pred[:, :1], true)


def test_density_from_counts_requires_positive_smoothing():
    with pytest.raises(ValueError, match="smoothing"):
        density_from_counts(np.ones(4), 0.0)


# ---------------------------------------------------------------------------------------------
# through a torch model: per-image gradients of all outputs, streamed fit_model
def _tiny_model():
    import torch
    from torch import nn

    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(4, 4, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(2),
        nn.Flatten(),
        nn.Linear(16, 5),
    ).eval()


def test_output_gradients_match_single_backward_passes():
    import torch

    from failwidgets.compute import output_gradients

    model = _tiny_model()
    x = torch.rand(3, 3, 8, 8)
    acts, grads = output_gradients(model, x, "0", progress=False)
    assert grads.shape == (3, 5, 4, 8, 8)
    for img in range(3):
        for out in range(5):
            a = model[0](x[img : img + 1]).detach().requires_grad_(True)
            y = model[1:](a)[0, out]
            (g,) = torch.autograd.grad(y, a)
            torch.testing.assert_close(grads[img, out], g[0], atol=1e-5, rtol=0)
            torch.testing.assert_close(acts[img], a[0].detach(), atol=1e-6, rtol=0)


def test_fit_model_streams_to_the_same_relations_as_fit():
    import torch

    from failwidgets.compute import output_gradients

    model = _tiny_model()
    x = torch.rand(40, 3, 8, 8)
    attrs = (np.random.default_rng(0).random((40, 5)) < 0.5).astype(np.float32)
    streamed = RelationMiner(progress=False, batch_size=4, mask_images=16).fit_model(model, x, "0", attrs)
    acts, grads = output_gradients(model, x, "0", progress=False)
    direct = RelationMiner(progress=False, mask_images=16).fit(acts, grads, attrs)
    np.testing.assert_array_equal(streamed.masks_, direct.masks_)
    np.testing.assert_allclose(streamed.relations_, direct.relations_, atol=1e-5, equal_nan=True)
    assert streamed.unit_shape_ == (4, 8, 8)
    assert streamed.masks_.any(axis=1).all()
    with pytest.raises(ValueError, match="attributes"):
        RelationMiner(progress=False).fit_model(model, x, "0", attrs[:, :3])
    with pytest.raises(ValueError, match="layer|conv9"):
        RelationMiner(progress=False).fit_model(model, x, "conv9", attrs)


def test_graph_from_world_relations():
    from failwidgets.world import ATTRIBUTE_NAMES
    from failwidgets.world.attributes import attribute_relations

    g = RelationGraph.from_relations(ATTRIBUTE_NAMES, attribute_relations())
    assert len(g) == g.n_pairs  # every pair of the world has a true relation
    assert g.get("striped", "large") == "not related"  # independent factors
    assert g.get("red", "green") == "definitely negative"  # one-hot colour
    assert g.get("red", "warm") == "probably positive"
    part = RelationGraph.from_relations(ATTRIBUTE_NAMES, attribute_relations(), pairs=[("large", "striped")])
    assert len(part) == 1
    with pytest.raises(ValueError, match="unknown relation kind"):
        RelationGraph.from_relations(["a", "b"], {("a", "b"): "sideways"})


def test_fit_model_cache_reuses_masks_and_relations(tmp_path, monkeypatch):
    import torch

    from failwidgets.compute import EmbeddingCache
    from failwidgets.methods import relations as rel_module

    model = _tiny_model()
    x = torch.rand(20, 3, 8, 8)
    attrs = (np.random.default_rng(0).random((20, 5)) < 0.5).astype(np.float32)
    cache = EmbeddingCache(tmp_path)
    plain = RelationMiner(progress=False, mask_images=10).fit_model(model, x, "0", attrs)
    first = RelationMiner(progress=False, mask_images=10).fit_model(model, x, "0", attrs, cache=cache, data_id="x20")
    assert [e.parts["what"] for e in cache.entries()] == ["zhang2018_relations"]
    calls = []
    original = rel_module.RelationMiner._mine_model
    monkeypatch.setattr(rel_module.RelationMiner, "_mine_model", lambda self, *a: calls.append(1) or original(self, *a))
    # a hit: nothing recomputed, identical results; Q parameters (bins) are not part of the key
    again = RelationMiner(progress=False, mask_images=10, bins=21).fit_model(
        model, x, "0", attrs, cache=cache, data_id="x20"
    )
    assert calls == []
    for m in (first, again):
        np.testing.assert_array_equal(m.masks_, plain.masks_)
        np.testing.assert_allclose(m.relations_, plain.relations_, atol=1e-6, equal_nan=True)
        assert m.unit_shape_ == (4, 8, 8)
    assert again.histograms_.shape == (5, 5, 21)
    # a different mask parameter, data id or model is a miss
    RelationMiner(progress=False, mask_images=12).fit_model(model, x, "0", attrs, cache=cache, data_id="x20")
    RelationMiner(progress=False, mask_images=10).fit_model(model, x, "0", attrs, cache=cache, data_id="other")
    with torch.no_grad():
        model[0].bias.add_(0.1)
    RelationMiner(progress=False, mask_images=10).fit_model(model, x, "0", attrs, cache=cache, data_id="x20")
    assert len(calls) == 3 and len(cache.entries()) == 4
    with pytest.raises(ValueError, match="outputs: cannot be combined with cache"):
        RelationMiner(progress=False).fit_model(model, x, "0", attrs, outputs=lambda y: y, cache=cache)
