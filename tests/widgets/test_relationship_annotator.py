"""RelationshipAnnotator driven like a user: buttons, hotkeys, matrix clicks, filters, files, state."""

from __future__ import annotations

import json

import numpy as np
import pytest
import traitlets

from failwidgets.methods.relations import RelationGraph, RelationMiner
from failwidgets.widgets.relationship_annotator import RelationshipAnnotator
from tests.methods.test_relations import N_ATTR, _attributes, _planted_gradients

NAMES = [f"a{k}" for k in range(N_ATTR)]
PLANTED = {(0, 1), (2, 3), (4, 5)}  # pairs with shared units (|mean r| > 0.3); all others disjoint


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    acts, grads = _planted_gradients(rng, 160, share_4_5=1.5)
    attrs = _attributes(rng, 160)
    miner = RelationMiner(progress=False, max_units=32).fit(acts, grads, attrs, NAMES)
    images = rng.integers(0, 255, size=(160, 20, 24, 3), dtype=np.uint8)
    return miner, grads, attrs, images


@pytest.fixture
def widget(data):
    miner, grads, attrs, images = data
    w = RelationshipAnnotator(miner, images=images[:8], gradients=grads[:8], example_attributes=attrs[:8], n_examples=3)
    yield w
    w.close()


def test_initial_view(widget, data):
    miner = data[0]
    assert "0 of 15 labelled" in widget.counter.value
    np.testing.assert_allclose(widget.matrix.color, miner.means_, atol=1e-6)
    assert widget.matrix_chart.selected_cell == (0, 1)
    assert widget.selected_pair == [0, 1]
    assert len(widget.level_buttons) == 5
    np.testing.assert_array_equal(widget.hist_bars.y, miner.histograms_[0, 1])
    assert len(widget.examples.tiles) == 6  # 3 images x the two attributes' heat maps


def test_label_buttons_counter_and_auto_advance(widget):
    widget.level_buttons[3].click()  # probably positive
    assert widget.graph.get("a0", "a1") == "probably positive"
    assert widget.annotations == [["a0", "a1", "probably positive"]]
    assert "1 of 15 labelled" in widget.counter.value
    assert widget.selected_pair == [0, 2]  # moved on to the next pair
    assert list(widget.cell_marks.text) == ["+", "+"]  # both symmetric cells marked


def test_hotkeys_label_clear_undo_redo(widget):
    widget.auto_advance = False
    widget.selected_pair = [2, 3]
    widget.hotkeys.value = "2"
    assert widget.graph.get("a2", "a3") == "probably negative"
    assert widget.hotkeys.value == ""  # the box clears itself
    widget.hotkeys.value = "0"
    assert widget.graph.get("a2", "a3") is None
    widget.hotkeys.value = "u"
    assert widget.graph.get("a2", "a3") == "probably negative"
    widget.hotkeys.value = "u"
    assert widget.graph.get("a2", "a3") is None
    widget.hotkeys.value = "r"
    assert widget.graph.get("a2", "a3") == "probably negative"
    widget.undo_button.click()
    widget.redo_button.click()
    assert len(widget.graph) == 1
    widget.hotkeys.value = "n"
    assert widget.selected_pair == [2, 4]
    widget.hotkeys.value = "p"
    assert widget.selected_pair == [2, 3]
    widget.hotkeys.value = "x9"
    assert "unknown" in widget.log.text and "no level 9" in widget.log.text


def test_matrix_click_selects_pair(widget):
    widget.matrix.selected = np.array([[5, 2]])
    assert widget.selected_pair == [2, 5]
    assert "a2" in widget.pair_label.value and "a5" in widget.pair_label.value
    widget.matrix.selected = np.array([[3, 3]])  # diagonal: nothing to label
    assert widget.selected_pair == [2, 5]


def test_pair_views(widget):
    widget.pair_view_buttons.value = "informative first"
    assert widget.pair_view == "informative first"
    order = widget.pair_order()
    assert set(order[:3]) == PLANTED
    assert tuple(widget.selected_pair) == order[0]
    widget.pair_view = "unlabelled"
    assert widget.pair_view_buttons.value == "unlabelled"
    widget.selected_pair = [0, 1]
    widget.hotkeys.value = "3"
    assert (0, 1) not in widget.pair_order()
    assert len(widget.pair_order()) == 14
    with pytest.raises(traitlets.TraitError, match="pair_view"):
        widget.pair_view = "nonsense"
    assert widget.pair_view == "unlabelled" and "pair_view" in widget.log.text


def _label_ground_truth(w):
    w.auto_advance = False
    for i in range(N_ATTR):
        for j in range(i + 1, N_ATTR):
            w.selected_pair = [i, j]
            w.hotkeys.value = {(0, 1): "4", (2, 3): "2"}.get((i, j), "3")


def test_diagnosis_panels_after_labelling(widget, data):
    miner, grads, attrs, _ = data
    # unbiased test images; predictions fail on a4 inside the (a4 -, a5 +) mode only
    true = (np.random.default_rng(9).random((400, N_ATTR)) < 0.5).astype(np.float32)
    pred = true.copy()
    mode = (true[:, 4] == 0) & (true[:, 5] == 1)
    pred[mode, 4] = 1
    widget._test_pred, widget._test_true = pred, true
    _label_ground_truth(widget)
    assert "15 of 15 labelled" in widget.counter.value
    assert "a4" in widget.failure_list.value and "a5" in widget.failure_list.value
    assert "Failure modes (1)" in widget.failure_list.value
    # in the mode: Acc(a4) = 0, Acc(a5) = 1 -> 0.5; ordinary: Acc(a4 | a4 -) = 1 - share of the mode
    # among a4-negative images, Acc(a5 | a5 +) = 1
    share = mode.sum() / (true[:, 4] == 0).sum()
    expected = ((1 - share) + 1) / 2 - 0.5
    assert f"accuracy decrease {100 * expected:.1f} points on {mode.sum()} test images" in widget.failure_list.value
    kl = widget.kl_chart.values
    assert set(np.argsort(-kl)[:2]) == {4, 5}
    widget.selected_pair = [4, 5]
    assert "failure mode" in widget.pair_info.value
    assert "KL(P‖Q)" in widget.pair_info.value
    assert np.max(widget.gauss_line.y) > 0  # Gaussian of 'not related' drawn, scaled to counts
    # the Gaussian's area matches the histogram's count
    area = np.trapezoid(widget.gauss_line.y, widget.gauss_line.x) / (2.0 / len(widget.hist_bars.y))
    assert area == pytest.approx(miner.histograms_[4, 5].sum(), rel=0.05)


def test_single_pair_level_warns_in_log(widget):
    widget.auto_advance = False
    widget.selected_pair = [0, 1]
    widget.hotkeys.value = "5"
    assert "single labelled pair" in widget.log.text


def test_state_roundtrip(widget, data):
    widget.auto_advance = False
    widget.selected_pair = [1, 4]
    widget.hotkeys.value = "1"
    widget.pair_view = "unlabelled"
    widget.selected_pair = [3, 5]
    state = widget.to_dict()
    json.dumps(state)
    other = RelationshipAnnotator(data[0])
    other.from_dict(state)
    assert other.graph == widget.graph
    assert other.selected_pair == [3, 5]
    assert other.pair_view == "unlabelled"
    assert "1 of 15" in other.counter.value
    other.close()


def test_autosave_and_reload(tmp_path, data):
    miner = data[0]
    path = tmp_path / "ann.json"
    w = RelationshipAnnotator(miner, autosave_path=path)
    w.selected_pair = [2, 3]
    w.level_buttons[0].click()
    assert RelationGraph.load(path, NAMES).get("a2", "a3") == "definitely negative"
    w.close()
    w2 = RelationshipAnnotator(miner, autosave_path=path)
    assert w2.graph.get("a2", "a3") == "definitely negative"
    w2.close()


def test_save_load_buttons_and_bad_file(tmp_path, widget):
    widget.path_box.value = str(tmp_path / "x.json")
    assert widget.annotation_path.endswith("x.json")
    widget.hotkeys.value = "3"
    widget.save_button.click()
    widget.hotkeys.value = "u"
    assert len(widget.graph) == 0
    widget.load_button.click()
    assert widget.graph.get("a0", "a1") == "not related"
    bad = tmp_path / "bad.json"
    g = RelationGraph(["a0", "wings"])
    g.set(0, 1, "not related")
    g.save(bad)
    widget.path_box.value = str(bad)
    with pytest.raises(ValueError, match="wings"):
        widget.load_button.click()
    assert "wings" in widget.log.text
    assert widget.log.n_errors >= 1


def test_rejects_unfitted_miner_and_bad_pair(data):
    with pytest.raises(ValueError, match="fitted RelationMiner"):
        RelationshipAnnotator(RelationMiner())
    w = RelationshipAnnotator(data[0])
    with pytest.raises(ValueError, match="selected_pair"):
        w.selected_pair = [1, 1]
    with pytest.raises(ValueError, match="graph"):
        RelationshipAnnotator(data[0], graph=RelationGraph(["x", "y"]))
    w.close()


def test_from_model_computes_example_heat_maps():
    import torch

    from tests.methods.test_relations import _tiny_model

    model = _tiny_model()
    x = torch.rand(12, 3, 8, 8)
    attrs = (np.random.default_rng(0).random((12, 5)) < 0.5).astype(np.float32)
    miner = RelationMiner(progress=False).fit_model(model, x, "0", attrs)
    w = RelationshipAnnotator.from_model(miner, model, "0", x, attrs, n_images=6, n_examples=2)
    assert len(w.examples.tiles) == 4  # 2 images x 2 attributes
    assert w._gradients.shape == (6, 5, 4, 8, 8)
    w.close()


@pytest.mark.slow
def test_from_demo_builds_a_working_widget_and_reuses_the_cache():
    import time
    import warnings

    from failwidgets.demo import load

    demo = load("default", progress=False)
    names = list(demo.world.attribute_names)
    kwargs = dict(small=True, n_images=120, mask_images=60, n_example_images=8, n_examples=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # undertrained heads may leave a mask empty
        start = time.perf_counter()
        w = RelationshipAnnotator.from_demo(demo, **kwargs)
        cold = time.perf_counter() - start
    assert w.demo is demo and w.names == names
    assert w.miner.relations_.shape == (120, len(names), len(names))
    assert w.miner.unit_shape_ == (64, 8, 8)  # conv3 by default
    assert len(w.graph) == w.graph.n_pairs  # the world's ground truth, every pair
    assert w.graph.get("striped", "large") == "not related"
    assert w.diagnosis is not None and len(w.diagnosis.pairs) == w.graph.n_pairs
    # the suite shares one cache directory: look only at entries for this test's data
    data_id = f"{demo.world.fingerprint}/train[:120]"
    entries = [
        e
        for e in demo.cache.entries()
        if e.parts.get("what") == "zhang2018_relations" and e.parts.get("data") == data_id
    ]
    assert len(entries) == 1 and entries[0].parts["layer"] == "conv3"
    # an interaction updates the view: select the planted pair, relabel it, undo
    i, j = sorted((names.index("striped"), names.index("large")))
    w.matrix.selected = np.array([[j, i]])
    assert w.selected_pair == [i, j]
    np.testing.assert_array_equal(w.hist_bars.y, w.miner.histograms_[i, j])
    assert "not related" in w.pair_label.value and "KL(P‖Q)" in w.pair_info.value
    w.auto_advance = False
    w.hotkeys.value = "5"
    assert w.graph.get("striped", "large") == "definitely positive"
    assert "definitely positive" in w.pair_label.value
    row = w.diagnosis.pairs[(w.diagnosis.pairs.i == i) & (w.diagnosis.pairs.j == j)].iloc[0]
    assert row.level == "definitely positive"
    w.hotkeys.value = "u"
    assert w.graph.get("striped", "large") == "not related"
    assert len(w.examples.tiles) == 4  # 2 example images x the pair's two heat maps
    w.close()
    # a second call reads the mined relations from the cache
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        start = time.perf_counter()
        w2 = RelationshipAnnotator.from_demo(demo, graph=None, **kwargs)
        warm = time.perf_counter() - start
    assert len(w2.graph) == 0 and w2.diagnosis is None
    assert [
        e.key
        for e in demo.cache.entries()
        if e.parts.get("what") == "zhang2018_relations" and e.parts.get("data") == data_id
    ] == [entries[0].key]
    print(f"from_demo cold {cold:.1f} s, warm {warm:.1f} s")
    w2.close()
