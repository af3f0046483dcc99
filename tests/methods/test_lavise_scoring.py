"""LaViSE word scoring: the paper's count and the specificity-corrected PMI, on hand-computed cases."""

import math

import numpy as np
import pytest
import torch

from failwidgets.compute.words import WordSpace
from failwidgets.methods.lavise import (
    LaViSE,
    pmi_scores,
    rank_words,
    score_words,
    top_word_share,
    word_hit_counts,
)


def test_word_hit_counts_hand_computed():
    idx = np.array([[[0, 1], [1, 2], [1, 1]]])  # (U=1, p=3, s=2); image 3 repeats word 1: counted once
    np.testing.assert_array_equal(word_hit_counts(idx, 4), [[1, 3, 1, 0]])
    np.testing.assert_array_equal(word_hit_counts(idx[0], 4), [1, 3, 1, 0])  # (p, s) -> (W,)
    with pytest.raises(ValueError, match="word_indices"):
        word_hit_counts(idx, 2)


def test_pmi_scores_hand_computed():
    # filter: the word on 2 of p = 2 images, the other on none; reference: 4 of M = 4 and 0 of 4
    got = pmi_scores(np.array([[2, 0]]), 2, np.array([4, 0]), 4)
    # p(w|u) = (2+1)/(2+2) = 3/4 and 1/4; p(w) = (4+1)/(4+2) = 5/6 and 1/6
    want = [0.75 * math.log(0.75 / (5 / 6)), 0.25 * math.log(0.25 / (1 / 6))]
    np.testing.assert_allclose(got[0], want, rtol=1e-12)
    np.testing.assert_allclose(got[0], [-0.0790204, 0.1013663], atol=1e-6)
    # smoothing a = 0.5: p(w|u) = 2.5/3, p(w) = 4.5/5
    np.testing.assert_allclose(
        pmi_scores(np.array([[2, 0]]), 2, np.array([4, 0]), 4, smoothing=0.5)[0, 0],
        (2.5 / 3) * math.log((2.5 / 3) / 0.9),
        rtol=1e-12,
    )
    with pytest.raises(ValueError, match="counts"):
        pmi_scores(np.array([[3, 0]]), 2, np.array([4, 0]), 4)
    with pytest.raises(ValueError, match="prior_counts"):
        pmi_scores(np.array([[1, 0]]), 2, np.array([5, 0]), 4)
    with pytest.raises(ValueError, match="smoothing"):
        pmi_scores(np.array([[1, 0]]), 2, np.array([1, 0]), 4, smoothing=0)


def _hub_case():
    # vocabulary: 0 "hub" near every output, 1 "spec" specific to this filter, 2 "rare"
    vocab = ["hub", "spec", "rare"]
    idx = np.array([[[0, 1], [0, 1], [0, 1], [0, 2]]])  # p = 4 top images, s = 2
    cos = np.array([[[0.9, 0.8], [0.9, 0.8], [0.9, 0.8], [0.9, 0.1]]])
    prior = np.array([[0, 1]] + [[0, 2]] * 7)  # M = 8: hub 8/8, spec 1/8, rare 7/8
    return vocab, idx, cos, prior


def test_count_scoring_is_the_paper_and_matches_rank_words():
    vocab, idx, cos, _ = _hub_case()
    got = score_words(idx, cos, vocab, scoring="count")
    assert got == [[("hub", 4), ("spec", 3), ("rare", 1)]]
    assert got[0] == rank_words(idx[0], cos[0], vocab)
    # a count tie goes to the larger summed cosine
    tie = score_words(np.array([[[0, 1], [1, 0]]]), np.array([[[0.5, 0.6], [0.9, 0.2]]]), ["a", "b"])
    assert tie == [[("b", 2), ("a", 2)]]  # b: 0.6 + 0.9 > a: 0.5 + 0.2


def test_pmi_scoring_demotes_the_hub_word():
    vocab, idx, cos, prior = _hub_case()
    got = score_words(idx, cos, vocab, scoring="pmi", prior_indices=prior)
    words = [w for w, _ in got[0]]
    assert words == ["spec", "hub", "rare"]
    # hand-computed: p(w|u) = (c+1)/6 with c = 4, 3, 1; p(w) = (n+1)/10 with n = 8, 1, 7
    want = {
        "hub": 5 / 6 * math.log((5 / 6) / 0.9),
        "spec": 4 / 6 * math.log((4 / 6) / 0.2),
        "rare": 2 / 6 * math.log((2 / 6) / 0.8),
    }
    for w, v in got[0]:
        assert v == pytest.approx(want[w], rel=1e-12)
    with pytest.raises(ValueError, match="prior_indices"):
        score_words(idx, cos, vocab, scoring="pmi")
    with pytest.raises(ValueError, match="scoring"):
        score_words(idx, cos, vocab, scoring="tfidf")


def test_top_word_share():
    assert top_word_share(["a", "b", "a", None]) == (0.5, "a")
    assert top_word_share([None]) == (0.0, None)
    assert math.isnan(top_word_share([])[0])


def _tiny_lavise(word_scoring="count"):
    rng = np.random.default_rng(0)
    feats = np.maximum(rng.standard_normal((30, 6, 3, 3), dtype=np.float32), 0.0)
    space = WordSpace([f"w{i}" for i in range(8)], rng.standard_normal((8, 5)).astype(np.float32))
    concepts = {f"w{i}": rng.random((30, 3, 3)) < 0.4 for i in range(4)}
    lav = LaViSE(space, epochs=2, batch_size=32, p=5, s=3, prior_pairs=64, word_scoring=word_scoring, progress=False)
    return lav.fit(feats, concepts, layer="0"), torch.from_numpy(feats)


def test_explain_keeps_hits_and_rescores_both_ways():
    lav, feats = _tiny_lavise()
    ex = lav.explain(features=feats, methods=("attention", "original"))
    assert ex.scoring == "count"
    idx, cos = ex.word_hits["attention"]
    assert idx.shape == cos.shape == (6, 5, 3) and ex.prior_hits["attention"].shape == (64, 3)
    # the count words are the paper's rank_words of the stored hits
    assert ex.words["attention"][2] == rank_words(idx[2], cos[2], ex.vocabulary)
    pmi = ex.rescore("pmi")
    assert pmi.scoring == "pmi" and ex.scoring == "count"  # a copy; the original is unchanged
    want = score_words(idx, cos, ex.vocabulary, scoring="pmi", prior_indices=ex.prior_hits["attention"])
    assert pmi.words["attention"] == want
    assert pmi.rescore("count").words == ex.words
    assert ex.rescore("count") is ex
    # the estimator parameter gives the same as rescoring
    lav_pmi, _ = _tiny_lavise("pmi")
    assert lav_pmi.explain(features=feats, methods=("attention", "original")).words == pmi.words
    lav.word_scoring = "idf"
    with pytest.raises(ValueError, match="word_scoring"):
        lav.explain(features=feats)


def test_hits_survive_to_dict_and_the_estimator_saves_its_scoring(tmp_path):
    import json

    from failwidgets.methods.lavise import FilterExplanations

    lav, feats = _tiny_lavise("pmi")
    ex = lav.explain(features=feats)
    back = FilterExplanations.from_dict(json.loads(json.dumps(ex.to_dict())))
    assert back.scoring == "pmi" and back.words == ex.words
    assert back.rescore("count").words == ex.rescore("count").words  # re-ranked from the saved hits
    lav.save(tmp_path / "lav.json")
    loaded = LaViSE.load(tmp_path / "lav.json", word_space=lav.word_space)
    assert (loaded.word_scoring, loaded.prior_pairs) == ("pmi", 64)
