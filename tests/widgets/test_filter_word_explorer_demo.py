"""FilterWordExplorer.from_demo (slow: loads the demo and computes the target's conv4 features)."""

import json

import pytest

from failwidgets.widgets.filter_word_explorer import FilterWordExplorer

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def widget():
    w = FilterWordExplorer.from_demo(small=True, n_images=300)
    yield w
    w.close()


def test_from_demo_builds_a_working_explorer(widget):
    ex = widget.current
    assert widget.layer == "conv4" and len(ex.filters) == 128 and ex.methods == ("attention", "original")
    assert len(widget.filter_list.options) == 128
    assert ex.iou is not None and widget.evaluation.explanations is ex
    assert set(widget.evaluation.recall.columns) == {"recall@5", "recall@10"}
    assert widget.method.train_concepts_ == ex.train_concepts  # the shipped head, no training
    # groups: circles vs squares of the training split, others left out
    table = widget.group_table()
    assert list(c for c in table.columns if c.startswith("share[")) == ["share[circle]", "share[square]"]
    assert len(widget.chart.labels) == widget.n_bars


def test_interactions_update_the_views(widget):
    widget.chart.bars.selected = [0]  # click the top bar in the group chart
    u = int(widget.chart.labels[0])
    assert widget.selected_filter == u and widget.filter_list.value == u
    assert len(widget.grid.tiles) == 25 and widget.grid.tile_keys == [
        int(i) for i in widget.current.top_images[widget.current.row(u)]
    ]
    assert f"filter {u}</b>" in widget.header.value and "<th>attention</th><th>original</th>" in widget.words_html.value
    word = widget.current.top_words("attention", 1)[widget.current.row(u)][0]
    widget.search_box.value = word
    shown = widget.visible_filters()
    assert u in shown and len(widget.filter_list.options) == len(shown) <= 128
    assert all(
        word in sum((widget.current.top_words(m, widget.k)[widget.current.row(f)] for m in widget.current.methods), [])
        for f in shown
    )
    state = widget.to_dict()
    json.dumps(state)
    assert state["search"] == word and state["selected_filter"] == u


def test_from_demo_bad_groups():
    from failwidgets.demo import load

    demo = load(progress=False)
    with pytest.raises(ValueError, match="groups: expected a factor name"):
        FilterWordExplorer.from_demo(demo, small=True, n_images=50, groups="hue")
    with pytest.raises(ValueError, match="groups: 'hexagon' is not a value of 'shape'"):
        FilterWordExplorer.from_demo(demo, small=True, n_images=50, groups=("shape", "circle", "hexagon"))
