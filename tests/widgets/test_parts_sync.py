"""parts.sync: the echo guard, hold_all_sync (one message per widget), rejected values and LoggedLink."""

import bqplot as bq
import ipywidgets as W
import pytest
import traitlets

from failwidgets.testing.widget_checks import recording_comms
from failwidgets.widgets.parts import FailWidget
from failwidgets.widgets.parts.sync import EchoGuard, InvalidValue, LoggedLink, hold_all_sync, reject


def _updates(messages, comm_id):
    return [d for c, d in messages if c == comm_id and d.get("method") == "update"]


def test_echo_guard_is_reentrant():
    quiet = EchoGuard()
    assert not quiet
    with quiet():
        with quiet():
            assert quiet
        assert quiet
    assert not quiet


def test_hold_all_sync_sends_x_and_y_of_a_mark_in_one_message():
    with recording_comms() as messages:
        mark, label = bq.Scatter(x=[0.0], y=[0.0]), W.HTML("")
        start = len(messages)
        mark.x, mark.y = [1.0, 2.0], [3.0, 4.0]  # without a hold: two messages, a moment of unequal lengths
        assert len(_updates(messages[start:], mark.model_id)) == 2
        start = len(messages)
        with hold_all_sync(mark, None, [label, mark]):  # None and repeats are skipped
            mark.x, mark.y = [5.0], [6.0]
            label.value = "moved"
        sent = _updates(messages[start:], mark.model_id)
        assert len(sent) == 1 and set(sent[0]["state"]) == {"x", "y"}
        assert len(_updates(messages[start:], label.model_id)) == 1
        mark.close(), label.close()


class _Demo(FailWidget):
    _state_traits = ("n",)
    n = traitlets.Int(1, min=0, max=5)
    limit = 3

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.slider = W.IntSlider(min=0, max=5)
        self.link("n", self.slider)
        self.children = [self.slider, self.log]

    @traitlets.validate("n")
    def _valid_n(self, proposal):
        if proposal["value"] > self.limit:
            reject(self, f"n: expected at most {self.limit}, got {proposal['value']}")
        return proposal["value"]


def test_rejected_values_keep_the_trait_and_are_logged():
    w = _Demo()
    try:
        with pytest.raises(InvalidValue, match="n: expected at most 3, got 4") as info:
            w.n = 4
        assert isinstance(info.value, ValueError) and isinstance(info.value, traitlets.TraitError)
        assert w.n == 1 and "n: expected at most 3" in w.log.text
        with pytest.raises(traitlets.TraitError):
            w.n = 9  # the Int's own bound: also logged
        assert w.n == 1 and "n = 9" in w.log.text
    finally:
        w.close()


def test_logged_link_puts_the_control_back_on_a_rejected_value():
    w = _Demo()
    try:
        assert w.slider.value == 1  # the control takes the trait's value
        w.slider.value = 2
        assert w.n == 2
        w.slider.value = 4  # what the user can pick, the trait refuses: the slider goes back
        assert w.n == 2 and w.slider.value == 2 and w.log.text.count("n: expected at most 3, got 4") == 1
        w.slider.max = 9
        w.slider.value = 9  # beyond the Int's own bound: the slider goes back, the reason is logged once
        assert w.n == 2 and w.slider.value == 2 and w.log.text.count("n = 9") == 1
        w.n = 0
        assert w.slider.value == 0
        w.close()  # unlinks
        w.slider.value = 3
        assert w.n == 0
    finally:
        w.close()


def test_logged_link_follows_a_coercing_validator():
    class Pair(traitlets.HasTraits):
        v = traitlets.List()

        @traitlets.validate("v")
        def _sorted(self, proposal):
            return sorted(proposal["value"])

    a, b = Pair(v=[1, 2]), traitlets.HasTraits()
    b.add_traits(v=traitlets.List())
    LoggedLink((a, "v"), (b, "v"))
    b.v = [3, 1]
    assert a.v == [1, 3] and b.v == [1, 3]


def test_a_guarded_callback_is_one_batch():
    with recording_comms() as messages:
        w = _Demo()
        label = W.HTML("")
        w.children = [w.slider, label, w.log]

        def on_n(change):
            label.value = "a"
            label.value = f"n = {change['new']}"

        w.observe_guarded(on_n, names="n")
        start = len(messages)
        w.slider.set_state({"value": 2})  # as the front end does
        sent = _updates(messages[start:], label.model_id)
        assert len(sent) == 1 and sent[0]["state"]["value"] == "n = 2"
        w.close()
