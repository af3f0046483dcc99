"""The shipped demo weights: offline loading, recorded accuracies, the planted gap, robustness, VL.

Evaluated on the test split (balanced) of the demo worlds, a few hundred images where attacks are
involved.
"""

import socket
from importlib import resources

import numpy as np
import pytest

from failwidgets.demo import evaluate as ev
from failwidgets.demo import load, load_metadata
from failwidgets.world import WorldConfig, make_world

N_SUBSET = 600


@pytest.fixture(scope="module")
def metadata():
    return load_metadata()


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return load("default", cache=tmp_path_factory.mktemp("cache"), progress=False)


@pytest.fixture(scope="module")
def control(tmp_path_factory):
    return load("control", cache=tmp_path_factory.mktemp("cache"), progress=False)


def test_weights_are_small_package_data_for_the_current_world(metadata):
    weights = resources.files("failwidgets.demo") / "weights"
    files = [weights / m["file"] for m in metadata["models"].values()]
    assert all(f.is_file() for f in files)
    assert sum(len(f.read_bytes()) for f in files) < 15 * 2**20
    # the weights were trained on exactly the worlds this generator produces now
    assert metadata["worlds"]["default"]["fingerprint"] == make_world(WorldConfig.demo()).fingerprint
    assert metadata["worlds"]["control"]["fingerprint"] == make_world(WorldConfig.control()).fingerprint
    assert not metadata["quick"]


def test_load_works_without_network(monkeypatch, tmp_path):
    def refuse(*args, **kwargs):
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    d = load("default", cache=tmp_path, progress=False)
    assert d.variant == "default" and d.world.class_names == d.world["test"].class_names
    assert d.vl.encode_texts(["a red circle"]).shape == (1, 50)
    with pytest.raises(ValueError, match="variant"):
        load("nope", cache=tmp_path)


def test_recorded_accuracy_holds_on_a_subset(demo, control, metadata):
    for d in (demo, control):
        test = d.world["test"]
        acc = ev.accuracy(d.target, test.images[:N_SUBSET], test.labels[:N_SUBSET])
        recorded = metadata["measurements"]["target"][d.variant]["test_accuracy"]
        # binomial standard error of a 600-image subset is <= 2 points; allow 3 of them
        assert abs(acc - recorded) < 0.06, (d.variant, acc, recorded)


def test_planted_shape_background_gap(demo, control):
    biased = ev.bias_gap(demo.target, demo.world)
    unbiased = ev.bias_gap(control.target, control.world)
    assert biased["gap"] >= 20, biased
    assert abs(unbiased["gap"]) < 5, unbiased
    assert biased["n_minority"] > 100 and biased["n_majority"] > 100


def test_robust_model_is_more_robust_than_target(demo):
    test = demo.world["test"]
    x, y = test.images[:300], test.labels[:300]
    attack = dict(eps=0.25, steps=5)
    robust = ev.adversarial_accuracy(demo.robust, x, y, **attack)
    target = ev.adversarial_accuracy(demo.target, x, y, **attack)
    assert robust > target + 0.1, (robust, target)


def test_vl_retrieves_captions_well_over_chance(demo):
    test = demo.world["test"]
    n_captions = len(set(test.captions))
    sub = type("Sub", (), {"images": test.images[:N_SUBSET], "captions": test.captions[:N_SUBSET]})
    top1 = ev.caption_retrieval_top1(demo.vl, sub, candidates=sorted(set(test.captions)))
    assert top1 > 50 / n_captions, top1  # chance is 1 / n_captions (~0.14 %)


#: Captions whose probe word never occurs in a world caption: synonyms of colours, textures,
#: backgrounds, sizes and shapes. Fixed list, failures included (measured on the shipped weights,
#: test split: 14 of 21 have AUC > 0.5, median AUC 0.65; "crimson", "scarlet", "golden", "stripy",
#: "beach" and "tiny" rank matching images *below* chance — GloVe's neighbours of those words are not
#: the world's colour/texture words).
SYNONYM_PROBES = [
    ("a crimson shape", "colour", "red"),
    ("a scarlet shape", "colour", "red"),
    ("a ruby shape", "colour", "red"),
    ("an azure shape", "colour", "blue"),
    ("a navy shape", "colour", "blue"),
    ("a golden shape", "colour", "yellow"),
    ("a lime shape", "colour", "green"),
    ("an emerald shape", "colour", "green"),
    ("a stripy shape", "texture", "striped"),
    ("a banded shape", "texture", "striped"),
    ("a lined shape", "texture", "striped"),
    ("a shape in the ocean", "background", "water"),
    ("a shape in the sea", "background", "water"),
    ("a shape on a beach", "background", "sand"),
    ("a shape on the lawn", "background", "grass"),
    ("a shape in the winter", "background", "snow"),
    ("a big shape", "size", "large"),
    ("a huge shape", "size", "large"),
    ("a tiny shape", "size", "small"),
    ("a round shape", "shape", "circle"),
    ("a box", "shape", "square"),
]


def test_unseen_synonym_captions_rank_matching_images_higher_on_the_whole(demo):
    from failwidgets.demo.text import caption_words

    seen = {w for c in set(demo.world["train"].captions) for w in caption_words(c)}
    aucs = []
    for caption, factor, value in SYNONYM_PROBES:
        assert not set(caption_words(caption)) - {"shape"} <= seen, caption  # the probe word is unseen
        aucs.append(ev.caption_ranking(demo.vl, demo.world["test"], caption, factor, value)["auc"])
    table = {c: round(a, 2) for (c, _, _), a in zip(SYNONYM_PROBES, aucs)}
    assert np.median(aucs) > 0.6, table
    assert np.mean(np.array(aucs) > 0.5) >= 0.6, table
    # the clearest probes: an unseen background word and an unseen size word
    assert table["a shape in the ocean"] > 0.7 and table["a huge shape"] > 0.7, table


def test_demo_outputs_are_cached_and_match_direct_computation(demo):
    preds = demo.predictions("test")
    n_entries = len(demo.cache.entries())
    again = demo.predictions("test")
    assert len(demo.cache.entries()) == n_entries
    np.testing.assert_array_equal(preds, again)
    direct = demo.target(demo.world["test"].as_tensor(range(16))).argmax(1).numpy()
    np.testing.assert_array_equal(preds[:16], direct)
    emb = demo.embeddings("test", "vl")
    assert emb.shape == (len(demo.world["test"]), 50)
    np.testing.assert_allclose(emb[:8], demo.vl.encode_images(demo.world["test"].images[:8], progress=False), atol=1e-5)
    assert demo.embeddings("test", "robust").shape == (len(demo.world["test"]), demo.robust.feature_dim)
    assert demo.accuracy("test") == pytest.approx(float(np.mean(preds == demo.world["test"].labels)))
