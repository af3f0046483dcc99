"""Per-method demo glue: what each widget's ``from_demo`` needs at run time (one module per method).

Every module has ``widget_inputs(demo, *, small, progress, ...) -> dict``: the keyword arguments of the
widget's constructor (or of the factory named by the widget), plus an ``"extras"`` entry of attributes
the widget carries afterwards (``demo`` and what was computed on the way). :func:`build_widget` turns
that into the widget, so each ``from_demo`` is two lines.
"""

from __future__ import annotations

from typing import Any, Callable

__all__ = ["build_widget"]


def build_widget(factory: Callable[..., Any], inputs: dict, **kwargs: Any) -> Any:
    """``factory(**inputs, **kwargs)`` (``kwargs`` win), then the ``inputs["extras"]`` set as attributes."""
    inputs = dict(inputs)
    extras = inputs.pop("extras", {})
    widget = factory(**{**inputs, **kwargs})
    for name, value in extras.items():
        setattr(widget, name, value)
    return widget
