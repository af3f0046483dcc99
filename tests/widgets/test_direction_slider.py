"""DirectionSlider in plain pytest: class selection, slider, decoder choice, export, state round-trip."""

import numpy as np
import pandas as pd
import pytest
import torch
import traitlets

from failwidgets.methods.directions import FailureDirections, GeneratorDecoder, RetrievalDecoder
from failwidgets.widgets.direction_slider import DirectionSlider

D = 16


@pytest.fixture(scope="module")
def setup():
    """Three classes; in classes 0 and 2 a minority along e_3 fails; class 1 has no errors."""
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 120)
    X = rng.normal(size=(360, D))
    X[np.arange(360), 8 + labels] += 3.0
    minority = rng.random(360) < 0.3
    X[minority, 3] += 3.0
    err = (rng.random(360) < np.where(minority, 0.8, 0.03)) & (labels != 1)
    preds = np.where(err, (labels + 1) % 3, labels)
    train = rng.normal(size=(500, D))
    fd = FailureDirections(max_modes=2, progress=False).fit(X, labels, preds, train)
    # images encode the minority flag in their red channel so decoded images can be checked
    images = np.zeros((360, 8, 8, 3), np.uint8)
    images[..., 0] = np.where(minority, 255, 0)[:, None, None]
    gen = torch.nn.Sequential(torch.nn.Linear(D, 3 * 8 * 8), torch.nn.Sigmoid(), torch.nn.Unflatten(1, (3, 8, 8)))
    decoders = {"retrieval": RetrievalDecoder(X, images), "generator": GeneratorDecoder(gen, embed_dim=D)}
    return fd, images, X, labels, preds, minority, decoders


def make(setup, tmp_path, **kw):
    fd, images, X, labels, preds, _, decoders = setup
    captions = lambda c, m: {"failure": [("a photo of a thing on grass", -1.5)], "easy": [("indoors", 0.7)]}  # noqa
    return DirectionSlider(
        fd,
        images,
        X,
        labels,
        preds,
        class_names=["cat", "dog", "cow"],
        captions=captions,
        decoders=decoders,
        export_dir=str(tmp_path),
        **kw,
    )


def test_select_class_by_bar_and_dropdown(setup, tmp_path):
    w = make(setup, tmp_path)
    fd, _, _, labels, _, minority, _ = setup
    assert w.class_index == 0 and list(w.strength_chart.bars.selected) == [0]
    np.testing.assert_allclose(w.strength_chart.values, np.nan_to_num(fd.strength_), rtol=1e-6)
    w.strength_chart.bars.selected = [2]  # what a click in the browser writes
    assert w.class_index == 2 and w.class_dropdown.value == 2
    assert len(w.hard_grid) == w.n_images
    assert all(labels[k] == 2 for k in w.hard_grid.tile_keys)
    assert minority[w.hard_grid.tile_keys].mean() >= 0.8 and minority[w.easy_grid.tile_keys].mean() <= 0.2
    hist = w.hist_chart.counts_
    assert hist.shape[0] == 2 and hist.sum() == np.sum(labels == 2)
    assert hist[1].sum() == np.sum((labels == 2) & (setup[4] != labels))  # error row counts the errors
    assert "on grass" in w.caption_html.value
    w.class_dropdown.value = 1  # no errors: a status, empty grids, no crash
    assert w.class_index == 1 and "no errors" in w.status_html.value and len(w.hard_grid) == 0
    assert w.hist_chart.layout.display == "none"
    w.close()


def test_slider_moves_decoded_images(setup, tmp_path):
    w = make(setup, tmp_path, n_decoded=4)
    assert w.decoder == "retrieval" and len(w.decoded_grid) == 4
    before = [t.image.value for t in w.decoded_grid.tiles]
    w.slider.value = 0.8
    assert w.alpha == pytest.approx(0.8)
    after = [t.image.value for t in w.decoded_grid.tiles]
    assert before != after
    # harder (+) retrieves the minority (red) images, easier (-) the majority
    dec = setup[6]["retrieval"]
    hard_idx = dec.nearest(w.decoded_embedding(), 4)[0][0]
    w.alpha = -0.8
    easy_idx = dec.nearest(w.decoded_embedding(), 4)[0][0]
    minority = setup[5]
    assert minority[hard_idx].mean() > minority[easy_idx].mean()
    w.decoder = "generator"
    assert w.decoder_dropdown.value == "generator" and len(w.decoded_grid) == 4
    with pytest.raises(Exception, match="decoder: expected one of"):
        w.decoder = "diffusion"
    assert w.slider.continuous_update is True
    w.close()


def test_slow_decoder_turns_continuous_updates_off(setup, tmp_path):
    import types

    from failwidgets.methods.directions import UnclipDecoder

    fd, images, X, labels, preds, _, decoders = setup
    calls = []

    def pipe(prompt, image_embeds, **kw):  # a diffusion pipeline's call signature, painting grey images
        calls.append(len(prompt))
        return types.SimpleNamespace(images=torch.full((len(prompt), 3, 8, 8), 0.5))

    w = DirectionSlider(
        fd,
        images,
        X,
        labels,
        preds,
        decoders={**decoders, "unclip": UnclipDecoder(pipe)},
        n_decoded=2,
        export_dir=str(tmp_path),
    )
    w.decoder = "unclip"
    assert w.slider.continuous_update is False and len(w.decoded_grid) == 2 and calls
    w.alpha = 0.5
    assert len(calls) == 2
    w.decoder = "retrieval"
    assert w.slider.continuous_update is True
    w.close()


def test_export_flagged(setup, tmp_path):
    w = make(setup, tmp_path)
    w.export_button.click()
    df = w.last_export
    fd, _, X, labels, _, _, _ = setup
    d = fd.decision_function(X, labels)
    want = np.flatnonzero((labels == 0) & (d < 0))
    assert isinstance(df, pd.DataFrame) and sorted(df["index"]) == sorted(want)
    assert np.all(np.diff(df["decision_value"]) >= 0)
    on_disk = pd.read_csv(tmp_path / "flagged_cat_mode1.csv")
    np.testing.assert_array_equal(on_disk["index"], df["index"])
    assert "exported" in w.log.text
    w.close()


def test_state_round_trip(setup, tmp_path):
    w = make(setup, tmp_path)
    fd = setup[0]
    cls = int(np.argmax([len(m) for m in fd.modes_]))
    w.class_index, w.alpha, w.decoder = cls, -0.4, "generator"
    if len(fd.modes_[cls]) > 1:
        w.mode = 1
    state = w.to_dict()
    w2 = make(setup, tmp_path)
    w2.from_dict(state)
    assert (w2.class_index, w2.alpha, w2.decoder, w2.mode) == (w.class_index, -0.4, "generator", w.mode)
    assert w2.slider.value == pytest.approx(-0.4) and w2.mode_dropdown.value == w.mode
    np.testing.assert_allclose(w2.decoded_embedding(), w.decoded_embedding())
    with pytest.raises(traitlets.TraitError, match="'alpha' trait .* not be greater than 1.0"):
        w2.alpha = 3.0
    assert w2.alpha == pytest.approx(-0.4) and w2.slider.value == pytest.approx(-0.4) and "alpha" in w2.log.text
    w.close(), w2.close()


@pytest.mark.slow
def test_chance_markers_and_verdicts(setup, tmp_path):
    fd, images, X, labels, preds, minority, decoders = setup
    w = make(setup, tmp_path)  # fitted without permutations: no markers, no verdict, no claim of 0.5
    assert not w.strength_chart.reference.visible and "chance not computed" in w.strength_chart.figure.title
    assert "chance" not in w.status_html.value
    w.close()
    # class 2 keeps its planted minority; class 0 gets 4 errors at random: chance decides between them
    rng = np.random.default_rng(1)
    preds2 = labels.copy()
    preds2[(labels == 2) & minority & (rng.random(len(labels)) < 0.8)] = 0
    preds2[rng.choice(np.flatnonzero(labels == 0), 4, replace=False)] = 1
    fd2 = FailureDirections(n_permutations=40, progress=False).fit(X, labels, preds2, X)
    w = DirectionSlider(
        fd2, images, X, labels, preds2, class_names=["cat", "dog", "cow"], decoders=decoders, export_dir=str(tmp_path)
    )
    np.testing.assert_allclose(w.strength_chart.reference_values, fd2.chance_)
    assert w.class_index == 0 and "not above chance" in w.status_html.value, w.status_html.value
    assert "not above chance" in w.mode_dropdown.options[0][0]
    w.class_index = 2
    assert "above chance" in w.status_html.value and "not above chance" not in w.status_html.value, w.status_html.value
    w.close()


def test_from_demo_builds_a_working_widget(tmp_path):
    from failwidgets.demo import load
    from failwidgets.demo.recipes.directions import whitening

    demo = load("default", progress=False)
    w = DirectionSlider.from_demo(demo, small=True, export_dir=str(tmp_path))
    fd, val = w.method, demo.world["val"]
    assert w.class_names == demo.world.class_names and fd.n_classes_ == 6
    # fitted on the demo's validation split with the training split's whitening statistics
    assert np.array_equal(w.labels, val.labels) and len(fd.decision_values_) == len(val.labels)
    mean, std = whitening(demo)
    np.testing.assert_allclose(fd.mean_, mean) and np.testing.assert_allclose(fd.std_, std)
    assert set(w.decoders) == {"retrieval", "generator"} and w.decoder == "retrieval"
    ok = [c for c in range(6) if fd.status_[c] == "ok"]
    assert ok, fd.status_
    assert fd.n_permutations == 20 and np.isfinite(fd.chance_[ok]).all()  # small setting: chance markers
    np.testing.assert_allclose(w.strength_chart.reference_values, fd.chance_)
    c = ok[-1]
    w.strength_chart.bars.selected = [c]
    assert w.class_index == c and f"<b>{demo.world.class_names[c]}</b>" in w.status_html.value
    assert demo.world.class_names[c] in w.caption_html.value  # the class's captions are shown
    assert "covers" in w.caption_html.value and "held-out images" in w.caption_html.value  # and their evidence
    w.slider.value = 0.5
    # retrieval follows the selected class: every decoded image is a validation image of class c
    idx = w.decoders["retrieval"].nearest(w.decoded_embedding(), w.n_decoded)[0][0]
    assert np.all(val.labels[idx] == c)
    before = [t.image.value for t in w.decoded_grid.tiles]
    w.slider.value = -0.5
    assert [t.image.value for t in w.decoded_grid.tiles] != before
    w.decoder = "generator"
    assert len(w.decoded_grid) == w.n_decoded
    w.export_button.click()
    assert (w.last_export["decision_value"] < 0).all() and (tmp_path / f"flagged_{w.class_names[c]}_mode1.csv").exists()
    w.close()


def test_caption_evidence_counts_and_heldout_error(setup, tmp_path):
    from failwidgets.methods import is_failure, slice_evidence
    from failwidgets.methods.directions import caption_members

    fd, images, X, labels, preds, minority, _ = setup
    table = {
        "a photo of a thing on grass": np.eye(D)[3] + np.eye(D)[8],
        "indoors": -np.eye(D)[3] + np.eye(D)[8],
        "a photo of a cat": np.eye(D)[8],
    }
    embed = lambda texts: np.stack([table[t] for t in texts])  # noqa: E731
    w = make(setup, tmp_path, caption_embedder=embed, heldout=(X, labels, preds))
    w.class_index = 0
    (n_val, ev), _ = w.caption_evidence(["a photo of a thing on grass", "indoors"])
    cls0 = labels == 0
    inside = caption_members(X[cls0], table["a photo of a thing on grass"], table["a photo of a cat"])
    # cos(x, e_3 + e_8) > cos(x, e_8) <=> (x_3 + x_8) / sqrt2 > x_8 <=> x_3 > (sqrt2 - 1) x_8
    np.testing.assert_array_equal(inside, X[cls0, 3] > (np.sqrt(2) - 1) * X[cls0, 8])
    assert n_val == int(inside.sum())
    assert ev == slice_evidence(inside, is_failure(labels[cls0], preds[cls0]))
    assert ev.rate_inside > ev.rate_outside and ev.p_value < 1e-3  # the minority (x_3 + 3) fails
    assert f"covers {n_val} val" in w.caption_html.value and "held-out images" in w.caption_html.value
    plain = make(setup, tmp_path)  # no embedder: no evidence column
    assert "evidence" not in plain.caption_html.value
    with pytest.raises(ValueError, match="caption_embedder"):
        plain.caption_evidence(["indoors"])
    w.close(), plain.close()
