"""Selections shared by every widget: ``.selection`` (indices into the widget's data) and ``link``.

``SelectionMixin`` gives a widget

- ``selection``: a list of row indices into the widget's data. The widget *publishes* what the user
  picked there (a Barlow leaf, a direction's flagged set, a filter's qualified images, a relation cell,
  a lasso on the map). Assigning it from Python (or through :func:`link`) hands the widget a selection
  from elsewhere: it then shows only examples inside it (the map lights the points up).
- ``selection_frame()``: a DataFrame of the selected rows with ``index``, ``label``, ``prediction``,
  ``error`` and the widget's score column (columns the widget does not know are left out; give them
  with ``set_selection_data``).

A widget implements three small hooks::

    class MyWidget(SelectionMixin, FailWidget):
        score_name = "decision_value"
        def _selection_size(self): return len(self.labels)
        def _selection_columns(self): return {"label": self.labels, "prediction": self.preds, ...}
        def _apply_selection(self, indices): ...   # indices (K,) from outside, or None when cleared

and calls ``self._publish_selection(indices)`` when the user picks something.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import traitlets

from failwidgets._validation import check_labels, to_numpy

__all__ = ["SelectionMixin", "link", "SelectionLink"]


class SelectionMixin(traitlets.HasTraits):
    """Mixin of the ``selection`` trait and ``selection_frame`` (see the module docstring).

    Traits
    ------
    selection : list of int, row indices into the widget's data (unique, in the order given).
    """

    selection = traitlets.List()
    score_name: str = "score"

    # -- hooks ---------------------------------------------------------------------------------------
    def _selection_size(self) -> int | None:
        """Number of rows selections index (None: unknown, indices are only checked to be >= 0)."""
        return None

    def _selection_columns(self) -> dict[str, np.ndarray]:
        """Per-row columns of ``selection_frame`` (``label``, ``prediction``, ``error``, score)."""
        return {}

    def _apply_selection(self, indices: np.ndarray | None) -> None:
        """Show a selection assigned from outside (None: cleared). Default: nothing to show."""

    def refresh_selection(self) -> None:
        """Publish the widget's current pick again (called by :func:`link` when it starts)."""

    # -- public --------------------------------------------------------------------------------------
    @property
    def selection_indices(self) -> np.ndarray:
        """``selection`` as an int64 ndarray (K,)."""
        return np.asarray(self.selection, dtype=np.int64)

    @property
    def selection_filter(self) -> np.ndarray | None:
        """The last selection assigned from outside (int64 (K,)), or None: what the examples are limited to."""
        return getattr(self, "_selection_filter_", None)

    def clear_selection_filter(self) -> None:
        """Forget the selection assigned from outside (show all examples again)."""
        self._selection_filter_ = None
        self._apply_selection(None)

    def set_selection_data(self, labels: Any = None, preds: Any = None) -> None:
        """Labels / predictions (N,) for ``selection_frame`` of a widget whose data has none (e.g. filters)."""
        if labels is not None:
            self._selection_labels_ = check_labels(labels, "labels", length=self._selection_size())
        if preds is not None:
            self._selection_preds_ = check_labels(preds, "preds", length=self._selection_size())

    def selection_frame(self) -> pd.DataFrame:
        """The selected rows: ``index``, ``label``, ``prediction``, ``error`` and the score column.

        Returns
        -------
        DataFrame with one row per selected index (the order of ``selection``).
        """
        idx = self.selection_indices
        cols = dict(self._selection_columns())
        labels = getattr(self, "_selection_labels_", None)
        preds = getattr(self, "_selection_preds_", None)
        if labels is not None:
            cols.setdefault("label", labels)
        if preds is not None:
            cols.setdefault("prediction", preds)
        if "error" not in cols and "label" in cols and "prediction" in cols:
            cols["error"] = np.asarray(cols["label"]) != np.asarray(cols["prediction"])
        out = {"index": idx}
        for name in ("label", "prediction", "error", self.score_name):
            if name in cols and cols[name] is not None:
                out[name] = np.asarray(cols[name])[idx]
        for name, col in cols.items():
            if name not in out and col is not None:
                out[name] = np.asarray(col)[idx]
        return pd.DataFrame(out)

    # -- internals -----------------------------------------------------------------------------------
    def _publish_selection(self, indices: Any) -> None:
        """Set ``selection`` from the widget's own interaction (``_apply_selection`` is not called)."""
        self._selection_publishing_ = True
        try:
            self.selection = _as_index_list(indices)
        finally:
            self._selection_publishing_ = False

    @traitlets.validate("selection")
    def _validate_selection(self, proposal: dict) -> list:
        arr = _as_index_array(proposal["value"], "selection")
        n = self._selection_size()
        if arr.size:
            lo, hi = int(arr.min()), int(arr.max())
            if lo < 0 or (n is not None and hi >= n):
                want = f"[0, {n})" if n is not None else ">= 0"
                raise traitlets.TraitError(f"selection: expected row indices in {want}, got values in [{lo}, {hi}]")
        if arr.size > 1 and not np.all(arr[1:] > arr[:-1]):  # not already increasing: drop duplicates
            _, first = np.unique(arr, return_index=True)
            if first.size != arr.size:
                arr = arr[np.sort(first)]
        return arr.tolist()

    @traitlets.observe("selection")
    def _on_selection_trait(self, change: dict) -> None:
        if getattr(self, "_selection_publishing_", False):
            return
        arr = np.asarray(change["new"], dtype=np.int64)
        self._selection_filter_ = arr if arr.size else None
        self._apply_selection(self._selection_filter_)


def _as_index_array(value: Any, name: str) -> np.ndarray:
    arr = to_numpy(value, name) if not isinstance(value, list) else np.asarray(value)
    if arr.ndim != 1:
        raise traitlets.TraitError(f"{name}: expected a 1-D list of row indices, got shape {arr.shape}")
    if arr.size == 0:
        return np.zeros(0, np.int64)
    if arr.dtype == bool:
        return np.flatnonzero(arr).astype(np.int64)
    if not np.issubdtype(arr.dtype, np.integer):
        if np.issubdtype(arr.dtype, np.floating) and np.all(np.mod(arr, 1) == 0):
            return arr.astype(np.int64)
        raise traitlets.TraitError(f"{name}: expected integer row indices, got dtype {arr.dtype}")
    return arr.astype(np.int64, copy=False)


def _as_index_list(value: Any) -> list:
    return _as_index_array(value, "selection").tolist()


class SelectionLink:
    """A two-way link between two widgets' ``selection`` (see :func:`link`); ``unlink()`` removes it."""

    def __init__(self, source: SelectionMixin, target: SelectionMixin, rows: Any = None):
        for name, w in (("source", source), ("target", target)):
            if not isinstance(w, SelectionMixin):
                raise TypeError(f"{name}: expected a failwidgets widget with a .selection, got {type(w).__name__}")
        self.source, self.target = source, target
        self.rows = None
        if rows is not None:
            self.rows = _as_index_array(rows, "rows")
            n_src, n_tgt = source._selection_size(), target._selection_size()
            if n_tgt is not None and self.rows.size != n_tgt:
                raise ValueError(
                    f"rows: expected {n_tgt} entries (one source row per row of the target), got {self.rows.size}"
                )
            if self.rows.size and (self.rows.min() < 0 or (n_src is not None and self.rows.max() >= n_src)):
                raise ValueError(
                    f"rows: expected source row indices in [0, {n_src}), got values in "
                    f"[{int(self.rows.min())}, {int(self.rows.max())}]"
                )
        else:
            n_src, n_tgt = source._selection_size(), target._selection_size()
            if n_src is not None and n_tgt is not None and n_src != n_tgt:
                raise ValueError(
                    f"rows: the widgets index different data ({n_src} and {n_tgt} rows); pass rows= "
                    "(for each target row, its row in the source)"
                )
        self._busy = False
        source.observe(self._from_source, names="selection")
        target.observe(self._from_target, names="selection")
        self._share_labels()
        source.refresh_selection()  # start in sync: the source's current pick shows in the target
        if source.selection and not self._busy:
            self._from_source({"new": source.selection})

    def _share_labels(self) -> None:
        """Give the target the source's labels / predictions when it has none (e.g. filter widgets)."""
        cols = self.source._selection_columns()
        tcols = self.target._selection_columns()
        lab, pred = cols.get("label"), cols.get("prediction")
        if lab is None or pred is None or ("label" in tcols and "prediction" in tcols):
            return
        lab, pred = np.asarray(lab), np.asarray(pred)
        if self.rows is not None:
            lab, pred = lab[self.rows], pred[self.rows]
        n = self.target._selection_size()
        if n is None or n == lab.shape[0]:
            self.target.set_selection_data(labels=lab, preds=pred)

    def _to_target(self, idx: np.ndarray) -> np.ndarray:
        if self.rows is None:
            return idx
        return np.flatnonzero(np.isin(self.rows, idx))

    def _to_source(self, idx: np.ndarray) -> np.ndarray:
        return idx if self.rows is None else self.rows[idx]

    def _from_source(self, change: dict) -> None:
        if self._busy:
            return
        self._busy = True
        try:
            self.target.selection = self._to_target(np.asarray(change["new"], np.int64)).tolist()
        finally:
            self._busy = False

    def _from_target(self, change: dict) -> None:
        if self._busy:
            return
        self._busy = True
        try:
            self.source.selection = self._to_source(np.asarray(change["new"], np.int64)).tolist()
        finally:
            self._busy = False

    def unlink(self) -> None:
        for w, h in ((self.source, self._from_source), (self.target, self._from_target)):
            try:
                w.unobserve(h, names="selection")
            except ValueError:
                pass


def link(source: SelectionMixin, target: SelectionMixin, *, rows: Any = None) -> SelectionLink:
    """Link two widgets' selections both ways (typically ``link(failure_map, tree_browser)``).

    A selection published in one widget (a lasso on the map, a Barlow leaf, a direction's flagged set,
    a filter's qualified images, a relation cell) is assigned to the other one, which lights it up (the
    map) or shows only examples inside it (the method widgets).

    Parameters
    ----------
    source, target : widgets with a ``selection`` (:class:`SelectionMixin`).
    rows : int ndarray (N_target,), optional
        For each row of the target's data, its row in the source's data (default: the same rows).

    Returns
    -------
    SelectionLink (``unlink()`` to remove it)
    """
    return SelectionLink(source, target, rows=rows)
