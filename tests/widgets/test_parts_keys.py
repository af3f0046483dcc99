"""Keyboard shortcuts: key names, the binding table, ipyevents wiring, and each widget driven by key events.

The events are the dicts ipyevents' front end sends (``key``, ``code``, ``ctrlKey``, ``shiftKey``, ...);
they enter through the ``ipyevents.Event`` widget's message handler, as from a browser. The widgets
come from the small planted builders the browser tests use.
"""

from __future__ import annotations

import ipyevents
import pytest

from failwidgets.widgets.parts.keys import (
    KEY_EVENTS_ENV,
    KeyBindings,
    event_key,
    key_events_available,
    normalize_key,
)
from tests.browser._builders import N_PAIRS, build


def key(k: str, *, ctrl=False, shift=False, alt=False, meta=False, type="keydown") -> dict:
    """The dict ipyevents sends for one key event."""
    return {
        "type": type,
        "key": k,
        "code": "",
        "ctrlKey": ctrl,
        "shiftKey": shift,
        "altKey": alt,
        "metaKey": meta,
        "repeat": False,
        "location": 0,
        "target": {"tagName": "DIV"},
    }


def send(events: ipyevents.Event, *dicts: dict) -> None:
    """Deliver events as the front end does (a custom comm message to the Event widget)."""
    for d in dicts:
        events._handle_mouse_msg(events, d, [])


@pytest.mark.parametrize(
    "spec, want",
    [
        ("3", "3"),
        ("U", "u"),
        ("Ctrl+Z", "ctrl+z"),
        ("shift+ctrl+z", "ctrl+shift+z"),
        ("cmd+z", "ctrl+z"),
        ("ArrowRight", "arrowright"),
        ("right", "arrowright"),
        (" ", "space"),
        ("shift+1", "1"),
        ("ctrl++", "ctrl++"),
    ],
)
def test_normalize_key(spec, want):
    assert normalize_key(spec) == want


@pytest.mark.parametrize("bad", ["", "ctrl+", "ctrl+shift", "hyper+z", None])
def test_normalize_key_rejects(bad):
    with pytest.raises(ValueError, match="key"):
        normalize_key(bad)


def test_event_key_from_browser_events():
    assert event_key(key("3")) == "3"
    assert event_key(key("Z", ctrl=True, shift=True)) == "ctrl+shift+z"  # the browser sends "Z" with shift
    assert event_key(key("z", meta=True)) == "ctrl+z"  # Cmd+Z on a Mac
    assert event_key(key("!", shift=True)) == "!"
    assert event_key(key("ArrowLeft")) == "arrowleft"
    assert event_key(key(" ")) == "space"
    assert event_key(key("Shift", shift=True)) is None and event_key(key("Control", ctrl=True)) is None
    assert event_key({"type": "keydown"}) is None


def test_bindings_run_on_keydown_only_and_record():
    calls = []
    kb = KeyBindings({"1": lambda: calls.append(1), "ctrl+z": lambda: calls.append("undo")})
    assert kb.handle(key("1")) and calls == [1]
    assert not kb.handle(key("1", type="keyup")) and calls == [1]
    assert not kb.handle(key("2")) and not kb.handle(key("z"))  # plain z is not ctrl+z
    assert kb.handle(key("z", ctrl=True)) and calls == [1, "undo"]
    assert kb.press("Ctrl+Z") and calls == [1, "undo", "undo"]
    assert kb.pressed == ["1", "ctrl+z", "ctrl+z"]
    assert "CTRL+z" in kb and "2" not in kb


def test_bindings_reject_bad_tables():
    with pytest.raises(ValueError, match="bindings"):
        KeyBindings({})
    with pytest.raises(ValueError, match="bindings: expected a callable"):
        KeyBindings({"1": "not callable"})
    with pytest.raises(ValueError, match="bound twice"):
        KeyBindings({"U": print, "u": print})


def test_attach_wires_ipyevents_and_can_be_turned_off(monkeypatch):
    import ipywidgets as W

    calls = []
    kb = KeyBindings({"n": lambda: calls.append("n")})
    box = W.VBox()
    events = kb.attach(box)
    assert isinstance(events, ipyevents.Event)
    assert events.source is box and events.watched_events == ["keydown"]
    assert "fw-keys" in box._dom_classes
    send(events, key("n"), key("n", type="keyup"))
    assert calls == ["n"]
    with pytest.raises(ValueError, match="source"):
        kb.attach("not a widget")
    events.close()
    monkeypatch.setenv(KEY_EVENTS_ENV, "0")
    assert not key_events_available()
    assert kb.attach(W.VBox()) is None


@pytest.fixture
def annotator():
    w = build("relationship_annotator")
    yield w
    w.close()


def test_annotator_driven_by_key_events(annotator):
    w = annotator
    assert isinstance(w.key_events, ipyevents.Event) and w.key_events.source is w.key_area
    assert w.hotkeys.layout.display == "none" and w.key_hint.layout.display != "none"
    assert w.path_box not in w.key_area.children  # typing a file name is not taken as keys
    send(w.key_events, key("3"))
    assert w.annotations == [["a0", "a1", w.levels[2]]]
    send(w.key_events, key("ArrowRight"))
    assert w.selected_pair == [0, 2]
    send(w.key_events, key("1"))
    assert len(w.annotations) == 2
    send(w.key_events, key("z", ctrl=True))  # undo
    assert len(w.annotations) == 1 and w.selected_pair == [0, 2]
    send(w.key_events, key("Z", ctrl=True, shift=True))  # redo
    assert len(w.annotations) == 2
    send(w.key_events, key("u"), key("u"))
    assert w.annotations == []
    send(w.key_events, key("r"))
    assert w.annotations == [["a0", "a1", w.levels[2]]]
    assert w.selected_pair == [0, 1]  # redo shows the pair it relabelled
    send(w.key_events, key("p"))
    assert w.selected_pair == [4, 5]  # wraps around to the last pair
    send(w.key_events, key("ArrowLeft"))
    assert w.selected_pair == [3, 5]
    send(w.key_events, key("ArrowUp"))
    assert w.selected_pair == [3, 4]
    send(w.key_events, key("ArrowDown"), key("n"))
    assert w.selected_pair == [4, 5]
    send(w.key_events, key("n"))
    assert w.selected_pair == [0, 1]
    send(w.key_events, key("0"))  # clear
    assert w.annotations == []
    send(w.key_events, key("9"), key("x"), key("Shift", shift=True))  # unbound keys do nothing
    assert w.annotations == [] and f"0 of {N_PAIRS} labelled" in w.counter.value


def test_annotator_falls_back_to_the_text_box(monkeypatch):
    monkeypatch.setenv(KEY_EVENTS_ENV, "0")
    w = build("relationship_annotator")
    try:
        assert w.key_events is None
        assert w.hotkeys.layout.display != "none" and w.key_hint.layout.display == "none"
        w.hotkeys.value = "4"
        assert w.annotations == [["a0", "a1", w.levels[3]]]
        w.hotkeys.value = "U"
        assert w.annotations == []
    finally:
        w.close()


def test_direction_slider_arrows_step_the_slider():
    w = build("direction_slider")
    try:
        assert w.key_events.source is w.slider_row
        send(w.key_events, key("ArrowRight"), key("ArrowRight"))
        assert w.slider.value == pytest.approx(0.1) and w.alpha == pytest.approx(0.1)
        send(w.key_events, key("ArrowLeft"))
        assert w.alpha == pytest.approx(0.05)
        send(w.key_events, key("End"))
        assert w.slider.value == pytest.approx(w.slider.max)
        send(w.key_events, key("ArrowUp"))  # clamped
        assert w.slider.value == pytest.approx(w.slider.max)
        send(w.key_events, key("0"))
        assert w.alpha == 0.0
        send(w.key_events, key("Home"))
        assert w.slider.value == pytest.approx(w.slider.min)
    finally:
        w.close()


def test_tree_browser_arrows_move_between_nodes():
    w = build("tree_browser")
    try:
        assert w.key_events.source is w.figure
        nodes = w.result.fit.nodes
        assert len(nodes) == 3  # root and two leaves (depth 1)
        send(w.key_events, key("ArrowDown"))  # nothing selected: the root
        assert w.selected_node == 0
        send(w.key_events, key("ArrowDown"))
        assert w.selected_node == 1 and "node 1</b> (leaf)" in w.node_html.value
        send(w.key_events, key("ArrowRight"))
        assert w.selected_node == 2
        send(w.key_events, key("ArrowRight"))  # no node further right on this level
        assert w.selected_node == 2
        send(w.key_events, key("ArrowLeft"))
        assert w.selected_node == 1
        send(w.key_events, key("ArrowUp"))
        assert w.selected_node == 0 and w.nodes_mark.selected == [0]
        send(w.key_events, key("Escape"))
        assert w.selected_node == -1
        with pytest.raises(ValueError, match="direction"):
            w.step_node("sideways")
    finally:
        w.close()


def test_filter_word_explorer_keys_step_through_the_list():
    w = build("filter_word_explorer")
    try:
        assert [e.source for e in w.key_events][0] is w.filter_list
        assert w.selected_filter == 0
        send(w.key_events[0], key("ArrowDown"))
        assert w.selected_filter == 1
        send(w.key_events[1], key("n"), key("j"))
        assert w.selected_filter == 3
        send(w.key_events[0], key("ArrowUp"))
        assert w.selected_filter == 2
        w.search = "grass"  # the list now holds filter 3 only
        send(w.key_events[0], key("p"))
        assert w.selected_filter == 3
        send(w.key_events[0], key("ArrowDown"))
        assert w.selected_filter == 3
    finally:
        w.close()
