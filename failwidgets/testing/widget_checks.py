"""The contract every failwidgets method widget keeps, as checks a test suite can run.

``check_failwidget(build)`` runs all of them on ``build`` (a function returning a fresh widget each
call, e.g. a registered ``MethodSpec.widget_case``); each check is also a function of its own, listed
in :data:`WIDGET_CHECKS`, so a test can be parametrized over (method x check)::

    @pytest.mark.parametrize("check", WIDGET_CHECKS, ids=list(WIDGET_CHECKS))
    def test_widget_contract(spec, check):
        WIDGET_CHECKS[check](spec.load_widget_case())

The checks
----------
- ``state_roundtrip``: after a scripted interaction, ``to_dict`` -> JSON -> ``from_dict`` on a fresh
  widget gives the same state, and ``from_dict(to_dict())`` changes nothing.
- ``close_releases``: after ``close()`` none of the widgets the widget created (descendants, their
  layouts and styles, pooled spare tiles) is left in ipywidgets' registry.
- ``invalid_values``: a value of the wrong type, and each of ``build.invalid_values[trait]`` when
  the builder declares them, raises, leaves the whole state unchanged and is explained in the log.
- ``scripted_interaction``: a user going through the controls (every selection control and slider)
  and the builder's own ``build.script`` logs no error.
- ``export_self_contained``: ``export_html()`` refers to no ``http(s)://`` or protocol-relative
  ``src`` / ``href`` / CSS ``url()``.
- ``one_message_per_widget``: under recording comms (ipywidgets' own tests use such a dummy comm),
  each user action of the scripted interaction sends at most one state update per widget (the
  log's busy line excepted: it shows a message while the action runs and clears it after).

The scripted user acts as the front end does: it changes a control with ``control.set_state(...)``
(what an incoming ``update`` message does), so the echo suppression of ipywidgets is in play.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import uuid
import warnings
from collections import Counter
from typing import Any, Callable, Iterator

import ipywidgets as W
import traitlets

__all__ = [
    "check_failwidget",
    "check_state_roundtrip",
    "check_close_releases",
    "check_invalid_values",
    "check_scripted_interaction",
    "check_export_self_contained",
    "check_one_message_per_widget",
    "WIDGET_CHECKS",
    "RecordingComm",
    "recording_comms",
    "user_actions",
]

Build = Callable[[], Any]


# ------------------------------------------------------------------------------------ dummy comm
class RecordingComm:
    """A comm that records what a widget sends instead of sending it (cf. ipywidgets'
    ``widgets/tests/utils.py`` ``DummyComm``, with a unique id per widget so the widget registry works).

    Attributes
    ----------
    comm_id : str
    messages : list shared by all comms of one :func:`recording_comms` block, of ``(comm_id, data)``.
    """

    kernel = "recording"  # ipywidgets sends only when the comm has a kernel

    def __init__(self, messages: list, comm_id: str | None = None, **kwargs: Any):
        self.comm_id = comm_id or uuid.uuid4().hex
        self.messages = messages

    def open(self, *args: Any, **kwargs: Any) -> None:
        pass

    def on_msg(self, *args: Any, **kwargs: Any) -> None:
        pass

    def send(self, data: Any = None, metadata: Any = None, buffers: Any = None, **kwargs: Any) -> None:
        self.messages.append((self.comm_id, data))

    def close(self, *args: Any, **kwargs: Any) -> None:
        pass


@contextlib.contextmanager
def recording_comms() -> Iterator[list]:
    """Widgets created inside the block get a :class:`RecordingComm`; yields their shared message list."""
    import comm

    messages: list = []
    original = comm.create_comm
    comm.create_comm = lambda *args, **kwargs: RecordingComm(messages, **kwargs)
    try:
        yield messages
    finally:
        comm.create_comm = original


def _registry() -> dict:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return dict(W.Widget.widgets)


# ------------------------------------------------------------------------------------ the user
def _descendants(widget: Any) -> list:
    from failwidgets.widgets.parts import walk_widgets

    return list(walk_widgets(widget))


def _visible(w: Any) -> bool:
    layout = getattr(w, "layout", None)
    return getattr(layout, "display", None) != "none" and getattr(layout, "visibility", None) != "hidden"


def user_actions(widget: Any, max_actions: int = 16) -> list[tuple[Any, str, Callable[[], None]]]:
    """What a user can do with ``widget``'s controls now: ``(control, description, action)`` triples.

    One action per enabled, visible selection control (another option) and slider (another value),
    each done as the front end does it, ``set_state``. Buttons are left to the builder's ``script``
    (they write files, fit models).
    """
    actions: list[tuple[Any, str, Callable[[], None]]] = []
    for w in _descendants(widget):
        if getattr(w, "disabled", False) or not _visible(w):
            continue
        if isinstance(w, (W.Dropdown, W.Select, W.ToggleButtons, W.RadioButtons)) and len(w.options) >= 2:
            index = w.index
            new = 1 if index in (None, 0) else 0
            actions.append(
                (
                    w,
                    f"{type(w).__name__}({w.description or ''}) index {index} -> {new}",
                    lambda w=w, new=new: w.set_state({"index": new}),
                )
            )
        elif isinstance(w, (W.IntSlider, W.FloatSlider, W.BoundedIntText, W.BoundedFloatText)):
            lo, hi = w.min, w.max
            new = lo + (hi - lo) * 0.75
            new = round(new) if isinstance(w, (W.IntSlider, W.BoundedIntText)) else float(new)
            if new == w.value:
                new = lo
            if new != w.value:
                actions.append(
                    (
                        w,
                        f"{type(w).__name__}({w.description or ''}) value {w.value} -> {new}",
                        lambda w=w, new=new: w.set_state({"value": new}),
                    )
                )
        if len(actions) >= max_actions:
            break
    return actions


def _interact(widget: Any, build: Build, on_action: Callable[[str], Any] | None = None) -> None:
    """Every user action (re-collected after each one, controls change), then ``build.script``."""
    done: set[int] = set()
    for _ in range(16):
        todo = [(c, d, a) for c, d, a in user_actions(widget) if id(c) not in done]
        if not todo:
            break
        control, desc, act = todo[0]
        done.add(id(control))
        with on_action(desc) if on_action else contextlib.nullcontext():
            act()
    script = getattr(build, "script", None)
    if script is not None:
        for desc, act in script(widget):
            with on_action(desc) if on_action else contextlib.nullcontext():
                act()


def _n_errors(widget: Any) -> int:
    return int(getattr(widget.log, "n_errors", 0))


def _state(widget: Any) -> str:
    return json.dumps(widget.to_dict(), sort_keys=True)


# ------------------------------------------------------------------------------------ the checks
def check_state_roundtrip(build: Build) -> None:
    """``to_dict`` -> JSON -> ``from_dict`` restores the state on a fresh widget; restoring is idempotent."""
    w = build()
    try:
        _interact(w, build)
        d = w.to_dict()
        text = json.dumps(d)
        w.from_dict(json.loads(text))
        assert _state(w) == json.dumps(d, sort_keys=True), (
            f"from_dict(to_dict()) changed the state of {type(w).__name__}:\n{d}\n->\n{w.to_dict()}"
        )
    finally:
        w.close()
    fresh = build()
    try:
        fresh.from_dict(json.loads(text))
        got = fresh.to_dict()
        assert json.dumps(got, sort_keys=True) == json.dumps(d, sort_keys=True), (
            f"{type(fresh).__name__}: a fresh widget restored from JSON differs:\nsaved    {d}\nrestored {got}"
        )
    finally:
        fresh.close()


def check_close_releases(build: Build) -> None:
    """After ``close()`` nothing the widget created stays in ipywidgets' widget registry."""
    before = set(_registry())
    w = build()
    _interact(w, build)
    w.close()
    left = {k: v for k, v in _registry().items() if k not in before}
    names = Counter(type(v).__name__ for v in left.values())
    assert not left, f"{type(w).__name__}.close() left {len(left)} widgets registered: {dict(names)}"


_WRONG_TYPE = object()


def check_invalid_values(build: Build, invalid_values: dict[str, list] | None = None) -> None:
    """Each invalid value raises, leaves the saved state unchanged, and a declared one is logged."""
    w = build()
    try:
        declared = dict(getattr(build, "invalid_values", {}) if invalid_values is None else invalid_values)
        traits = [k for k in w.to_dict() if k not in ("widget", "version")]
        unknown = sorted(set(declared) - set(traits))
        assert not unknown, f"invalid_values: {unknown} are not state traits of {type(w).__name__}"
        for name in traits:
            for value in [_WRONG_TYPE, *declared.get(name, [])]:
                before = _state(w)
                log_before = w.log.text
                try:
                    setattr(w, name, value)
                except (traitlets.TraitError, ValueError, TypeError) as exc:
                    error = exc
                else:
                    raise AssertionError(
                        f"{type(w).__name__}.{name} = {value!r} was accepted "
                        f"(now {getattr(w, name)!r}); expected an error"
                    )
                after = _state(w)
                assert after == before, (
                    f"{type(w).__name__}.{name} = {value!r} raised {error!r} but changed "
                    f"the state:\n{before}\n->\n{after}"
                )
                if value is not _WRONG_TYPE:
                    new_log = w.log.text[len(log_before) :]
                    assert name in new_log, (
                        f"{type(w).__name__}.{name} = {value!r} was rejected, but the "
                        f"log does not say why (new log: {new_log!r})"
                    )
                    if not isinstance(value, float) or not math.isnan(value):
                        assert getattr(w, name) != value
    finally:
        w.close()


def check_scripted_interaction(build: Build) -> None:
    """Going through every control (and ``build.script``) logs no error."""
    w = build()
    try:
        errors_before = _n_errors(w)
        _interact(w, build)
        assert _n_errors(w) == errors_before, f"{type(w).__name__} logged errors:\n{w.log.text}"
    finally:
        w.close()


_EXTERNAL = re.compile(
    r"""(?:\b(?:src|href)\s*=\s*["']?\s*|url\(\s*["']?\s*|@import\s+["']?)(?:https?:)?//""", re.IGNORECASE
)


def check_export_self_contained(build: Build) -> None:
    """``export_html()`` loads nothing from the network (no http(s) or // src, href, url(), @import)."""
    w = build()
    try:
        page = w.export_html()
        assert "<html" in page.lower(), "export_html: expected an HTML page"
        hits = [page[max(m.start() - 40, 0) : m.end() + 60] for m in _EXTERNAL.finditer(page)]
        assert not hits, f"{type(w).__name__}.export_html() refers to external resources: {hits[:3]}"
    finally:
        w.close()


def check_one_message_per_widget(build: Build) -> None:
    """Each user action sends at most one state update per widget (recorded with dummy comms)."""
    with recording_comms() as messages:
        w = build()
        try:
            registry = _registry()
            # the log's busy line shows "working..." and then clears: two messages on purpose
            log_ids = (
                {getattr(x, "model_id", None) for x in _descendants(w.log)} if isinstance(w.log, W.Widget) else set()
            )
            failures: list[str] = []
            n_actions = [0]

            @contextlib.contextmanager
            def count(desc: str) -> Iterator[None]:
                start = len(messages)
                yield
                n_actions[0] += 1
                updates = Counter(
                    cid for cid, data in messages[start:] if isinstance(data, dict) and data.get("method") == "update"
                )
                for cid, n in updates.items():
                    if n > 1 and cid not in log_ids:
                        keys = [
                            sorted(data.get("state", {}))
                            for c, data in messages[start:]
                            if c == cid and isinstance(data, dict) and data.get("method") == "update"
                        ]
                        widget = registry.get(cid) or _registry().get(cid)
                        failures.append(f"{desc}: {type(widget).__name__} sent {n} updates {keys}")

            _interact(w, build, on_action=count)
            assert n_actions[0] > 0, f"{type(w).__name__}: no user action found to check"
            assert not failures, "one user action, several messages to one widget:\n" + "\n".join(failures[:10])
        finally:
            w.close()


WIDGET_CHECKS: dict[str, Callable[[Build], None]] = {
    "state_roundtrip": check_state_roundtrip,
    "close_releases": check_close_releases,
    "invalid_values": check_invalid_values,
    "scripted_interaction": check_scripted_interaction,
    "export_self_contained": check_export_self_contained,
    "one_message_per_widget": check_one_message_per_widget,
}


def check_failwidget(build: Build) -> None:
    """Run every check of :data:`WIDGET_CHECKS` on ``build`` (a function returning a fresh widget).

    ``build`` may carry ``invalid_values`` (dict trait -> list of values the widget must reject) and
    ``script`` (``script(widget)`` -> list of ``(description, action)``: user actions beyond the
    controls, e.g. button clicks).
    """
    for check in WIDGET_CHECKS.values():
        check(build)
