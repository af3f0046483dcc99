"""Keyboard shortcuts for the method widgets, through ``ipyevents`` key events.

Plain ipywidgets has no key events. ``ipyevents.Event`` listens on one widget's DOM element: while the
mouse is over that element, every key pressed is sent to the kernel as a dict (``key``, ``code``,
``ctrlKey``, ``shiftKey``, ``altKey``, ``metaKey``, ``type``, ...) and the browser's own action for the
key (scrolling, a notebook shortcut) is prevented. So the element a widget listens on should hold no
text box: typing into one would be taken as shortcuts.

Usage (inside a method widget)::

    self.key_bindings = KeyBindings({"1": lambda: self.label(0), "ctrl+z": self.undo, "arrowright": self.next},
                            log=self.log)
    self.key_events = self.key_bindings.attach(self.key_area)   # None where ipyevents is not usable

A key is written as ``[ctrl+][alt+][shift+]name``: ``name`` is the event's ``key`` in lower case
(``"z"``, ``"3"``, ``"arrowleft"``, ``"pagedown"``, ``" "`` is ``"space"``); ``meta`` (Cmd on a Mac)
counts as ``ctrl``. Shift is part of the name only for letters and named keys (``"shift+z"``,
``"shift+arrowright"``); for other characters it is already in the character (``"!"``, ``"?"``).

Front ends differ in who sees a key first. JupyterLab 4 and Voila let ipyevents take it. Notebook 7
handles keys before ipyevents, so its command-mode shortcuts act as well: ``r`` makes the cell a raw
cell (removing the widget's output), ``a`` / ``b`` / ``c`` / ``x`` / ``v`` / ``m`` / ``y`` / ``z`` edit
cells, the up / down arrows move the cell cursor. There use Ctrl+Z / Ctrl+Shift+Z, ``n`` / ``p``, the
left / right arrows and the digits (which Notebook 7 applies to Markdown cells only).

Setting the environment variable ``FAILWIDGETS_KEY_EVENTS=0`` turns the key events off (for a front end
that has the ipyevents package but not its JavaScript); widgets then show their text-box fallback.
"""

from __future__ import annotations

import importlib.util
import os
from typing import Any, Callable, Mapping

import ipywidgets as W

from failwidgets.widgets.parts.log import guarded

__all__ = ["KeyBindings", "key_events_available", "event_key", "normalize_key", "KEY_EVENTS_ENV"]

KEY_EVENTS_ENV = "FAILWIDGETS_KEY_EVENTS"
_MODIFIERS = ("ctrl", "alt", "shift")
_ALIASES = {
    " ": "space",
    "spacebar": "space",
    "esc": "escape",
    "left": "arrowleft",
    "right": "arrowright",
    "up": "arrowup",
    "down": "arrowdown",
    "del": "delete",
    "cmd": "ctrl",
    "meta": "ctrl",
    "control": "ctrl",
    "option": "alt",
}
_MODIFIER_KEYS = {"shift", "control", "alt", "meta", "altgraph", "capslock", "os"}


def key_events_available() -> bool:
    """True when ``ipyevents`` is importable and ``FAILWIDGETS_KEY_EVENTS`` is not ``"0"``."""
    if os.environ.get(KEY_EVENTS_ENV, "1").strip().lower() in ("0", "false", "no", "off"):
        return False
    return importlib.util.find_spec("ipyevents") is not None


def _compose(name: str, ctrl: bool, alt: bool, shift: bool) -> str:
    if shift and len(name) == 1 and not name.isalpha():
        shift = False  # "!" already says shift; "shift+1" would never match a real event
    mods = [m for m, on in zip(_MODIFIERS, (ctrl, alt, shift)) if on]
    return "+".join([*mods, name])


def normalize_key(spec: str) -> str:
    """The canonical form of a key written by hand: ``"Ctrl+Shift+Z"`` -> ``"ctrl+shift+z"``.

    Raises
    ------
    ValueError
        When ``spec`` is empty, not a string, or only modifiers.
    """
    if not isinstance(spec, str) or not spec:
        raise ValueError(f"key: expected a key such as '3', 'u', 'ctrl+z' or 'arrowright', got {spec!r}")
    if spec in ("+", " "):
        return _ALIASES.get(spec, spec)
    if spec.endswith("++"):  # "ctrl++": the plus key
        parts = [*spec[:-2].split("+"), "+"]
    elif spec.endswith("+"):
        raise ValueError(f"key: expected a key after the last '+' in {spec!r}")
    else:
        parts = spec.split("+")
    *mods, name = parts
    mods = [_ALIASES.get(m.strip().lower(), m.strip().lower()) for m in mods]
    bad = [m for m in mods if m not in _MODIFIERS]
    if bad:
        raise ValueError(f"key: unknown modifier {bad[0]!r} in {spec!r}; expected ctrl, alt, shift")
    name = name if len(name) == 1 else name.strip()
    name = _ALIASES.get(name.lower(), name.lower())
    if name in _MODIFIERS or name in _MODIFIER_KEYS:
        raise ValueError(f"key: expected a key besides the modifiers in {spec!r}")
    return _compose(name, "ctrl" in mods, "alt" in mods, "shift" in mods)


def event_key(event: Mapping[str, Any]) -> str | None:
    """The canonical key of an ipyevents key event dict (None for a lone modifier key or no key)."""
    key = event.get("key")
    if not isinstance(key, str) or not key or key.lower() in _MODIFIER_KEYS or key == "Unidentified":
        return None
    name = "space" if key == " " else (key.lower() if len(key) > 1 or key.isalpha() else key)
    ctrl = bool(event.get("ctrlKey")) or bool(event.get("metaKey"))
    return _compose(name, ctrl, bool(event.get("altKey")), bool(event.get("shiftKey")))


class KeyBindings:
    """A table of keys -> actions, fed with ipyevents key events (or typed characters).

    Parameters
    ----------
    bindings : mapping of str -> callable
        Key (see the module docstring; case and aliases are normalised) -> action called without
        arguments. Several keys may share one action.
    log : LogArea, optional
        Where errors of an action go (the action runs through :func:`~failwidgets.widgets.parts.guarded`);
        without one, errors propagate.

    Attributes
    ----------
    bindings : dict of str -> callable, the normalised table.
    pressed : list of str, the keys handled so far (newest last, at most 100).
    """

    def __init__(self, bindings: Mapping[str, Callable[[], Any]], log: Any = None):
        if not isinstance(bindings, Mapping) or not bindings:
            raise ValueError(f"bindings: expected a non-empty mapping of key -> action, got {bindings!r}")
        self.bindings: dict[str, Callable[[], Any]] = {}
        for spec, action in bindings.items():
            if not callable(action):
                raise ValueError(f"bindings: expected a callable for key {spec!r}, got {type(action).__name__}")
            key = normalize_key(spec)
            if key in self.bindings:
                raise ValueError(f"bindings: key {spec!r} is bound twice (as {key!r})")
            self.bindings[key] = action
        self.log = log
        self.pressed: list[str] = []

    def __contains__(self, spec: str) -> bool:
        return normalize_key(spec) in self.bindings

    def press(self, spec: str) -> bool:
        """Run the action bound to ``spec`` (a key as written in the table); False when none is bound."""
        return self._run(normalize_key(spec))

    def handle(self, event: Mapping[str, Any]) -> bool:
        """Handle one ipyevents event dict; True when a bound key ran its action.

        Only ``keydown`` events act (``keyup`` / ``keypress`` are ignored, so a key does not act twice).
        """
        if not isinstance(event, Mapping) or event.get("type", "keydown") != "keydown":
            return False
        key = event_key(event)
        return False if key is None else self._run(key)

    def _run(self, key: str) -> bool:
        action = self.bindings.get(key)
        if action is None:
            return False
        self.pressed = [*self.pressed[-99:], key]
        if self.log is None:
            action()
        else:
            guarded(self.log, f"key {key!r}")(action)()
        return True

    def attach(self, source: W.DOMWidget, enabled: bool | None = None):
        """Listen to key presses on ``source`` through ipyevents; returns the ``ipyevents.Event``.

        Returns None (and listens to nothing) where key events are not available
        (:func:`key_events_available`), or when ``enabled`` is False. Close the returned widget with
        the owning widget (``FailWidget.close`` closes widget attributes).
        """
        if enabled is False or (enabled is None and not key_events_available()):
            return None
        if not isinstance(source, W.DOMWidget):
            raise ValueError(f"source: expected an ipywidgets DOMWidget to listen on, got {type(source).__name__}")
        from ipyevents import Event

        events = Event(source=source, watched_events=["keydown"], ignore_modifier_key_events=True)
        events.on_dom_event(self.handle)
        source.add_class("fw-keys")
        return events

    def describe(self) -> str:
        """One line listing the bound keys, e.g. for a hint next to the widget."""
        return ", ".join(self.bindings)
