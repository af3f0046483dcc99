import dataclasses
import json

import numpy as np
import pytest
import traitlets

from failwidgets.compute.words import WordSpace
from failwidgets.methods.lavise import LaViSE
from failwidgets.widgets.filter_word_explorer import FilterWordExplorer
from tests.methods.test_lavise import COLOURS, ColourNet, colour_world


@pytest.fixture(scope="module")
def setup():
    rng = np.random.default_rng(1)
    words = list(COLOURS) + ["grass", "sand"]
    space = WordSpace(words, rng.normal(size=(len(words), 16)), name="planted")
    images, masks, groups = colour_world(60, seed=5, bias=True)
    lav = LaViSE(
        space, holdout=["yellow"], lr=3e-2, epochs=20, batch_size=128, p=6, s=2, quantile=0.05, progress=False
    ).fit_model(ColourNet().eval(), images, "features", masks)
    ex = lav.evaluate(lav.explain(images, methods=("attention", "original")), masks).explanations
    ex2 = dataclasses.replace(lav.explain(images, filters=[1, 2], methods=("attention",)), layer="features_subset")
    return lav, ex, ex2, images, groups


@pytest.fixture()
def widget(setup):
    lav, ex, ex2, images, groups = setup
    w = FilterWordExplorer({"features": ex, "features_subset": ex2}, images, groups, method=lav)
    yield w
    w.close()


def test_list_search_and_novel_marks(widget, setup):
    ex = setup[1]
    assert widget.layer == "features" and len(widget.filter_list.options) == 5
    widget.search_box.value = ex.top_words("attention", 1)[1][0]  # top word of filter 1
    assert widget.search == ex.top_words("attention", 1)[1][0]
    assert 1 in widget.visible_filters()
    assert [v for _, v in widget.filter_list.options] == widget.visible_filters()
    widget.search = "nonexistentword"
    assert widget.filter_list.options == () and "0 of 5" in widget.count_label.value
    widget.search = ""
    labels = [lab for lab, _ in widget.filter_list.options]
    for lab, u in zip(labels, widget.visible_filters()):
        for w, _ in ex.word_counts(u)[:5]:
            assert (w + "*" in lab) == ex.is_novel(w)


def test_click_filter_shows_images_words_matches(widget, setup):
    ex = setup[1]
    widget.filter_list.value = 0
    assert widget.selected_filter == 0
    assert widget.grid.tile_keys == [int(i) for i in ex.top_images[0]]
    assert len(widget.grid.tiles) == 6 and widget.grid.image_bytes(0)
    assert "<th>attention</th><th>original</th>" in widget.words_html.value
    top = ex.word_counts(0)[0]
    assert f"{top[0]}" in widget.words_html.value and f"({top[1]})" in widget.words_html.value
    assert "red" in widget.matches_html.value  # filter 0 detects red, masks say so
    with pytest.raises(ValueError, match="selected_filter: filter 9 was not explained"):
        widget.selected_filter = 9
    assert widget.selected_filter == 0


def test_sort_by_top_count_and_difference(widget, setup):
    ex = setup[1]
    widget.sort_select.value = "top_count"
    counts = [ex.word_counts(u)[0][1] for u in widget.visible_filters()]
    assert counts == sorted(counts, reverse=True)
    widget.sort_by = "difference"
    assert widget.sort_select.value == "difference"
    assert widget.visible_filters()[0] == 0  # planted: red only in group 1
    with pytest.raises(traitlets.TraitError, match="'sort_by' trait .* expected any of"):
        widget.sort_by = "alphabet"
    assert widget.sort_by == "difference" and widget.sort_select.value == "difference"
    assert "sort_by" in widget.log.text


def test_group_chart_click_opens_filter(widget):
    assert widget.chart.labels[0] == "0"
    diffs = widget.chart.values
    assert np.argmax(np.abs(diffs)) == 0 and diffs[0] > 0
    widget.chart.bars.selected = [0]  # what a click in the browser does
    assert widget.selected_filter == 0 and widget.filter_list.value == 0
    widget.tabs.selected_index = 1
    assert widget.view == "groups"


def test_layer_switch_and_round_trip(widget, setup):
    widget.layer_select.value = "features_subset"
    assert widget.layer == "features_subset" and [v for _, v in widget.filter_list.options] == [1, 2]
    widget.selected_filter = 2
    widget.search = ""
    widget.view = "groups"
    state = widget.to_dict()
    json.dumps(state)
    lav, ex, ex2, images, groups = setup
    other = FilterWordExplorer({"features": ex, "features_subset": ex2}, images, groups)
    try:
        other.from_dict(state)
        assert other.to_dict() == state
        assert other.layer == "features_subset" and other.selected_filter == 2
        assert other.tabs.selected_index == 1 and len(other.grid.tiles) == 6
    finally:
        other.close()
    with pytest.raises(ValueError, match="layer: expected one of"):
        widget.layer = "layer9"


def test_bad_inputs(setup):
    lav, ex, ex2, images, groups = setup
    with pytest.raises(ValueError, match="images: expected 60 images"):
        FilterWordExplorer(ex, images[:10])
    with pytest.raises(TypeError, match="explanations"):
        FilterWordExplorer({"features": object()}, images)
    w = FilterWordExplorer(ex, images)  # without groups: no difference sort
    try:
        with pytest.raises(ValueError, match="sort_by"):
            w.sort_by = "difference"
        assert "pass groups=" in w.groups_html.value
    finally:
        w.close()


def test_word_scoring_dropdown_reranks_words(widget, setup):
    ex = setup[1]
    assert widget.word_scoring == "count" and widget.scoring_select.value == "count"
    widget.selected_filter = 1
    assert f"({ex.word_counts(1)[0][1]})" in widget.words_html.value  # an int count
    widget.scoring_select.value = "pmi"
    assert widget.word_scoring == "pmi" and widget.current.scoring == "pmi"
    pmi = ex.rescore("pmi")
    assert widget.current.words == pmi.words
    word, score = pmi.word_counts(1)[0]
    assert f"{word}" in widget.words_html.value and f"({score:.3f})" in widget.words_html.value
    assert "PMI" in widget.header.value
    labels = [lab for lab, _ in widget.filter_list.options]
    u = widget.visible_filters()[0]
    assert labels[0].startswith(f"filter {u}: {pmi.word_counts(u)[0][0]}")
    assert json.loads(json.dumps(widget.to_dict()))["word_scoring"] == "pmi"
    with pytest.raises(traitlets.TraitError, match="'word_scoring' trait .* expected any of"):
        widget.word_scoring = "bogus"
    assert widget.word_scoring == "pmi" and widget.scoring_select.value == "pmi"
    widget.word_scoring = "count"
    assert widget.current.words == ex.words


def test_word_scoring_is_fixed_for_explanations_without_hits(setup):
    from dataclasses import replace

    ex, images = setup[1], setup[3]
    w = FilterWordExplorer(replace(ex, word_hits=None), images)
    try:
        assert w.scoring_select.disabled and [v for _, v in w.scoring_select.options] == ["count"]
        with pytest.raises(ValueError, match="word_scoring: these explanations keep no word hits"):
            w.word_scoring = "pmi"
        assert w.word_scoring == "count" and "rejected word_scoring" in w.log.text
    finally:
        w.close()
