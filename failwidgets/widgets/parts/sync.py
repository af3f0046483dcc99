"""How a widget keeps its pieces in step: one echo guard, one batched sync, one rejection, one link.

- :class:`EchoGuard` -- set while a widget copies a value between two of its own pieces (a trait and a
  bqplot mark's ``selected``, an option list and a ``Select``), so that the copy's observer does not
  echo it back.
- :func:`hold_all_sync` -- ``hold_sync`` on several widgets at once, so that all the traits that change
  together on one widget (a mark's ``x`` and ``y``, a tile's ``format`` and ``value``) reach the front
  end in ONE message per widget. ``with w.hold_sync()`` batches only ``w``'s own traits, never those of
  its children.
- :class:`InvalidValue` and :func:`reject` -- what a ``@traitlets.validate`` method raises for a value
  the widget cannot show: a ``TraitError`` (so traitlets keeps the old value) that is also a
  ``ValueError``, with the reason written to the widget's log as well.
- :class:`LoggedLink` -- ``traitlets.link`` between a control and a trait which, when the trait rejects
  the control's value, logs the reason and puts the control back on the trait's value.
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterable, Iterator, NoReturn

import traitlets

__all__ = ["EchoGuard", "hold_all_sync", "InvalidValue", "reject", "LoggedLink"]


class EchoGuard:
    """A re-entrant flag for "this change is a copy, do not copy it back".

    Examples
    --------
    >>> quiet = EchoGuard()
    >>> def on_mark(change):          # observer of the copy's target
    ...     if quiet:
    ...         return
    ...     ...                       # a change made by the user: handle it
    >>> with quiet():                 # the widget copies a value: on_mark returns at once
    ...     pass
    """

    def __init__(self) -> None:
        self._depth = 0

    def __bool__(self) -> bool:
        return self._depth > 0

    @contextlib.contextmanager
    def __call__(self) -> Iterator[None]:
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1


@contextlib.contextmanager
def hold_all_sync(*widgets: Any) -> Iterator[None]:
    """``hold_sync()`` on every widget given (None entries and repeats skipped), as one context.

    Each widget sends the traits changed inside the block in one message when the block ends; a
    widget whose traits did not change sends nothing. Nested use is fine (ipywidgets' ``hold_sync``
    is re-entrant). Accepts widgets or iterables of widgets::

        with hold_all_sync(mark, *grid.tiles):
            mark.x, mark.y = x, y
    """
    with contextlib.ExitStack() as stack:
        seen: set[int] = set()
        for w in _flatten(widgets):
            if w is None or id(w) in seen or not hasattr(w, "hold_sync"):
                continue
            seen.add(id(w))
            stack.enter_context(w.hold_sync())
        yield


def _flatten(items: Iterable[Any]) -> Iterator[Any]:
    for item in items:
        if isinstance(item, (list, tuple, set)) or (hasattr(item, "__next__") and not hasattr(item, "hold_sync")):
            yield from _flatten(item)
        else:
            yield item


class InvalidValue(traitlets.TraitError, ValueError):
    """A trait value the widget rejects (a ``TraitError``, so traitlets keeps the old value, and a
    ``ValueError``, the error type of every other argument check in failwidgets)."""


def reject(widget: Any, message: str) -> NoReturn:
    """Raise :class:`InvalidValue` with ``message``, after writing it to ``widget.log`` as a warning.

    Call it from a ``@traitlets.validate`` method: the trait keeps its old value, the caller gets the
    error and the user sees the reason in the widget's log. ``message`` names the trait and what was
    expected (``"alpha: expected a value in [-1, 1], got 2.0"``).
    """
    log = getattr(widget, "log", None)
    if hasattr(log, "warning") and hasattr(log, "n_errors"):  # a LogArea (not ipywidgets' logger)
        log.warning(f"rejected {message}")
    raise InvalidValue(message)


class LoggedLink(traitlets.link):
    """``traitlets.link((source, name), (target, name))`` that survives a rejected value.

    When one side's new value is rejected by the other side's validation, the rejecting side keeps its
    value, the side that changed is set back to it, and the reason goes to ``log`` (a ``LogArea``)
    instead of the kernel's log, where nobody would see it.

    Parameters
    ----------
    source, target : (HasTraits, str) pairs, as for ``traitlets.link``; ``target`` takes ``source``'s
        value at creation.
    log : LogArea or None
    """

    def __init__(self, source: tuple[Any, str], target: tuple[Any, str], log: Any = None, **kwargs: Any):
        self.log = log
        super().__init__(source, target, **kwargs)

    def _copy(self, changed: tuple[Any, str], other: tuple[Any, str], new: Any, forward, backward) -> None:
        """``other`` takes ``changed``'s new value; if it rejects or coerces it, ``changed`` follows."""
        if self.updating:
            return
        with self._busy_updating():
            try:
                setattr(other[0], other[1], forward(new))
            except traitlets.TraitError as exc:
                logged = isinstance(exc, InvalidValue) or getattr(other[0], "log", None) is self.log  # by reject()
                if self.log is not None and not logged:  # or by the FailWidget whose trait refused
                    self.log.warning(f"rejected {exc}")
            kept = backward(getattr(other[0], other[1]))
            if getattr(changed[0], changed[1]) != kept:
                setattr(changed[0], changed[1], kept)

    def _update_target(self, change: Any) -> None:
        self._copy(self.source, self.target, change.new, self._transform, self._transform_inv)

    def _update_source(self, change: Any) -> None:
        self._copy(self.target, self.source, change.new, self._transform_inv, self._transform)
