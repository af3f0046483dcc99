"""``DirectionSlider``: failure directions (Jain et al. 2023) as a widget.

Per-class strength bars (click to select a class), a histogram of decision values coloured by correct /
error, the hardest and easiest images, the failure and easy captions, a slider from easier (-1) to harder
(+1) whose decoded images follow it, a decoder choice, later failure modes, and an export of the flagged
subset (decision value < 0) as a DataFrame and CSV.
"""

from __future__ import annotations

import html
from typing import Any, Callable, Mapping

import ipywidgets as W
import numpy as np
import pandas as pd
import traitlets

from failwidgets._io import atomic_write, path_inside, safe_filename
from failwidgets._validation import check_array, check_labels, check_positive_int, check_same_length
from failwidgets.data import as_indexable
from failwidgets.methods import is_failure, slice_evidence
from failwidgets.methods.directions import Decoder, FailureDirections
from failwidgets.widgets.parts import BarChart, FailWidget, GroupHistogram, ImageGrid
from failwidgets.widgets.parts.keys import KeyBindings
from failwidgets.widgets.parts.sync import hold_all_sync, reject
from failwidgets.widgets.selections import DirectionSelection

__all__ = ["DirectionSlider"]


def _escape_keep_bold(text: str) -> str:
    """``html.escape(text)`` with the ``<b>`` / ``</b>`` of the chance verdict kept."""
    return html.escape(text).replace("&lt;b&gt;", "<b>").replace("&lt;/b&gt;", "</b>")


class DirectionSlider(DirectionSelection, FailWidget):
    """Explore a fitted :class:`FailureDirections`.

    Parameters
    ----------
    method : FailureDirections (fitted)
    images : uint8 ndarray (N, H, W, 3) or tensor (N, 3, H, W)
        The validation images ``method`` was fitted on.
    embeddings : ndarray (N, D)
        Their raw embeddings (the default slerp reference is the class's mean embedding).
    labels, preds : ndarray (N,)
    class_names : list of str, optional
    captions : callable ``(class_index, mode) -> {"failure": [(caption, score)], "easy": [...]}``, optional
        e.g. ``lambda c, m: method.top_captions(c, caps[c], cap_emb[c], ref_emb[c], mode=m)``.
    reference_embeddings : ndarray (n_classes, D), optional
        Slerp start per class (e.g. reference caption embeddings); default: class mean embeddings.
    decoders : dict name -> Decoder
    n_images, n_decoded : int
        Hardest/easiest images shown, decoded images per slider position.
    export_dir : str
        Where the export button writes ``flagged_<class>_mode<m>.csv`` (see :meth:`export_path`).
    caption_embedder : callable ``list of str -> ndarray (M, D)``, optional
        Text embeddings in the space of ``embeddings`` (e.g. ``encoder.encode_texts``). With it every
        caption shows its evidence: how many of the class's validation images it describes
        (:func:`~failwidgets.methods.directions.caption_members`: closer to the caption than to
        ``"a photo of a <class>"``) and the error rate inside vs outside on ``heldout`` (95 % Wilson
        intervals, Fisher p; :func:`~failwidgets.methods.slice_evidence`).
    heldout : ``(embeddings (M, D), labels (M,), preds (M,))``, optional
        A held-out split for the caption evidence (default: the validation data, marked as not held out).

    Attributes
    ----------
    class_index : Int trait (saved), the shown class, in [0, n_classes).
    alpha : Float trait (saved) in [-1, 1], the slider: easier (-1) to harder (+1).
    decoder : Unicode trait (saved), a key of ``decoders`` ("" without decoders).
    mode : Int trait (saved), the failure mode of the class, in [0, number of its modes).
    status : Unicode trait, the summary line of the class (shown in ``status_html``).
    """

    _state_traits = ("class_index", "alpha", "decoder", "mode")
    _heavy_attrs = ("captions", "decoders", "caption_data", "last_export", "heldout", "caption_embedder")
    class_index = traitlets.Int(0, min=0)
    alpha = traitlets.Float(0.0, min=-1.0, max=1.0)
    decoder = traitlets.Unicode("")
    mode = traitlets.Int(0, min=0)
    status = traitlets.Unicode("")

    def __init__(
        self,
        method: FailureDirections,
        images: Any,
        embeddings,
        labels,
        preds,
        class_names=None,
        captions: Callable[[int, int], Mapping] | None = None,
        reference_embeddings=None,
        decoders: Mapping[str, Decoder] | None = None,
        n_images: int = 8,
        n_decoded: int = 4,
        export_dir: str = ".",
        caption_embedder: Callable[[list], Any] | None = None,
        heldout: tuple | None = None,
        **kwargs,
    ):
        super().__init__(method=method, **kwargs)
        method.check_fitted()
        n_images = check_positive_int(n_images, "n_images")
        n_decoded = check_positive_int(n_decoded, "n_decoded")
        self.embeddings = check_array(embeddings, "embeddings", ndim=2, shape=(None, len(method.mean_)), dtype="float")
        self.labels = check_labels(labels, "labels", n_classes=method.n_classes_)
        if captions is not None and not callable(captions):
            raise TypeError(f"captions: expected a callable (class_index, mode) -> dict, got {type(captions).__name__}")
        for name, dec in dict(decoders or {}).items():
            if not (callable(getattr(dec, "select_class", None)) and callable(getattr(dec, "decode_many", None))):
                raise TypeError(
                    f"decoders[{name!r}]: expected a Decoder (with select_class and decode_many), "
                    f"got {type(dec).__name__}"
                )
        self.failed = is_failure(labels, preds)
        images = as_indexable(images)  # a dataset / files / source: only the images shown are decoded
        self.preds = check_labels(preds, "preds")
        check_same_length(images=images, embeddings=self.embeddings, labels=self.labels)
        self.images = images
        n_classes = method.n_classes_
        self.class_names = list(class_names) if class_names is not None else [str(c) for c in range(n_classes)]
        if len(self.class_names) != n_classes:
            raise ValueError(f"class_names: expected {n_classes} names, got {len(self.class_names)}")
        if reference_embeddings is None:
            D = self.embeddings.shape[1]
            reference_embeddings = np.stack(
                [
                    self.embeddings[self.labels == c].mean(0) if np.any(self.labels == c) else np.ones(D)
                    for c in range(n_classes)
                ]
            )
        self.references = check_array(
            reference_embeddings, "reference_embeddings", shape=(n_classes, self.embeddings.shape[1]), dtype="float"
        )
        self.captions = captions
        self.caption_embedder, self.heldout = caption_embedder, heldout
        if heldout is not None:
            h_emb = check_array(
                heldout[0], "heldout[0] (embeddings)", ndim=2, dtype="float", shape=(None, self.embeddings.shape[1])
            )
            h_lab = check_labels(heldout[1], "heldout[1] (labels)")
            h_pred = check_labels(heldout[2], "heldout[2] (preds)")
            check_same_length(heldout_embeddings=h_emb, heldout_labels=h_lab, heldout_preds=h_pred)
            self.heldout = (h_emb, h_lab, h_pred)
        self.decoders = dict(decoders or {})
        self.n_images, self.n_decoded, self.export_dir = n_images, n_decoded, export_dir
        self.last_export: pd.DataFrame | None = None

        has_chance = bool(np.isfinite(method.chance_).any())
        self.strength_chart = BarChart(
            self.class_names,
            np.nan_to_num(method.strength_, nan=0.0),
            y_label="strength",
            title="failure-mode strength (◆ chance: 95th percentile on permuted targets)"
            if has_chance
            else "failure-mode strength (CV balanced accuracy; chance not computed, n_permutations=0)",
        )
        self.strength_chart.y_scale.min, self.strength_chart.y_scale.max = 0.0, 1.0
        if has_chance:
            self.strength_chart.set_reference(method.chance_, label="chance")
        self.hist_chart = GroupHistogram(
            bins=15, mode="stacked", title="decision values (< 0: flagged)", x_label="decision value"
        )
        self.hist_chart.vline = 0.0
        self.class_dropdown = W.Dropdown(options=[(n, i) for i, n in enumerate(self.class_names)], description="class")
        self.mode_dropdown = W.Dropdown(options=[("mode 1", 0)], description="failure mode")
        self.status_html = W.HTML()
        self.hard_grid = ImageGrid(columns=n_images, thumb_size=64)
        self.easy_grid = ImageGrid(columns=n_images, thumb_size=64)
        self.caption_html = W.HTML()
        self.slider = W.FloatSlider(
            value=0.0,
            min=-1.0,
            max=1.0,
            step=0.05,
            description="easier ↔ harder",
            readout_format=".2f",
            style={"description_width": "initial"},
        )
        self.decoder_dropdown = W.Dropdown(options=list(self.decoders), description="decoder")
        self.decoded_grid = ImageGrid(columns=n_decoded, thumb_size=96)
        self.export_button = W.Button(description="export flagged", icon="download")

        if self.decoders:
            self.decoder = next(iter(self.decoders))
        first_ok = np.flatnonzero(np.isfinite(method.strength_))
        self.class_index = int(first_ok[0]) if len(first_ok) else 0
        self.link("class_index", self.class_dropdown)
        self.link("mode", self.mode_dropdown)
        self.link("alpha", self.slider)
        self.link("decoder", self.decoder_dropdown, transform=(lambda v: v or None, lambda v: v or ""))
        self.observe_guarded(self._on_bar_select, names="selected_index", widget=self.strength_chart)
        self.observe_guarded(self._on_class_index, names="class_index")
        self.observe_guarded(self._on_mode, names="mode")
        self.observe_guarded(self._on_alpha, names="alpha")
        self.observe_guarded(self._on_decoder, names="decoder")
        if self.decoder:
            self.slider.continuous_update = bool(getattr(self.decoders[self.decoder], "interactive", True))
        self.on_click_guarded(self.export_button, self._on_export)

        # keys while the mouse is over the slider row: arrows step the slider, 0 back to the class mean
        self.slider_row = W.HBox([self.slider, self.decoder_dropdown])
        self.key_bindings = KeyBindings(
            {
                "arrowleft": lambda: self._step_slider(-1),
                "arrowdown": lambda: self._step_slider(-1),
                "arrowright": lambda: self._step_slider(+1),
                "arrowup": lambda: self._step_slider(+1),
                "0": lambda: setattr(self.slider, "value", 0.0),
                "home": lambda: self._step_slider(-(10**6)),
                "end": lambda: self._step_slider(10**6),
            },
            log=self.log,
        )
        self.key_events = self.key_bindings.attach(self.slider_row)
        self.children = [
            self.strength_chart,
            W.HBox([self.class_dropdown, self.mode_dropdown]),
            self.status_html,
            self.hist_chart,
            W.HTML("<b>hardest</b>"),
            self.hard_grid,
            W.HTML("<b>easiest</b>"),
            self.easy_grid,
            self.caption_html,
            self.slider_row,
            self.decoded_grid,
            self.export_button,
            self.log,
        ]
        self.run_guarded(self._render_class)

    # ------------------------------------------------------------------ construction from the demo
    @classmethod
    def from_demo(
        cls,
        demo: Any = None,
        *,
        variant: str = "default",
        small: bool | None = None,
        reference: str = "caption",
        max_modes: int | None = None,
        n_permutations: int | None = None,
        progress: bool = False,
        **kwargs: Any,
    ) -> DirectionSlider:
        """The slider on the demo world: failure directions of the demo target in the demo's VL space.

        Fits :class:`FailureDirections` with the paper's defaults (C in ``logspace(-6, 0, 7)``, 2-fold
        stratified CV on balanced accuracy, whitening with the training split's statistics -- shipped,
        see :mod:`failwidgets.demo.training.directions`) on the validation split's cached VL embeddings and
        the target's cached predictions, scores the demo vocabulary's captions per class, and offers two
        decoders: retrieval (the pool split's images of the selected class, nearest to the rotated
        embedding) and the demo's generator (``demo.decoder``).

        Parameters
        ----------
        demo : failwidgets.demo.Demo, optional
            Default: ``failwidgets.demo.load(variant)``.
        variant : ``"default"`` or ``"control"`` (ignored when ``demo`` is given)
        small : bool, optional
            Retrieve from the validation split instead of the pool (nothing more to render or encode)
            and one failure mode per class, so a notebook runs fast in CI. Default: True when the
            environment variable ``FAILWIDGETS_NOTEBOOK_TEST`` is set.
        reference : ``"caption"`` (the paper: slerp starts at ``"a photo of a <class>"``'s embedding) or
            ``"mean"`` (the class's mean validation image embedding)
        max_modes : failure modes per class (default 3, small: 1); further modes beyond the paper
        n_permutations : permuted-target refits per mode for the chance markers (default 30, small: 20)
        progress : progress bars while loading, encoding and fitting
        **kwargs : passed to the constructor (``n_images``, ``n_decoded``, ``export_dir``).

        Returns
        -------
        DirectionSlider, with ``.demo`` (the Demo) and ``.caption_data`` (captions, their embeddings
        and the reference embeddings per class).
        """
        from failwidgets.demo.loading import resolve
        from failwidgets.demo.recipes import build_widget, directions

        demo, small = resolve(demo, variant, small, progress)
        widget = build_widget(
            cls,
            directions.widget_inputs(
                demo,
                small=small,
                reference=reference,
                max_modes=max_modes,
                n_permutations=n_permutations,
                progress=progress,
            ),
            **kwargs,
        )
        # the hypothesis box tests phrases on the held-out split the caption evidence already uses
        widget.set_hypothesis_data(demo.vl, *widget.heldout, caption_evidence=False)
        return widget

    # ------------------------------------------------------------------ trait handlers
    def _on_bar_select(self, change):
        if change["new"] is not None:
            self.class_index = int(change["new"])

    @traitlets.validate("class_index")
    def _valid_class_index(self, proposal):
        n = self.method.n_classes_
        if not proposal["value"] < n:
            reject(self, f"class_index: expected a class index in [0, {n}), got {proposal['value']}")
        return proposal["value"]

    @traitlets.validate("mode")
    def _valid_mode(self, proposal):
        n = len(self.method.modes_[self.class_index])
        if proposal["value"] and not proposal["value"] < n:
            reject(
                self,
                f"mode: expected an index in [0, {max(n, 1)}) for class {self.class_index}, got {proposal['value']}",
            )
        return proposal["value"]

    @traitlets.validate("alpha")
    def _valid_alpha(self, proposal):
        if not np.isfinite(proposal["value"]):
            reject(self, f"alpha: expected a value in [-1, 1], got {proposal['value']}")
        return proposal["value"]

    @traitlets.validate("decoder")
    def _valid_decoder(self, proposal):
        name = proposal["value"]
        if name and name not in self.decoders:
            reject(self, f"decoder: expected one of {list(self.decoders)}, got {name!r}")
        return name

    def _on_class_index(self, change):
        with self.quietly():
            self.mode = 0
        self._render_class()

    def _on_mode(self, change):
        if not self.quietly:
            self._render_mode()

    def _on_alpha(self, change):
        self._render_decoded()

    def _step_slider(self, steps: int) -> None:
        """Move the slider by ``steps`` of its step (clamped to its range)."""
        s = self.slider
        s.value = float(np.clip(round(s.value + steps * s.step, 6), s.min, s.max))

    def _on_decoder(self, change):
        name = change["new"]
        if name:
            self.slider.continuous_update = bool(getattr(self.decoders[name], "interactive", True))
        self._render_decoded()

    # ------------------------------------------------------------------ rendering
    def _has_direction(self) -> bool:
        return bool(self.method.modes_[self.class_index])

    def _render_class(self):
        c = self.class_index
        modes = self.method.modes_[c]
        with hold_all_sync(self.strength_chart.bars, self.mode_dropdown, self.status_html), self.quietly():
            self.strength_chart.selected_index = c
            self.mode_dropdown.options = [
                (
                    f"mode {m.rank + 1} (strength {m.strength:.2f}"
                    f"{'' if m.above_chance is not False else ', not above chance'})",
                    m.rank,
                )
                for m in modes
            ] or [("none", 0)]
            self.mode_dropdown.value = self.mode
            rest = (
                f"{self.method.status_[c]}, {int(self.method.n_errors_[c])} errors of "
                f"{int(self.method.n_samples_[c])}{self._chance_text(modes[0]) if modes else ''}"
            )
            self.status = f"{self.class_names[c]}: {rest}".replace("<b>", "").replace("</b>", "")
            self.status_html.value = f"<b>{html.escape(self.class_names[c])}</b>: {_escape_keep_bold(rest)}"
        self._render_mode()

    @staticmethod
    def _chance_text(mode) -> str:
        if mode.above_chance is None:
            return ""
        verdict = "above chance" if mode.above_chance else "<b>not above chance</b>: too weak to call a failure mode"
        return f"; strength {mode.strength:.2f} vs chance {mode.chance:.2f} (p = {mode.p_value:.2f}), {verdict}"

    def _render_mode(self):
        c, m = self.class_index, self.mode
        grids = (self.hard_grid, self.easy_grid, self.decoded_grid)
        if not self._has_direction():
            with hold_all_sync(self.hist_chart.layout, self.caption_html):
                self.hist_chart.layout.display = "none"
                for g in (self.hard_grid, self.easy_grid, self.decoded_grid):
                    g.set_images(np.zeros((0, 8, 8, 3), np.uint8))
                self.caption_html.value = ""
            return
        rows = np.flatnonzero(self.labels == c)
        # only the class's rows are preprocessed (not all N): indices come back into ``rows``
        emb, lab = self.embeddings[rows], self.labels[rows]
        d = self.method.decision_function(emb, lab, mode=m)
        hard_i, hard_d = self.method.hardest(c, emb, lab, k=self.n_images, mode=m)
        easy_i, easy_d = self.method.easiest(c, emb, lab, k=self.n_images, mode=m)
        hard_i, easy_i = rows[hard_i], rows[easy_i]
        hard_i, hard_d, easy_i, easy_d = self.within_selection(c, m, hard_i, hard_d, easy_i, easy_d)
        with hold_all_sync(self.hist_chart.layout, self.caption_html, grids):
            self.hist_chart.layout.display = ""
            self.hist_chart.set_data(d, self.failed[rows].astype(np.int64), ["correct", "error"])
            self.hard_grid.set_images(
                self.images[hard_i], captions=[f"d={v:.2f}" for v in hard_d], keys=list(map(int, hard_i))
            )
            self.easy_grid.set_images(
                self.images[easy_i], captions=[f"d={v:.2f}" for v in easy_d], keys=list(map(int, easy_i))
            )
            self.caption_html.value = self._caption_table()
        self._render_decoded()

    def _caption_table(self) -> str:
        if self.captions is None:
            return "<i>no captions given</i>"
        top = self.captions(self.class_index, self.mode)
        if not isinstance(top, Mapping) or not {"failure", "easy"} <= set(top):
            raise TypeError(
                "captions: expected the callable to return a dict with 'failure' and 'easy' lists of "
                f"(caption, score), got {type(top).__name__}"
            )
        ev = {}
        if self.caption_embedder is not None:
            texts = [t for t, _ in top["failure"]] + [t for t, _ in top["easy"]]
            ev = dict(zip(texts, self.caption_evidence(texts)))
        extra = "<th>evidence</th>" if ev else ""

        def rows(items):
            return "".join(
                f"<tr><td>{html.escape(t)}</td><td>{s:+.3f}</td>"
                + (f"<td>{html.escape(self._evidence_text(ev[t]))}</td>" if ev else "")
                + "</tr>"
                for t, s in items
            )

        note = ""
        if ev:
            where = "held-out" if self.heldout is not None else "validation (not held out)"
            note = (
                f"<div><i>evidence: validation images of the class closer to the caption than to "
                f"&quot;a photo of a {html.escape(self.class_names[self.class_index])}&quot;; error inside vs "
                f"outside on {where} images, 95% Wilson CIs, Fisher p</i></div>"
            )
        return (
            f"<table><tr><th>failure captions</th><th>score</th>{extra}</tr>{rows(top['failure'])}"
            f"<tr><th>easy captions</th><th>score</th>{extra}</tr>{rows(top['easy'])}</table>{note}"
        )

    def caption_evidence(self, captions: list) -> list:
        """Per caption ``(n_val, SliceEvidence)``: the class's validation images it describes and the error
        inside vs outside it (held-out data when given). Needs ``caption_embedder``."""
        from failwidgets.methods.directions import caption_members, reference_caption

        if self.caption_embedder is None:
            raise ValueError("caption_embedder: caption evidence needs text embeddings, got None")
        c = self.class_index
        emb = np.asarray(
            self.caption_embedder(list(captions) + [reference_caption(self.class_names[c])]), dtype=np.float32
        )
        caps, ref = emb[:-1], emb[-1]
        val = self.embeddings[self.labels == c]
        if self.heldout is not None:
            h_emb, h_lab, h_pred = self.heldout
            keep = h_lab == c
            x, failed = h_emb[keep], is_failure(h_lab[keep], h_pred[keep])
        else:
            x, failed = val, self.failed[self.labels == c]
        return [
            (int(caption_members(val, e, ref).sum()), slice_evidence(caption_members(x, e, ref), failed)) for e in caps
        ]

    @staticmethod
    def _evidence_text(item) -> str:
        n_val, ev = item
        return f"covers {n_val} val; " + ev.summary("images").split("; ", 1)[1]

    def decoded_embedding(self) -> np.ndarray:
        """The rotated embedding (D,) for the current class, mode and slider value."""
        return self.method.rotated_embedding(
            self.class_index, self.alpha, self.references[self.class_index], mode=self.mode
        )

    def _render_decoded(self):
        if not self.decoder or not self._has_direction():
            return
        dec = self.decoders[self.decoder]
        dec.select_class(self.class_index)
        images = dec.decode_many(self.decoded_embedding(), self.n_decoded)
        self.decoded_grid.set_images(images, captions=[f"alpha={self.alpha:+.2f}"] * len(images))

    # ------------------------------------------------------------------ export
    def flagged(self) -> pd.DataFrame:
        """Validation samples of the current class and mode with decision value < 0, hardest first."""
        rows = np.flatnonzero(self.labels == self.class_index)
        if not self._has_direction():
            return pd.DataFrame(
                {"index": np.zeros(0, np.int64), "decision_value": np.zeros(0, np.float32), "error": np.zeros(0, bool)}
            )
        d = self.method.decision_function(self.embeddings[rows], self.labels[rows], mode=self.mode)
        keep = np.argsort(d, kind="stable")
        keep = keep[d[keep] < 0]
        return pd.DataFrame({"index": rows[keep], "decision_value": d[keep], "error": self.failed[rows[keep]]})

    def export_path(self):
        """Where the export button writes: ``export_dir / flagged_<class>_mode<m>.csv``.

        The class name is made a safe file name (no separators, no ``..``), so the file stays in
        ``export_dir`` whatever the class is called.
        """
        name = safe_filename(f"flagged_{self.class_names[self.class_index]}_mode{self.mode + 1}") + ".csv"
        return path_inside(self.export_dir, name, argument="export_dir")

    def _on_export(self, _button):
        df = self.flagged()
        path = self.export_path()
        atomic_write(path, df.to_csv(index=False), newline="")
        self.last_export = df
        self.log.info(f"exported {len(df)} flagged images of {self.class_names[self.class_index]} to {path}")
