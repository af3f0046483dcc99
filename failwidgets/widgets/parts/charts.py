"""bqplot charts with selection through traits (testable without a browser).

Selection in bqplot: ``interactions={"click": "select"}`` makes the browser write the mark's
``selected`` trait; setting ``mark.selected`` from Python works too. Each chart mirrors that into one
plain trait (``selected_index``, ``selected_bin``, ``selected_cell``) in both directions.
"""

from __future__ import annotations

from typing import Any, Sequence

import bqplot as bq
import ipywidgets as W
import numpy as np
import traitlets
from bqplot.traits import array_from_json, array_to_json
from traittypes import Array

from failwidgets._validation import check_array, check_choice, check_positive_int
from failwidgets.widgets.parts.base import close_recursively
from failwidgets.widgets.parts.sync import EchoGuard, hold_all_sync, reject

__all__ = ["BarChart", "GroupHistogram", "MatrixHeatmap", "DIVERGING_COLORS", "GROUP_COLORS"]

GROUP_COLORS = ["#4c9be8", "#e8574c", "#59b36b", "#f2a93b", "#9b6cd1", "#7f7f7f"]
DIVERGING_COLORS = ["#2166ac", "#f7f7f7", "#b2182b"]  # negative blue, zero white, positive red
_SELECTED = {"stroke": "black", "stroke-width": 2}
_FIG_LAYOUT = {"width": "100%", "height": "320px"}


def _first(selected: Any) -> Any:
    if selected is None or len(selected) == 0:
        return None
    return np.asarray(selected)[0]


class _Chart(W.VBox):
    """A VBox holding one bqplot Figure (``.figure``); ``close()`` closes marks, axes and scales."""

    def __init__(self, marks: list, axes: list, title: str = "", **kwargs: Any):
        self.figure = bq.Figure(
            marks=marks,
            axes=axes,
            title=title,
            fig_margin={"top": 40, "bottom": 50, "left": 60, "right": 20},
            layout=W.Layout(**_FIG_LAYOUT),
        )
        self._quiet = EchoGuard()  # set while a selection is copied between the mark and the trait
        super().__init__(children=[self.figure], **kwargs)

    def _valid_bar(self, proposal: dict, what: str, n: int) -> Any:
        """The ``@validate`` of a one-bar selection trait: an index in [0, n) or None."""
        i = proposal["value"]
        if i is not None and not 0 <= i < n:
            reject(self, f"{proposal['trait'].name}: expected {what} in [0, {n}) or None, got {i}")
        return i

    def _mirror_bar_selection(self, trait: str) -> None:
        """Keep ``self.bars.selected`` (one bar) and the int trait ``trait`` equal in both directions
        (the trait's ``@validate`` rejects indices out of range)."""

        def from_mark(change: dict) -> None:
            if self._quiet:
                return
            first = _first(change["new"])
            with self._quiet():
                setattr(self, trait, None if first is None else int(first))

        def to_mark(change: dict) -> None:
            if not self._quiet:
                with self._quiet():
                    self.bars.selected = None if change["new"] is None else [change["new"]]

        self.bars.observe(from_mark, names="selected")
        self.observe(to_mark, names=trait)

    def close(self) -> None:
        if getattr(self, "figure", None) is not None:
            close_recursively(self.figure)
        super().close()


class BarChart(_Chart):
    """Bars over categories with click-to-select.

    Parameters
    ----------
    labels : sequence of N str, the categories (x axis).
    values : array (N,), bar heights.
    title, x_label, y_label : str.
    colors : one colour or N colours.

    Traits
    ------
    selected_index : int or None, index of the selected bar; mirrors ``bars.selected`` both ways.

    Attributes
    ----------
    reference : bqplot Scatter, one marker per bar (e.g. a chance level), set by :meth:`set_reference`;
        hidden until then.
    """

    selected_index = traitlets.Int(None, allow_none=True)

    def __init__(
        self,
        labels: Sequence[str] = (),
        values: Any = (),
        title: str = "",
        x_label: str = "",
        y_label: str = "",
        colors: Any = None,
        **kwargs: Any,
    ):
        self.x_scale, self.y_scale = bq.OrdinalScale(), bq.LinearScale()
        self.bars = bq.Bars(
            x=[],
            y=[],
            scales={"x": self.x_scale, "y": self.y_scale},
            interactions={"click": "select"},
            selected_style=_SELECTED,
            unselected_style={"opacity": 0.6},
            colors=[GROUP_COLORS[0]],
        )
        self.x_axis = bq.Axis(scale=self.x_scale, label=x_label, tick_rotate=-30 if labels else 0)
        self.y_axis = bq.Axis(scale=self.y_scale, side="left", label=y_label, grid_lines="dashed")
        self.reference = bq.Scatter(
            x=[],
            y=[],
            scales={"x": self.x_scale, "y": self.y_scale},
            marker="diamond",
            colors=["black"],
            default_size=48,
            visible=False,
        )
        super().__init__([self.bars, self.reference], [self.x_axis, self.y_axis], title=title, **kwargs)
        self.labels: list[str] = []
        self._mirror_bar_selection("selected_index")
        if len(labels):
            self.set_data(labels, values, colors=colors)

    @traitlets.validate("selected_index")
    def _valid_index(self, proposal: dict) -> Any:
        return self._valid_bar(proposal, "an index", len(getattr(self, "labels", ())))

    def set_data(self, labels: Sequence[str], values: Any, colors: Any = None) -> None:
        """Replace the bars (clears the selection). ``labels`` must be unique."""
        labels = [str(x) for x in labels]
        vals = check_array(values, "values", ndim=1, dtype="float")
        if len(labels) != len(vals):
            raise ValueError(f"labels: expected {len(vals)} labels (one per value), got {len(labels)}")
        if len(set(labels)) != len(labels):
            raise ValueError("labels: expected unique category labels, got duplicates")
        self.selected_index = None
        self.labels = labels
        with hold_all_sync(self.bars, self.x_scale):
            self.x_scale.domain = labels
            self.bars.x, self.bars.y = labels, vals
            if colors is not None:
                self.bars.colors = [colors] if isinstance(colors, str) else list(colors)
        with self.reference.hold_sync():  # markers belong to the old bars
            self.reference.x, self.reference.y, self.reference.visible = [], np.zeros(0), False

    def set_reference(self, values: Any, label: str = "") -> None:
        """A marker over each bar at ``values`` (N,); NaN entries get none, all-NaN hides the mark."""
        vals = np.asarray(values, dtype=float)
        if vals.shape != (len(self.labels),):
            raise ValueError(f"values: expected {len(self.labels)} values (one per bar), got shape {vals.shape}")
        keep = np.isfinite(vals)
        with self.reference.hold_sync():
            self.reference.x = [lab for lab, k in zip(self.labels, keep) if k]
            self.reference.y = vals[keep]
            self.reference.labels = [label] if label else []
            self.reference.visible = bool(keep.any())

    @property
    def values(self) -> np.ndarray:
        return np.asarray(self.bars.y, dtype=float)

    @property
    def reference_values(self) -> np.ndarray:
        """The markers' values per bar (N,), NaN where there is none."""
        out = np.full(len(self.labels), np.nan)
        if self.reference.visible:
            where = {lab: i for i, lab in enumerate(self.labels)}
            for lab, v in zip(self.reference.x, np.asarray(self.reference.y, dtype=float)):
                out[where[str(lab)]] = v
        return out

    @property
    def selected_label(self) -> str | None:
        return None if self.selected_index is None else self.labels[self.selected_index]


class GroupHistogram(_Chart):
    """Histogram of values coloured by group (e.g. correct vs error), with optional line and curve.

    Parameters
    ----------
    bins : int, number of bins (shared by all groups).
    mode : ``"stacked"`` or ``"grouped"`` bars.
    density : bool, normalise each group to unit area (so a small error group stays visible).
    title, x_label : str.

    Traits
    ------
    vline : float or None, x position of a vertical line (e.g. a threshold); None hides it.
    selected_bin : int or None, clicked bin (mirrors the bars' ``selected``); see :meth:`bin_members`.

    Attributes (after ``set_data``)
    ----------
    edges_ : ndarray (bins + 1,), counts_ : ndarray (G, bins) (densities if ``density``),
    group_names_ : list of G str.
    """

    vline = traitlets.Float(None, allow_none=True)
    selected_bin = traitlets.Int(None, allow_none=True)

    def __init__(
        self,
        bins: int = 30,
        mode: str = "stacked",
        density: bool = False,
        title: str = "",
        x_label: str = "",
        **kwargs: Any,
    ):
        self.bins = check_positive_int(bins, "bins")
        self.mode = check_choice(mode, "mode", ("stacked", "grouped"))
        self.density = bool(density)
        self.x_scale, self.y_scale = bq.LinearScale(), bq.LinearScale(min=0.0)
        sc = {"x": self.x_scale, "y": self.y_scale}
        self.bars = bq.Bars(
            x=[0.0],
            y=[[0.0]],
            scales=sc,
            type=self.mode,
            padding=0.05,
            colors=GROUP_COLORS,
            interactions={"click": "select"},
            selected_style=_SELECTED,
            display_legend=True,
            labels=[],
        )
        self.line = bq.Lines(
            x=[0.0, 0.0], y=[0.0, 1.0], scales=sc, colors=["black"], line_style="dashed", visible=False, stroke_width=2
        )
        self.curve = bq.Lines(x=[0.0], y=[0.0], scales=sc, colors=["#333333"], visible=False, stroke_width=2)
        self.x_axis = bq.Axis(scale=self.x_scale, label=x_label)
        self.y_axis = bq.Axis(
            scale=self.y_scale, side="left", label="density" if density else "count", grid_lines="dashed"
        )
        super().__init__([self.bars, self.line, self.curve], [self.x_axis, self.y_axis], title=title, **kwargs)
        self._values = np.zeros(0)
        self.edges_ = np.zeros(0)
        self.counts_ = np.zeros((0, 0))
        self.group_names_: list[str] = []
        self._mirror_bar_selection("selected_bin")
        self.observe(self._draw_vline, names="vline")

    @traitlets.validate("selected_bin")
    def _valid_bin(self, proposal: dict) -> Any:
        return self._valid_bar(proposal, "a bin index", max(len(getattr(self, "edges_", ())) - 1, 0))

    def set_data(
        self,
        values: Any,
        groups: Any = None,
        group_names: Sequence[str] | None = None,
        value_range: tuple[float, float] | None = None,
    ) -> None:
        """Histogram ``values`` (N,) split by ``groups`` (N,) ints in [0, G) (default: one group).

        Uses ``numpy.histogram`` with edges shared by all groups.
        """
        vals = check_array(values, "values", ndim=1, dtype="float", min_len=1)
        if groups is None:
            grp = np.zeros(len(vals), dtype=np.int64)
        else:
            grp = check_array(groups, "groups", ndim=1, dtype="int")
            if len(grp) != len(vals):
                raise ValueError(f"groups: expected length {len(vals)} (same as values), got {len(grp)}")
            if grp.min() < 0:
                raise ValueError(f"groups: expected group indices >= 0, got {int(grp.min())}")
        n_groups = int(grp.max()) + 1
        names = [f"group {g}" for g in range(n_groups)] if group_names is None else [str(x) for x in group_names]
        if len(names) < n_groups:
            raise ValueError(f"group_names: expected at least {n_groups} names, got {len(names)}")
        n_groups = len(names)
        edges = np.histogram_bin_edges(vals, bins=self.bins, range=value_range)
        counts = np.stack([np.histogram(vals[grp == g], bins=edges)[0] for g in range(n_groups)]).astype(float)
        if self.density:
            widths = np.diff(edges)
            totals = counts.sum(axis=1, keepdims=True)
            counts = np.divide(counts, totals * widths, out=np.zeros_like(counts), where=totals > 0)
        self._values, self._groups = vals, grp
        self.edges_, self.counts_, self.group_names_ = edges, counts, names
        self.selected_bin = None
        centers = (edges[:-1] + edges[1:]) / 2
        with self.bars.hold_sync():
            self.bars.x, self.bars.y = centers, counts
            self.bars.labels = names
        self._draw_vline({"new": self.vline})

    def set_curve(self, x: Any, y: Any) -> None:
        """Overlay a curve (e.g. a fitted density) on the same axes; ``None`` hides it."""
        if x is None:
            self.curve.visible = False
            return
        xs = check_array(x, "x", ndim=1, dtype="float")
        ys = check_array(y, "y", ndim=1, dtype="float")
        if len(xs) != len(ys):
            raise ValueError(f"y: expected length {len(xs)} (same as x), got {len(ys)}")
        with self.curve.hold_sync():
            self.curve.x, self.curve.y = xs, ys
            self.curve.visible = True

    def bin_members(self, b: int | None = None) -> np.ndarray:
        """Indices (into ``values``) of the points in bin ``b`` (default: the selected bin)."""
        b = self.selected_bin if b is None else b
        if b is None:
            return np.zeros(0, dtype=np.int64)
        if not 0 <= b < len(self.edges_) - 1:
            raise ValueError(f"b: expected a bin index in [0, {len(self.edges_) - 1}), got {b}")
        lo, hi = self.edges_[b], self.edges_[b + 1]
        last = b == len(self.edges_) - 2  # numpy's last bin is closed on the right
        inside = (self._values >= lo) & ((self._values <= hi) if last else (self._values < hi))
        return np.flatnonzero(inside)

    def _draw_vline(self, change: dict) -> None:
        v = change["new"]
        if v is None or self.counts_.size == 0:
            self.line.visible = v is not None
            if v is not None:
                self.line.x = [v, v]
            return
        top = float(self.counts_.sum(axis=0).max() if self.mode == "stacked" else self.counts_.max())
        with self.line.hold_sync():
            self.line.x, self.line.y = [v, v], [0.0, top or 1.0]
            self.line.visible = True


def _cells_from_json(value: Any, obj: Any = None) -> np.ndarray | None:
    """Selected cells sent by the browser: a plain list of ``[row, col]`` pairs -> int array (K, 2).

    bqplot's own deserialiser turns that list into an object array, which it then fails to serialise
    back ("Unsupported dtype object", bqplot issue #1632), so observers never see a click on a cell.
    """
    if isinstance(value, list):
        return np.asarray(value, dtype=np.int64).reshape(-1, 2) if value else None
    return array_from_json(value, obj)


class _GridHeatMap(bq.GridHeatMap):
    """``bqplot.GridHeatMap`` whose ``selected`` survives a click in the browser (see above)."""

    selected = Array(None, allow_none=True).tag(sync=True, from_json=_cells_from_json, to_json=array_to_json)


class MatrixHeatmap(_Chart):
    """An n x m matrix as a bqplot ``GridHeatMap`` with cell selection and a diverging colour scale.

    Parameters
    ----------
    diverging : bool, blue-white-red scale centred at 0 with symmetric limits (for signed values such
        as relation strengths); otherwise a sequential scale between the data min and max.
    title : str.

    Traits
    ------
    selected_cell : (row, col) tuple or None; mirrors the mark's ``selected`` (``[[row, col]]``).
    """

    selected_cell = traitlets.Tuple(None, allow_none=True)

    def __init__(self, diverging: bool = True, title: str = "", **kwargs: Any):
        self.diverging = bool(diverging)
        # reverse=True puts row 0 at the top, as in a printed matrix (bqplot's default is the bottom)
        self.row_scale, self.col_scale = bq.OrdinalScale(reverse=True), bq.OrdinalScale()
        self.color_scale = (
            bq.ColorScale(colors=DIVERGING_COLORS, mid=0.0) if self.diverging else bq.ColorScale(scheme="viridis")
        )
        self.grid = _GridHeatMap(
            color=np.zeros((2, 2)),
            scales={"row": self.row_scale, "column": self.col_scale, "color": self.color_scale},
            interactions={"click": "select"},
            selected_style={"stroke": "black", "stroke-width": 3},
            anchor_style={"fill": "none"},
        )
        self.row_axis = bq.Axis(scale=self.row_scale, side="left")
        self.col_axis = bq.Axis(scale=self.col_scale, tick_rotate=-45)
        self.color_axis = bq.ColorAxis(scale=self.color_scale, side="right")
        super().__init__([self.grid], [self.row_axis, self.col_axis, self.color_axis], title=title, **kwargs)
        self.figure.layout.height = "420px"
        self.figure.fig_margin = {"top": 40, "bottom": 60, "left": 80, "right": 70}  # room for the colour bar
        self.matrix_ = np.zeros((0, 0))
        self.row_labels: list[str] = []
        self.col_labels: list[str] = []
        self.grid.observe(self._from_mark, names="selected")
        self.observe(self._to_mark, names="selected_cell")

    def set_matrix(
        self,
        matrix: Any,
        row_labels: Sequence[str] | None = None,
        col_labels: Sequence[str] | None = None,
        vmax: float | None = None,
    ) -> None:
        """Show ``matrix`` (R, C) (NaN allowed for empty cells); clears the selection.

        ``vmax``: colour limit (diverging: [-vmax, vmax]); default from the data.
        """
        m = check_array(matrix, "matrix", ndim=2, dtype="float", finite=False)
        R, C = m.shape
        if R * C < 2:
            raise ValueError(f"matrix: expected at least 2 cells (bqplot's GridHeatMap rejects 1 x 1), got {m.shape}")
        rows = [str(i) for i in range(R)] if row_labels is None else [str(x) for x in row_labels]
        cols = [str(i) for i in range(C)] if col_labels is None else [str(x) for x in col_labels]
        for name, labels, n in (("row_labels", rows, R), ("col_labels", cols, C)):
            if len(labels) != n:
                raise ValueError(f"{name}: expected {n} labels, got {len(labels)}")
            if len(set(labels)) != n:
                raise ValueError(f"{name}: expected unique labels, got duplicates")
        finite = m[np.isfinite(m)]
        self.selected_cell = None
        self.matrix_, self.row_labels, self.col_labels = m, rows, cols
        with hold_all_sync(self.grid, self.color_scale, self.row_scale, self.col_scale):
            if self.diverging:
                peak = float(vmax) if vmax is not None else float(np.abs(finite).max(initial=0.0)) or 1.0
                self.color_scale.min, self.color_scale.max = -peak, peak
            else:
                lo = float(finite.min()) if finite.size else 0.0
                hi = float(vmax) if vmax is not None else (float(finite.max()) if finite.size else 1.0)
                self.color_scale.min, self.color_scale.max = lo, hi if hi > lo else lo + 1.0
            self.row_scale.domain, self.col_scale.domain = rows, cols
            with self.grid.hold_trait_notifications():  # validate row/column against the new color shape
                self.grid.color = m
                self.grid.row, self.grid.column = rows, cols

    @property
    def selected_value(self) -> float | None:
        if self.selected_cell is None:
            return None
        r, c = self.selected_cell
        return float(self.matrix_[r, c])

    def _from_mark(self, change: dict) -> None:
        if self._quiet:
            return
        sel = change["new"]
        cell = None
        if sel is not None and len(sel):
            first = np.asarray(sel).reshape(-1, 2)[0]
            cell = (int(first[0]), int(first[1]))
        with self._quiet():
            self.selected_cell = cell

    @traitlets.validate("selected_cell")
    def _valid_cell(self, proposal: dict) -> Any:
        cell = proposal["value"]
        R, C = self.matrix_.shape
        if cell is not None and (len(cell) != 2 or not (0 <= cell[0] < R and 0 <= cell[1] < C)):
            reject(self, f"selected_cell: expected (row, col) inside a {R} x {C} matrix or None, got {cell}")
        return cell

    def _to_mark(self, change: dict) -> None:
        cell = change["new"]
        if not self._quiet:
            with self._quiet():
                self.grid.selected = None if cell is None else np.array([list(cell)])
