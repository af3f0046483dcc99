"""FailureMap in plain pytest: selections set on the jupyter-scatter / bqplot widget as the page would,
the grid and the evidence they produce, colours, hypotheses, state, and links to the method widgets."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import failwidgets
from failwidgets.methods.hypotheses import slice_evidence
from failwidgets.widgets.failure_map import FailureMap, jscatter_available

BACKENDS = ["bqplot"] + (["jscatter"] if jscatter_available() else [])


class AxisEncoder:
    def __init__(self, dim):
        self.dim = dim

    def encode_texts(self, texts):
        out = np.zeros((len(texts), self.dim), np.float32)
        for r, t in enumerate(texts):
            out[r, int(t.split()[-1])] = 1.0
        return out


def _data(n=400, d=6, seed=0):
    rng = np.random.default_rng(seed)
    emb = rng.normal(size=(n, d)).astype(np.float32)
    labels = rng.integers(0, 3, n)
    hard = emb[:, 2] > 0.7
    err = rng.random(n) < np.where(hard & (labels == 0), 0.8, 0.1)
    preds = np.where(err, (labels + 1) % 3, labels)
    images = np.zeros((n, 12, 12, 3), np.uint8)
    images[..., 0] = (np.arange(n) % 256)[:, None, None]  # tile i shows red = i % 256
    meta = pd.DataFrame({"hard": hard, "colour": np.where(emb[:, 0] > 0, "red", "blue")})
    return emb, labels, preds, images, meta, hard


def _page_select(m: FailureMap, rows):
    """What a lasso on the page does: the front end writes the plot widget's selection trait."""
    rows = np.asarray(rows, np.int64)
    if m.backend == "jscatter":
        m.scatter.widget.selection = rows
    else:
        pos = np.flatnonzero(np.isin(m._sample, rows))
        m.mark.selected = pos.tolist()


@pytest.fixture(params=BACKENDS)
def fmap(request):
    emb, labels, preds, images, meta, _ = _data()
    m = FailureMap(
        emb,
        labels,
        preds,
        images,
        metadata=meta,
        class_names=["a", "b", "c"],
        encoder=AxisEncoder(6),
        backend=request.param,
        layout_method="pca",
        cache=False,
        n_grid=10,
    )
    yield m
    m.close()


def test_backends_available():
    assert jscatter_available(), "jupyter-scatter is in the test extra; the jscatter backend must be tested"


def test_page_selection_fills_grid_and_evidence(fmap):
    _, _, _, _, _, hard = _data()
    rows = np.flatnonzero(hard)[:60]
    _page_select(fmap, rows)
    assert sorted(fmap.selection) == sorted(rows.tolist())
    ev = slice_evidence(rows, fmap.errors)
    assert fmap.last_evidence == ev
    assert f"{ev.n_inside} selected" in fmap.evidence_html.value and "Fisher p" in fmap.evidence_html.value
    assert len(fmap.grid) == 10 and set(fmap.grid.tile_keys) <= set(rows.tolist())
    frame = fmap.selection_frame()
    assert list(frame.columns[:4]) == ["index", "label", "prediction", "error"]
    assert np.array_equal(frame["error"].to_numpy(), fmap.errors[frame["index"].to_numpy()])
    assert "hard" in frame and frame["hard"].all()
    _page_select(fmap, [])
    assert fmap.selection == [] and len(fmap.grid) == 0 and fmap.last_evidence is None


def test_python_selection_lights_up_the_plot(fmap):
    fmap.selection = [5, 3, 5, 9]  # duplicates dropped, order kept
    assert fmap.selection == [5, 3, 9]
    if fmap.backend == "jscatter":
        assert sorted(fmap.scatter.widget.selection.tolist()) == [3, 5, 9]
    else:
        assert sorted(fmap._sample[fmap.mark.selected].tolist()) == [3, 5, 9]
    assert sorted(fmap.grid.tile_keys) == [3, 5, 9]
    with pytest.raises(Exception, match="selection"):
        fmap.selection = [10_000]
    with pytest.raises(Exception, match="selection"):
        fmap.selection = [0.5]


def test_colour_by_every_option(fmap):
    for _, value in fmap.color_options():
        fmap.color_by = value
        assert fmap.color_dropdown.value == value
    with pytest.raises(ValueError, match="color_by"):
        fmap.color_by = "nonsense"
    fmap.set_scores(np.linspace(-1, 1, 400), name="decision")
    assert fmap.color_by == "decision" and "decision" in fmap.selection_frame().columns
    if fmap.backend == "bqplot":
        assert np.allclose(fmap.mark.color, np.linspace(-1, 1, 400)[fmap._sample])


def test_hypothesis_box_shows_inside_outside_and_selects_the_slice(fmap):
    fmap.class_dropdown.value = 0
    fmap.fraction_slider.value = 0.25
    fmap.phrase_box.value = "axis 2"  # typing + enter
    res = fmap.last_hypothesis
    assert res is not None and res.class_index == 0 and res.top_fraction == 0.25
    assert "inside" in fmap.hypothesis_html.value and "outside" in fmap.hypothesis_html.value
    assert "higher" in fmap.hypothesis_html.value
    assert fmap.selection == res.slice_indices.tolist()
    assert fmap.last_evidence.n_inside == len(res.slice_indices)


def test_metadata_hypothesis_without_text_encoder():
    emb, labels, preds, images, meta, hard = _data()
    m = FailureMap(emb, labels, preds, images, metadata=meta, backend="bqplot", layout_method="pca", cache=False)
    try:
        res = m.test_phrase("hard", class_index=0)
        assert res.kind == "metadata" and np.all(hard[res.slice_indices]) and res.evidence.significant()
    finally:
        m.close()


def test_bqplot_fallback_samples_large_maps():
    rng = np.random.default_rng(0)
    n = 25_000
    labels = rng.integers(0, 2, n)
    m = FailureMap(labels=labels, preds=labels, xy=rng.normal(size=(n, 2)), backend="bqplot", max_svg_points=10_000)
    try:
        assert len(m.mark.x) == 10_000 and "sampled" in m.plot.title
        m.mark.selected = [0, 1, 2]
        assert m.selection == m._sample[:3].tolist()
    finally:
        m.close()


def test_state_round_trip_and_bad_inputs(fmap):
    fmap.color_by = "label"
    fmap.selection = [1, 2]
    d = fmap.to_dict()
    emb, labels, preds, images, meta, _ = _data()
    other = FailureMap(emb, labels, preds, images, metadata=meta, backend="bqplot", layout_method="pca", cache=False)
    try:
        other.from_dict(d)
        assert other.color_by == "label" and other.selection == [1, 2] and len(other.grid) == 2
    finally:
        other.close()
    with pytest.raises(ValueError, match="xy"):
        FailureMap(labels=labels, preds=preds, xy=np.zeros((3, 2)), backend="bqplot")
    with pytest.raises(ValueError, match="embeddings"):
        FailureMap(labels=labels, preds=preds, backend="bqplot")
    with pytest.raises(ValueError, match="images"):
        FailureMap(emb, labels, preds, images[:5], backend="bqplot", layout_method="pca", cache=False)
    with pytest.raises(ValueError, match="metadata"):
        FailureMap(emb, labels, preds, metadata=meta[:5], backend="bqplot", layout_method="pca", cache=False)


def test_link_both_ways_between_two_maps():
    emb, labels, preds, images, meta, _ = _data()
    a = FailureMap(emb, labels, preds, images, backend="bqplot", layout_method="pca", cache=False)
    rows = np.arange(100, 300)  # b shows rows 100..299 of a's data
    b = FailureMap(
        emb[rows], labels[rows], preds[rows], images[rows], backend="bqplot", layout_method="pca", cache=False
    )
    try:
        ln = failwidgets.link(a, b, rows=rows)
        _page_select(a, [5, 150, 160])
        assert b.selection == [50, 60]
        _page_select(b, [0, 1])
        assert a.selection == [100, 101]
        ln.unlink()
        a.selection = [7]
        assert b.selection == [0, 1]
        with pytest.raises(ValueError, match="rows"):
            failwidgets.link(a, b)  # different data without rows=
    finally:
        a.close()
        b.close()


def test_hover_previews_and_saliency_toggle():
    emb, labels, preds, images, meta, _ = _data(n=60)
    overlays = np.random.default_rng(0).random((60, 4, 4))
    m = FailureMap(
        emb,
        labels,
        preds,
        images,
        backend="jscatter",
        previews=True,
        overlays=overlays,
        layout_method="pca",
        cache=False,
    )
    try:
        assert m.scatter.widget.tooltip_enable and m.scatter.widget.tooltip_preview == "preview"
        uris = m._jscatter_frame["preview"]
        assert len(uris) == 60 and all(u.startswith("data:image/") for u in uris)
        m.selection = [1, 2, 3]
        assert m.grid.overlay_toggle.layout.display == ""  # heat maps shown with their toggle
        with_maps = m.grid.image_bytes(0)
        m.grid.overlay_toggle.value = False
        assert m.grid.image_bytes(0) != with_maps
    finally:
        m.close()


def test_colour_by_a_linked_widgets_score():
    from tests.widgets.test_selections import _slider

    slider, labels, preds, images = _slider()
    m = FailureMap(
        labels=labels, preds=preds, images=images, xy=np.random.default_rng(0).normal(size=(360, 2)), backend="bqplot"
    )
    try:
        slider.class_index = 2
        m.scores_from(slider)
        assert m.color_by == "decision_value"
        d = slider.selection_frame()  # the flagged set, with decision values
        assert np.allclose(m.scores[d["index"]], d["decision_value"])
        with pytest.raises(ValueError, match="widget"):
            m.scores_from(FailureMap(labels=labels, preds=preds, xy=np.zeros((360, 2)), backend="bqplot"))
    finally:
        slider.close()
        m.close()
