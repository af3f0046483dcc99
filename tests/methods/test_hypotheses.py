"""Hypotheses and slice evidence: Wilson intervals, Fisher exact tests, phrase-ranked slices on held-out data."""

import numpy as np
import pandas as pd
import pytest
from scipy.stats import fisher_exact

from failwidgets.methods import slice_evidence, wilson_interval
from failwidgets.methods.hypotheses import phrase_similarity, test_hypothesis


def test_wilson_interval_matches_the_formula_and_edge_cases():
    k, n, z = 12, 40, 1.959963984540054
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    lo, hi = wilson_interval(k, n)
    assert lo == pytest.approx(centre - half, abs=1e-9) and hi == pytest.approx(centre + half, abs=1e-9)
    lo0, hi0 = wilson_interval(0, 20)
    assert lo0 == pytest.approx(0.0, abs=1e-12) and 0.1 < hi0 < 0.2  # Wilson is not degenerate at 0
    assert all(np.isnan(wilson_interval(0, 0)))
    with pytest.raises(ValueError, match="errors"):
        wilson_interval(5, 3)
    with pytest.raises(ValueError, match="confidence"):
        wilson_interval(1, 3, confidence=1.0)


def test_slice_evidence_counts_and_exact_test():
    errors = np.zeros(100, bool)
    errors[:15] = True  # 15 of the first 20 are errors
    errors[50:55] = True  # 5 of the other 80
    inside = np.arange(20)
    ev = slice_evidence(inside, errors)
    assert (ev.n_inside, ev.errors_inside, ev.n_outside, ev.errors_outside) == (20, 15, 80, 5)
    assert ev.rate_inside == 0.75 and ev.rate_outside == 5 / 80
    assert ev.p_value == pytest.approx(fisher_exact([[15, 5], [5, 75]]).pvalue)
    assert ev.significant() and ev.difference > 0
    assert ev.ci_inside[0] < 0.75 < ev.ci_inside[1]
    mask = np.zeros(100, bool)
    mask[inside] = True
    assert slice_evidence(mask, errors) == ev  # mask or indices: the same
    among = np.arange(60)
    ev2 = slice_evidence(inside, errors, among=among)  # outside = among minus inside
    assert (ev2.n_outside, ev2.errors_outside) == (40, 5)
    assert "20 images; error 75% [" in ev.summary() and ev.to_dict()["n_inside"] == 20
    empty = slice_evidence([], errors)
    assert empty.n_inside == 0 and np.isnan(empty.p_value) and np.isnan(empty.rate_inside)
    with pytest.raises(ValueError, match="inside"):
        slice_evidence([100], errors)
    with pytest.raises(ValueError, match="inside"):
        slice_evidence(np.ones(5, bool), errors)


class AxisEncoder:
    """Text side: a phrase naming an axis ("axis 3") embeds to that unit vector."""

    def __init__(self, dim):
        self.dim = dim

    def encode_texts(self, texts):
        out = np.zeros((len(texts), self.dim), np.float32)
        for r, t in enumerate(texts):
            out[r, int(t.split()[-1])] = 1.0
        return out


def _planted(seed=0, n=3000, dim=8):
    """Class 0 images with a large component on axis 2 fail 70% of the time, the others 10%."""
    rng = np.random.default_rng(seed)
    emb = rng.normal(size=(n, dim)).astype(np.float32)
    labels = rng.integers(0, 3, n)
    hard = emb[:, 2] > 0.8
    err = rng.random(n) < np.where((labels == 0) & hard, 0.7, 0.1)
    preds = np.where(err, (labels + 1) % 3, labels)
    return emb, labels, preds, hard


def test_phrase_ranked_slice_finds_the_planted_failure_on_heldout_rows():
    emb, labels, preds, hard = _planted()
    res = test_hypothesis("axis 2", AxisEncoder(8), emb, labels, preds, 0, top_fraction=0.2, heldout=0.5)
    ev = res.evidence
    assert res.kind == "text" and ev.significant(1e-6) and ev.rate_inside > ev.rate_outside + 0.3
    assert set(res.slice_indices) <= set(res.heldout_indices)
    assert np.all(labels[res.heldout_indices] == 0)
    assert hard[res.slice_indices].mean() > 0.9  # the slice is the planted cell
    held_share = len(res.heldout_indices) / np.sum(labels == 0)
    assert held_share == pytest.approx(0.5, abs=0.01)
    assert ev.n_inside == pytest.approx(0.2 * len(res.heldout_indices), rel=0.25)
    sims = phrase_similarity("axis 2", AxisEncoder(8), emb, rows=res.slice_indices)
    assert np.all(np.diff(sims) <= 1e-7)  # most similar first
    null = test_hypothesis("axis 5", AxisEncoder(8), emb, labels, preds, 0, heldout=0.5)
    assert null.evidence.p_value > 0.01  # an unrelated axis: no effect
    # a boolean held-out mask: the threshold comes from the other rows
    mask = np.arange(len(labels)) % 2 == 0
    res_m = test_hypothesis("axis 2", AxisEncoder(8), emb, labels, preds, 0, heldout=mask)
    assert np.all(mask[res_m.heldout_indices]) and res_m.evidence.significant(1e-4)


def test_metadata_filter_for_encoders_without_a_text_side():
    emb, labels, preds, hard = _planted()
    meta = pd.DataFrame({"hard": hard, "value": emb[:, 2]})
    for encoder in (None, object()):
        res = test_hypothesis("hard", encoder, None, labels, preds, 0, metadata=meta)
        assert res.kind == "metadata" and res.evidence.significant(1e-6)
        assert np.all(hard[res.slice_indices])
    res = test_hypothesis("value > 0.8", None, None, labels, preds, 0, metadata=meta)
    assert res.n_matching == int(np.sum(hard & (labels == 0)))
    with pytest.raises(ValueError, match="metadata"):
        test_hypothesis("hard", None, None, labels, preds, 0)
    with pytest.raises(ValueError, match="phrase"):
        test_hypothesis("nonexistent > 1", None, None, labels, preds, 0, metadata=meta)
    with pytest.raises(ValueError, match="phrase"):
        test_hypothesis("value", None, None, labels, preds, 0, metadata=meta)  # not boolean


def test_bad_inputs_name_the_argument():
    emb, labels, preds, _ = _planted(n=300)
    enc = AxisEncoder(8)
    with pytest.raises(ValueError, match="top_fraction"):
        test_hypothesis("axis 1", enc, emb, labels, preds, 0, top_fraction=0)
    with pytest.raises(ValueError, match="class_index"):
        test_hypothesis("axis 1", enc, emb, labels, preds, 7)
    with pytest.raises(ValueError, match="image_embeddings"):
        test_hypothesis("axis 1", enc, emb[:10], labels, preds, 0)
    with pytest.raises(ValueError, match="image_embeddings"):
        test_hypothesis("axis 1", AxisEncoder(9), np.zeros((300, 9), np.float32)[:, :8], labels, preds, 0)
    with pytest.raises(TypeError, match="heldout"):
        test_hypothesis("axis 1", enc, emb, labels, preds, 0, heldout=np.arange(10))
    with pytest.raises(ValueError, match="phrase"):
        test_hypothesis("  ", enc, emb, labels, preds, 0)
    bad = emb.copy()
    bad[np.flatnonzero(labels == 0)[0], 1] = np.nan
    with pytest.raises(ValueError, match="image_embeddings"):
        test_hypothesis("axis 1", enc, bad, labels, preds, 0)


def test_precomputed_row_norms_give_the_same_slice():
    from failwidgets.methods.hypotheses import embedding_norms

    emb, labels, preds, _ = _planted()
    emb = emb * np.random.default_rng(3).uniform(0.5, 2.0, size=(len(emb), 1)).astype(np.float32)
    norms = embedding_norms(emb)
    assert np.allclose(norms, np.linalg.norm(emb, axis=1), rtol=1e-5)
    for frac in (0.2, 0.9):
        a = test_hypothesis("axis 2", AxisEncoder(8), emb, labels, preds, 0, top_fraction=frac)
        b = test_hypothesis("axis 2", AxisEncoder(8), emb, labels, preds, 0, top_fraction=frac, row_norms=norms)
        assert np.array_equal(a.slice_indices, b.slice_indices) and a.evidence == b.evidence
    few = np.where(labels == 0, 0, np.random.default_rng(4).integers(1, 6, len(labels)))  # class 0 < 1/4 of rows
    a = test_hypothesis("axis 2", AxisEncoder(8), emb, few, preds, 0)
    b = test_hypothesis("axis 2", AxisEncoder(8), emb, few, preds, 0, row_norms=norms)
    assert np.array_equal(a.slice_indices, b.slice_indices)
    few = np.where(np.arange(len(labels)) % 5 == 0, 0, 1)
    c = test_hypothesis("axis 2", AxisEncoder(8), emb, few, few, 0, row_norms=norms)
    d = test_hypothesis("axis 2", AxisEncoder(8), emb, few, few, 0)
    assert np.array_equal(c.slice_indices, d.slice_indices) and np.all(few[c.slice_indices] == 0)
    with pytest.raises(ValueError, match="row_norms"):
        test_hypothesis("axis 2", AxisEncoder(8), emb, labels, preds, 0, row_norms=norms[:5])
