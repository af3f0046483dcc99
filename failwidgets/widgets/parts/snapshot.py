"""A static picture of a widget inside its rich display, for front ends that cannot draw the widget.

A widget's display normally carries only ``application/vnd.jupyter.widget-view+json`` (a pointer to the
live model in the kernel). A notebook saved with outputs and opened without a kernel or without a
widget manager (GitHub, nbviewer, ``jupyter nbconvert --to html``, a plain HTML viewer) then shows
nothing. :func:`widget_mimebundle` adds a ``text/html`` snapshot of the view at display time (the HTML
export of :mod:`failwidgets.widgets.parts.export`: images as data URIs, bqplot figures as inline SVG,
controls as text) with a short note saying why the live view is missing. Front ends with a widget
manager (JupyterLab, Notebook 7, Voilà, VS Code) prefer the widget view and never show the snapshot.

Google Colab renders ipywidgets' own controls but needs its custom widget manager for other widget
libraries (bqplot, ipyevents): in Colab the note, a warning (once per session) and the plain-text
form say to call ``google.colab.output.enable_custom_widget_manager()``.

Set ``FAILWIDGETS_SNAPSHOT=0`` to leave the snapshot out (smaller saved notebooks).
"""

from __future__ import annotations

import html
import os
import re
import sys
import warnings

import ipywidgets as W

from failwidgets.widgets.parts import export

__all__ = ["widget_mimebundle", "snapshot_html", "manager_note", "in_colab", "SNAPSHOT_ENV", "COLAB_FIX"]

SNAPSHOT_ENV = "FAILWIDGETS_SNAPSHOT"
WIDGET_VIEW_MIME = "application/vnd.jupyter.widget-view+json"
COLAB_FIX = "from google.colab import output; output.enable_custom_widget_manager()"


def _export_css() -> str:
    """The export page's rules for the fw-* classes (not its ``body`` rule: a fragment must not restyle
    the page around it)."""
    found = re.search(r"<style>(.*?)</style>", getattr(export, "_PAGE", ""), re.S)
    if found is None:
        return ""
    rules = found.group(1).replace("{{", "{").replace("}}", "}").strip().splitlines()
    return "\n".join(line for line in rules if not line.lstrip().startswith("body"))


_CSS = _export_css()
_colab_warned = False


def in_colab() -> bool:
    """True inside Google Colab (its ``google.colab`` package is imported in every Colab kernel)."""
    return "google.colab" in sys.modules


def _snapshot_enabled() -> bool:
    return os.environ.get(SNAPSHOT_ENV, "1").strip().lower() not in ("0", "false", "no", "off")


def manager_note(name: str, colab: bool | None = None) -> str:
    """The plain-text note shown where the live view of widget ``name`` is missing."""
    colab = in_colab() if colab is None else colab
    if colab:
        return (
            f"{name}: Colab draws this widget only with its custom widget manager. Run "
            f"`{COLAB_FIX}` in a cell, then run this cell again."
        )
    return (
        f"{name}: static picture from when the cell ran. The interactive widget needs a running kernel "
        "and a Jupyter widget manager (JupyterLab 4, Notebook 7, Voila or VS Code's Jupyter extension): "
        "open the notebook there and run the cell."
    )


def snapshot_html(widget: W.Widget, name: str | None = None, colab: bool | None = None) -> str:
    """HTML fragment: the note, then the static view of ``widget`` (self-contained, no script).

    Parameters
    ----------
    widget : ipywidgets.Widget
        The widget to draw (its current state).
    name : str, optional
        Shown in the note (default: the class name).
    colab : bool, optional
        Word the note for Colab (default: :func:`in_colab`).
    """
    name = name or type(widget).__name__
    note = html.escape(manager_note(name, colab))
    return (
        f'<div class="fw-snapshot" data-fw-widget="{html.escape(name)}">'
        f"<style>{_CSS}\n.fw-snapshot-note {{ color: #555; font-style: italic; margin: 2px 0 6px; }}</style>"
        f'<p class="fw-snapshot-note">{note}</p>{export.widget_to_html(widget)}</div>'
    )


def widget_mimebundle(widget: W.Widget, bundle: dict | None, name: str | None = None) -> dict:
    """``bundle`` (a widget's own ``_repr_mimebundle_``) plus the ``text/html`` snapshot and the note.

    ``text/plain`` becomes the note (instead of the widget's long repr). A bundle without the widget
    view (a closed widget) is returned unchanged. In Colab a ``UserWarning`` with the fix is issued
    once per session, because Colab shows the widget view (or its error) rather than the snapshot.
    """
    global _colab_warned
    if not bundle or WIDGET_VIEW_MIME not in bundle:
        return bundle
    out = dict(bundle)
    name = name or type(widget).__name__
    out["text/plain"] = manager_note(name)
    if _snapshot_enabled():
        try:
            out["text/html"] = snapshot_html(widget, name)
        except Exception as exc:  # noqa: BLE001 - the live view must still display
            warnings.warn(
                f"{name}: no static snapshot in the display ({type(exc).__name__}: {exc})", RuntimeWarning, stacklevel=3
            )
    if in_colab() and not _colab_warned:
        _colab_warned = True
        warnings.warn(manager_note(name, colab=True), UserWarning, stacklevel=3)
    return out
