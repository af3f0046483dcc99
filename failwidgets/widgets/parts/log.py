"""Log area, guarded callbacks and a busy indicator.

Errors raised inside widget callbacks are invisible by default in Jupyter. Every callback of a
failwidgets widget goes through :func:`guarded`, which writes the traceback into a :class:`LogArea`
and re-raises when running under pytest (``PYTEST_CURRENT_TEST`` is set) or when the environment
variable ``FAILWIDGETS_RAISE_CALLBACK_ERRORS=1``, so tests see the error.

Messages are written with ``Output.append_stdout/append_stderr`` (``with out:`` captures nothing
outside a front end).
"""

from __future__ import annotations

import contextlib
import functools
import os
import time
import traceback
from typing import Any, Callable, Iterator

import ipywidgets as W
import traitlets

__all__ = ["LogArea", "guarded", "on_click_guarded", "should_raise_callback_errors"]


def should_raise_callback_errors() -> bool:
    """True under pytest or when ``FAILWIDGETS_RAISE_CALLBACK_ERRORS`` is ``1``/``true``."""
    flag = os.environ.get("FAILWIDGETS_RAISE_CALLBACK_ERRORS", "").strip().lower()
    if flag in ("0", "false", "no"):
        return False
    return bool(os.environ.get("PYTEST_CURRENT_TEST")) or flag in ("1", "true", "yes")


class LogArea(W.VBox):
    """A collapsible log: a status line (busy indicator) above an ``Output`` in an ``Accordion``.

    Attributes
    ----------
    output : ipywidgets.Output, holds the messages (``output.outputs`` is assertable in tests).
    status : ipywidgets.HTML, the busy / last-status line.
    n_errors : int trait, number of errors logged so far (observable).
    busy_depth : int trait, > 0 while inside :meth:`busy`.
    """

    n_errors = traitlets.Int(0)
    busy_depth = traitlets.Int(0)

    def __init__(self, title: str = "Log", max_messages: int = 200, **kwargs: Any):
        self.output = W.Output(layout=W.Layout(max_height="200px", overflow="auto"))
        self.status = W.HTML("")
        self.accordion = W.Accordion(children=[self.output], titles=(title,))
        self.accordion.selected_index = None  # collapsed
        self.max_messages = max_messages
        super().__init__(children=[self.status, self.accordion], **kwargs)

    # -- writing -------------------------------------------------------------------------------------
    def _trim(self) -> None:
        outs = self.output.outputs
        if len(outs) > self.max_messages:
            self.output.outputs = tuple(outs[-self.max_messages :])

    # The methods below also accept ``logging``-style calls (``warning("x %s", arg, exc_info=True)``):
    # ``FailWidget`` exposes its LogArea as ``.log``, the attribute ipywidgets itself logs to, so errors
    # that ipywidgets catches (e.g. in ``Button.on_click`` callbacks) land in the log area too.
    def info(self, msg: Any, *args: Any, **kwargs: Any) -> None:
        """Append an informational line (stdout stream)."""
        self.output.append_stdout(f"{time.strftime('%H:%M:%S')} {_fmt(msg, args)}\n")
        self._trim()

    def debug(self, msg: Any, *args: Any, **kwargs: Any) -> None:
        """Ignored (debug messages of ipywidgets are not shown to users)."""

    def warning(self, msg: Any, *args: Any, exc_info: bool = False, **kwargs: Any) -> None:
        """Append a warning line (stderr stream) and open the log."""
        tb = _current_traceback() if exc_info else ""
        self.output.append_stderr(f"{time.strftime('%H:%M:%S')} WARNING {_fmt(msg, args)}\n{tb}")
        self.accordion.selected_index = 0
        self._trim()

    warn = warning

    def error(
        self, exc: BaseException | str, *args: Any, context: str | None = None, exc_info: bool = False, **kwargs: Any
    ) -> None:
        """Append an error with its traceback (stderr), open the log and show a red status line.

        ``exc`` is an exception (its traceback is shown) or a message (``logging``-style ``args``).
        """
        if isinstance(exc, BaseException):
            text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
            short = f"{type(exc).__name__}: {exc}"
        else:
            short = _fmt(exc, args)
            text = short + "\n" + (_current_traceback() if exc_info else "")
        head = f"{time.strftime('%H:%M:%S')} ERROR" + (f" in {context}" if context else "")
        self.output.append_stderr(f"{head}\n{text}")
        self.status.value = f'<span style="color:#b00020">&#9888; {_escape(short)}</span>'
        self.accordion.selected_index = 0
        self.n_errors += 1
        self._trim()

    def exception(self, msg: Any, *args: Any, **kwargs: Any) -> None:
        """Like ``logging.exception``: an error with the current traceback."""
        self.error(msg, *args, exc_info=True)

    def clear(self) -> None:
        self.output.outputs = ()
        self.status.value = ""
        self.n_errors = 0

    @property
    def text(self) -> str:
        """All logged text (stdout and stderr streams) as one string."""
        return "".join(o.get("text", "") for o in self.output.outputs if o.get("output_type") == "stream")

    # -- busy indicator ------------------------------------------------------------------------------
    @contextlib.contextmanager
    def busy(self, msg: str = "working...") -> Iterator[None]:
        """Show ``msg`` with an hourglass while the block runs (nestable); clears it afterwards."""
        previous = self.status.value
        self.busy_depth += 1
        self.status.value = f'<span style="color:#555">&#8987; {_escape(msg)}</span>'
        try:
            yield
        finally:
            self.busy_depth -= 1
            # keep an error status written during the block; otherwise restore
            if self.status.value.startswith('<span style="color:#555">'):
                self.status.value = previous if self.busy_depth else ""


def _fmt(msg: Any, args: tuple) -> str:
    try:
        return str(msg) % args if args else str(msg)
    except (TypeError, ValueError):
        return " ".join(map(str, (msg,) + args))


def _current_traceback() -> str:
    import sys

    exc = sys.exc_info()[1]
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)) if exc else ""


def _escape(s: str) -> str:
    import html

    return html.escape(str(s))


def guarded(log: LogArea | None, context: str | None = None) -> Callable[[Callable], Callable]:
    """Decorator factory: exceptions in the callback go to ``log`` (and re-raise under tests).

    Usage::

        @guarded(self.log)
        def _on_click(button): ...
        button.on_click(_on_click)

        slider.observe(guarded(self.log)(self._on_change), names="value")

    Without a log (``None``) the traceback is printed to ``sys.stderr`` instead.
    """

    def decorate(callback: Callable) -> Callable:
        @functools.wraps(callback)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return callback(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - shown to the user, re-raised under tests
                where = context or getattr(callback, "__qualname__", repr(callback))
                if log is not None:
                    log.error(exc, context=where)
                else:
                    traceback.print_exc()
                if should_raise_callback_errors():
                    raise
                return None

        wrapper.__wrapped_callback__ = callback  # type: ignore[attr-defined]
        return wrapper

    return decorate


class _RaisingDispatcher(W.widget.CallbackDispatcher):
    """``Button``'s callback dispatcher, except that under tests exceptions propagate.

    ipywidgets' ``CallbackDispatcher`` logs and swallows callback exceptions, so a test calling
    ``button.click()`` would never see them. Guarded callbacks have already written to the LogArea.
    """

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        value = None
        for callback in self.callbacks:
            try:
                local_value = callback(*args, **kwargs)
            except Exception as e:  # noqa: BLE001
                if should_raise_callback_errors():
                    raise
                self.log.warning("Exception in callback %s: %s", callback, e, exc_info=True)
            else:
                value = local_value if local_value is not None else value
        return value


def on_click_guarded(button: W.Button, callback: Callable, log: LogArea | None, context: str | None = None) -> Callable:
    """``button.on_click(guarded(log)(callback))`` such that ``button.click()`` re-raises under tests.

    Returns the wrapped callback (pass it to ``button.on_click(wrapped, remove=True)`` to detach).
    """
    handlers = getattr(button, "_click_handlers", None)  # private in ipywidgets 8 (Button.__init__)
    if handlers is not None and not isinstance(handlers, _RaisingDispatcher):
        raising = _RaisingDispatcher()
        raising.callbacks = list(handlers.callbacks)
        button._click_handlers = raising
    wrapped = guarded(log, context)(callback)
    button.on_click(wrapped)
    return wrapped
