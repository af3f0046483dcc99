"""``FailWidget``: the base class of the four method widgets, and the one pattern they follow.

It holds the method object (``.method``), a :class:`LogArea` (``.log``), registers observers through
:func:`guarded` (``observe_guarded`` / ``on_click_guarded``) and links through :meth:`FailWidget.link`,
remembers both so ``close()`` can release them, saves and restores user state (``to_dict`` /
``from_dict``) and writes a static, self-contained HTML snapshot (``export_html``); its rich display
carries that snapshot as ``text/html`` beside the widget view, for front ends that cannot draw widgets.

Subclass contract::

    class DirectionsWidget(FailWidget):
        widget_name = "DirectionsWidget"       # default: the class name
        state_version = 1
        _state_traits = ("selected_direction", "threshold")   # traits saved by to_dict()
        _heavy_attrs = ("result",)                             # dropped by close()
        selected_direction = traitlets.Int(0, min=0)           # typed traits ...
        threshold = traitlets.Float(0.5, min=0.0, max=1.0)

        def __init__(self, method, data, **kwargs):           # the fitted method first, data next
            super().__init__(method=method, **kwargs)          # first
            self.slider = W.FloatSlider(min=0.0, max=1.0, continuous_update=False)
            self.link("threshold", self.slider)                # trait <-> control
            self.observe_guarded(self._on_threshold, names="threshold")
            self.children = [self.header, self.slider, self.log]   # .log where you want it

        @traitlets.validate("selected_direction")            # ... and @validate for the rest
        def _valid_direction(self, proposal):
            if proposal["value"] >= self.n_directions:
                reject(self, f"selected_direction: expected an index < {self.n_directions}, got ...")
            return proposal["value"]

Rules: a rejected value never stays (``@validate`` + :func:`~failwidgets.widgets.parts.sync.reject`,
never raise-and-revert in an observer); every guarded callback runs inside one
:func:`~failwidgets.widgets.parts.sync.hold_all_sync` over the widget's descendants (the log excepted,
so busy messages still show), so one user action sends at most one message per changed widget; copies
between a widget's own pieces go through its :class:`~failwidgets.widgets.parts.sync.EchoGuard`
(``self.quietly``); no subclass overrides ``close()``.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any, Callable, Iterator

import ipywidgets as W
import numpy as np
import traitlets

from failwidgets._io import atomic_write
from failwidgets.widgets.parts.log import LogArea, guarded, on_click_guarded
from failwidgets.widgets.parts.sync import EchoGuard, InvalidValue, LoggedLink, hold_all_sync

__all__ = ["FailWidget", "walk_widgets", "close_recursively"]


def _child_widgets(w: Any) -> list[W.Widget]:
    """Direct child widgets of ``w`` (Box children, bqplot Figure marks/axes/scales, Output none)."""
    out: list[W.Widget] = []
    children = getattr(w, "children", None)
    if isinstance(children, (list, tuple)):
        out.extend(c for c in children if isinstance(c, W.Widget))
    try:
        import bqplot

        if isinstance(w, bqplot.Figure):
            out.extend(w.marks)
            out.extend(w.axes)
            for name in ("scale_x", "scale_y", "interaction", "layout"):
                v = getattr(w, name, None)
                if isinstance(v, W.Widget):
                    out.append(v)
        elif isinstance(w, (bqplot.Mark, bqplot.Axis)):
            scales = getattr(w, "scales", None) or {}
            out.extend(v for v in scales.values() if isinstance(v, W.Widget))
            scale = getattr(w, "scale", None)
            if isinstance(scale, W.Widget):
                out.append(scale)
    except ImportError:  # pragma: no cover
        pass
    return out


def walk_widgets(root: W.Widget, layouts: bool = False) -> list[W.Widget]:
    """``root`` and its descendants, depth first, each widget once.

    With ``layouts=True`` the layout and style widgets of all of them follow (they are widgets too:
    registered until closed, sending their own messages).
    """
    seen: set[int] = set()
    out: list[W.Widget] = []
    stack = [root]
    while stack:
        w = stack.pop()
        if id(w) in seen:
            continue
        seen.add(id(w))
        out.append(w)
        stack.extend(reversed(_child_widgets(w)))
    if layouts:
        for w in list(out):
            for name in ("layout", "style", "tooltip_style"):
                v = getattr(w, name, None)
                if isinstance(v, W.Widget) and id(v) not in seen:
                    seen.add(id(v))
                    out.append(v)
    return out


def close_recursively(root: W.Widget, include_root: bool = True) -> int:
    """Close every descendant of ``root`` (leaves first), then ``root`` itself.

    ``Box.close()`` alone leaves children open in the widget registry. Each descendant's own ``close()``
    runs (so composite parts release what they hold). Returns the number of widgets closed.
    """
    widgets = walk_widgets(root, layouts=True)
    for w in reversed(widgets[1:]):
        w.close()
    if include_root:
        W.Widget.close(root)
    return len(widgets) if include_root else len(widgets) - 1


def _to_jsonable(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, (list, tuple)):
        return [_to_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _to_jsonable(x) for k, x in v.items()}
    return v


class FailWidget(W.VBox):
    """Base class of the method widgets (a ``VBox``).

    Parameters
    ----------
    method : the widget-free method object this widget renders (kept as ``.method``).
    log : an existing :class:`LogArea` to share, or None to create one.

    Attributes
    ----------
    method : the method object.
    log : LogArea; callbacks registered with ``observe_guarded`` / ``on_click_guarded`` report here.
    """

    # ``log`` is a trait of every widget (a ``logging.Logger``); here it is the LogArea, which accepts
    # logger-style calls, so what ipywidgets logs about this widget also appears in it. Callbacks of
    # child controls must still be registered through ``observe_guarded`` / ``on_click_guarded``.
    log = traitlets.Instance(LogArea)

    widget_name: str | None = None
    state_version: int = 1
    _state_traits: tuple[str, ...] = ()
    # attribute names that close() sets to None (arrays, tensors and modules are dropped anyway);
    # the declarations of all classes in the MRO count
    _heavy_attrs: tuple[str, ...] = ("demo",)

    def __init__(self, method: Any = None, log: LogArea | None = None, **kwargs: Any):
        self._observers: list[tuple[Any, Callable, Any]] = []
        self._guarded_clicks: list[tuple[W.Button, Callable]] = []
        self._links: list[LoggedLink] = []
        self.quietly = EchoGuard()  # the one echo guard: ``with self.quietly(): ...``, ``if self.quietly``
        self._batching = EchoGuard()
        self.method = method
        self.log = log if log is not None else LogArea()
        kwargs.setdefault("children", [self.log])
        super().__init__(**kwargs)

    def __setattr__(self, name: str, value: Any) -> None:
        # a trait that rejects a value (its type, Int/Float bounds, Enum, or @validate) keeps its old
        # value; the reason also goes to the log, where the user of the widget sees it
        try:
            super().__setattr__(name, value)
        except traitlets.TraitError as exc:
            try:
                log = self.log
            except traitlets.TraitError:  # pragma: no cover - before __init__ set one
                log = None
            if isinstance(log, LogArea) and not isinstance(exc, InvalidValue):  # reject() has logged it
                log.warning(f"rejected {name} = {value!r}: {exc}")
            raise

    # -- callbacks -----------------------------------------------------------------------------------
    def guard(self, callback: Callable, context: str | None = None) -> Callable:
        """``callback`` wrapped by :func:`guarded` with this widget's log, run inside :meth:`batch`."""
        logged = guarded(self.log, context)(callback)

        def batched(*args: Any, **kwargs: Any) -> Any:
            with self.batch():
                return logged(*args, **kwargs)

        batched.__wrapped_callback__ = callback  # type: ignore[attr-defined]
        batched.__qualname__ = getattr(callback, "__qualname__", "callback")
        return batched

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Hold the sync of every descendant (except the log; layouts are held where they change, e.g. by
        ImageGrid) until the outermost ``batch`` ends.

        Each widget that changed then sends one message; guarded callbacks run inside it.
        """
        if self._batching:
            yield
            return
        log_parts = {id(w) for w in walk_widgets(self.log)} if isinstance(self.log, W.Widget) else set()
        held = [w for w in walk_widgets(self) if id(w) not in log_parts]
        with self._batching(), hold_all_sync(held):
            yield

    def link(self, trait: str, control: Any, name: str = "value", transform: Any = None) -> LoggedLink:
        """Keep ``self.<trait>`` and ``control.<name>`` equal both ways (the control takes the trait's
        value now). A value the trait rejects is logged and the control goes back; unlinked by close()."""
        if not self.has_trait(trait):
            raise ValueError(f"trait: {type(self).__name__} has no trait {trait!r}")
        kw = {} if transform is None else {"transform": transform}
        link = LoggedLink((self, trait), (control, name), log=self.log, **kw)
        self._links.append(link)
        return link

    def observe_guarded(self, handler: Callable, names: str | list[str], widget: Any = None) -> Callable:
        """``widget.observe(guarded(handler), names=names)``; remembered for ``close()``.

        ``widget`` defaults to ``self``; ``names`` is required (an observer without names fires on every
        trait). Returns the wrapped handler.
        """
        if names is None or names is traitlets.All:
            raise ValueError("names: expected a trait name or list of names, got None (would fire on every trait)")
        target = self if widget is None else widget
        wrapped = self.guard(handler)
        target.observe(wrapped, names=names)
        self._observers.append((target, wrapped, names))
        return wrapped

    def on_click_guarded(self, button: W.Button, handler: Callable) -> Callable:
        """``button.on_click(guarded(handler))``; remembered for ``close()``."""
        wrapped = on_click_guarded(button, handler, self.log)
        self._guarded_clicks.append((button, wrapped))
        return wrapped

    def run_guarded(self, func: Callable, *args: Any, busy: str | None = None, **kwargs: Any) -> Any:
        """Call ``func`` now through the guard, optionally showing a busy message."""

        def call() -> Any:
            if busy is None:
                return func(*args, **kwargs)
            with self.log.busy(busy):
                return func(*args, **kwargs)

        return self.guard(call, getattr(func, "__qualname__", None))()

    # -- state ---------------------------------------------------------------------------------------
    @classmethod
    def _name(cls) -> str:
        return cls.widget_name or cls.__name__

    def to_dict(self) -> dict:
        """User state as a JSON-serialisable dict: ``{"widget", "version", <each of _state_traits>}``."""
        d: dict[str, Any] = {"widget": self._name(), "version": self.state_version}
        for name in self._state_traits:
            if not self.has_trait(name):
                raise AttributeError(f"_state_traits: {type(self).__name__} has no trait {name!r}")
            d[name] = _to_jsonable(getattr(self, name))
        json.dumps(d)  # fail here, not when the user saves the file
        return d

    def from_dict(self, d: dict) -> FailWidget:
        """Restore the state written by :meth:`to_dict` (observers fire as if the user set it)."""
        if not isinstance(d, dict):
            raise TypeError(f"d: expected a dict from to_dict(), got {type(d).__name__}")
        if d.get("widget") != self._name():
            raise ValueError(f"d: expected state of widget {self._name()!r}, got {d.get('widget')!r}")
        if d.get("version", self.state_version) > self.state_version:
            raise ValueError(f"d: expected state version <= {self.state_version}, got {d.get('version')}")
        unknown = [k for k in d if k not in ("widget", "version") and k not in self._state_traits]
        if unknown:
            raise ValueError(f"d: unknown state keys {unknown}; expected some of {list(self._state_traits)}")
        for name in self._state_traits:
            if name in d:
                setattr(self, name, d[name])
        return self

    def save_state(self, path: str) -> None:
        """Write :meth:`to_dict` as JSON to ``path`` atomically (the previous file survives a crash)."""
        text = json.dumps(self.to_dict(), indent=1)
        atomic_write(path, text)

    def load_state(self, path: str) -> FailWidget:
        """Restore the state saved by :meth:`save_state`; a damaged file raises ``ValueError`` naming it."""
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
            raise ValueError(f"path: {path} is not a valid JSON widget state file ({exc})") from exc
        return self.from_dict(data)

    # -- export --------------------------------------------------------------------------------------
    def export_html(self, path: str | None = None, title: str | None = None) -> str:
        """A static, self-contained HTML snapshot of the current view (no kernel, no internet needed).

        Images are embedded as base64 data URIs, bqplot figures as inline SVG, controls as their value.
        Writes the file when ``path`` is given; always returns the HTML text.
        """
        from failwidgets.widgets.parts.export import widget_to_html_page

        page = widget_to_html_page(self, title=title or self._name())
        if path is not None:
            atomic_write(path, page)
        return page

    def _repr_mimebundle_(self, **kwargs: Any) -> dict:
        """The widget view plus a static ``text/html`` snapshot for front ends without a widget manager
        (see :mod:`failwidgets.widgets.parts.snapshot`)."""
        from failwidgets.widgets.parts.snapshot import widget_mimebundle

        return widget_mimebundle(self, super()._repr_mimebundle_(**kwargs), name=self._name())

    # -- lifetime ------------------------------------------------------------------------------------
    def close(self) -> None:
        """Release everything: unlink and unobserve, close all descendant widgets (their layouts and
        styles too) and the widgets kept as attributes, drop the ``_heavy_attrs`` and data references.

        Safe on a widget whose ``__init__`` failed half way; a second call does nothing.
        """
        if self.__dict__.get("_closed"):
            return
        self.__dict__["_closed"] = True
        for link in getattr(self, "_links", ()):
            link.unlink()
        for target, handler, names in getattr(self, "_observers", ()):
            try:
                target.unobserve(handler, names=names)
            except ValueError:
                pass
        for button, handler in getattr(self, "_guarded_clicks", ()):
            button.on_click(handler, remove=True)
        self._links, self._observers, self._guarded_clicks = [], [], []
        close_recursively(self, include_root=False)
        # widgets kept as attributes but not shown right now (spare panels, the log if not placed)
        for name, value in list(vars(self).items()):
            if name.startswith("_trait") or name == "comm":
                continue
            items = (
                value
                if isinstance(value, (list, tuple))
                else list(value.values())
                if isinstance(value, dict)
                else [value]
            )
            for item in items:
                if isinstance(item, W.Widget) and item is not self:
                    close_recursively(item)
        self._drop_heavy()
        W.VBox.close(self)

    def _drop_heavy(self) -> None:
        try:
            import torch

            heavy_types: tuple[type, ...] = (np.ndarray, torch.Tensor, torch.nn.Module)
        except ImportError:  # pragma: no cover
            heavy_types = (np.ndarray,)
        declared = {name for cls in type(self).__mro__ for name in vars(cls).get("_heavy_attrs", ())}
        for name in list(vars(self)):
            if name.startswith("_trait") or name in ("comm",):
                continue
            value = vars(self)[name]
            if name in declared or isinstance(value, heavy_types):
                setattr(self, name, None)
        self.method = None
