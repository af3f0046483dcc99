"""The static snapshot in each widget's rich display (``FailWidget._repr_mimebundle_``)."""

from __future__ import annotations

import sys
import types

import pytest
from IPython.core.formatters import DisplayFormatter

from failwidgets.widgets.parts import snapshot
from failwidgets.widgets.parts.snapshot import (
    COLAB_FIX,
    SNAPSHOT_ENV,
    WIDGET_VIEW_MIME,
    snapshot_html,
)
from tests.browser._builders import CLASS_NAMES, N_PAIRS, build

# widget -> (class name in the note, a text of its initial view)
EXPECTED = {
    "direction_slider": ("DirectionSlider", f"<b>{CLASS_NAMES[0]}</b>: ok"),
    "tree_browser": ("TreeBrowser", "click a node"),
    "relationship_annotator": ("RelationshipAnnotator", f"0 of {N_PAIRS} labelled"),
    "filter_word_explorer": ("FilterWordExplorer", "conv4 filter 0"),
}


@pytest.fixture(params=list(EXPECTED))
def built(request):
    w = build(request.param)
    yield request.param, w
    w.close()


def test_display_carries_view_snapshot_and_note(built):
    name, w = built
    cls, text = EXPECTED[name]
    data, _meta = DisplayFormatter().format(w)  # what IPython sends for a cell ending in the widget
    assert data[WIDGET_VIEW_MIME]["model_id"] == w.model_id
    html = data["text/html"]
    assert html.startswith(f'<div class="fw-snapshot" data-fw-widget="{cls}">')
    assert text in html
    assert "widget manager" in html and "<script" not in html.lower()
    assert data["text/plain"].startswith(f"{cls}: static picture")
    if name != "tree_browser":  # the tree shows no image before a node is picked
        assert 'src="data:image/' in html


def test_snapshot_follows_the_state_at_display_time():
    w = build("relationship_annotator")
    try:
        w.hotkeys.value = "2"
        assert f"1 of {N_PAIRS} labelled" in w._repr_mimebundle_()["text/html"]
    finally:
        w.close()


def test_colab_note_and_one_warning(monkeypatch):
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    monkeypatch.setattr(snapshot, "_colab_warned", False)
    w = build("tree_browser")
    try:
        with pytest.warns(UserWarning, match="enable_custom_widget_manager"):
            bundle = w._repr_mimebundle_()
        assert COLAB_FIX in bundle["text/plain"] and COLAB_FIX in bundle["text/html"]
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a second display does not warn again
            w._repr_mimebundle_()
    finally:
        w.close()


def test_snapshot_can_be_turned_off_and_closed_widgets_have_no_display(monkeypatch):
    w = build("tree_browser")
    monkeypatch.setenv(SNAPSHOT_ENV, "0")
    bundle = w._repr_mimebundle_()
    assert WIDGET_VIEW_MIME in bundle and "text/html" not in bundle
    w.close()
    assert w._repr_mimebundle_ is None  # ipywidgets: a closed widget displays as its repr only


def test_a_failing_snapshot_does_not_break_the_display(monkeypatch):
    w = build("tree_browser")
    try:

        def broken(_w):
            raise RuntimeError("planted")

        monkeypatch.setattr(snapshot.export, "widget_to_html", broken)
        with pytest.warns(RuntimeWarning, match="no static snapshot.*planted"):
            bundle = w._repr_mimebundle_()
        assert WIDGET_VIEW_MIME in bundle and "text/html" not in bundle
    finally:
        w.close()


def test_snapshot_html_escapes_the_name():
    w = build("tree_browser")
    try:
        assert 'data-fw-widget="a&lt;b&quot;"' in snapshot_html(w, name='a<b"')
    finally:
        w.close()
