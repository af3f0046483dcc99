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

from failwidgets._validation import check_array, check_labels, check_same_length
from failwidgets.methods import is_failure
from failwidgets.methods.directions import Decoder, FailureDirections
from failwidgets.widgets.parts import BarChart, FailWidget, GroupHistogram, ImageGrid
from failwidgets.widgets.selections import DirectionSelection

__all__ = ["DirectionSlider"]

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
        Where the export button writes ``flagged_<class>.csv``.

    Traits (saved by ``to_dict``)
    -----------------------------
    class_index : int, alpha : float in [-1, 1], decoder : str, mode : int.
    """

    _state_traits = ("class_index", "alpha", "decoder", "mode")
    class_index = traitlets.Int(0)
    alpha = traitlets.Float(0.0)
    decoder = traitlets.Unicode("")
    mode = traitlets.Int(0)

    def __init__(self, method: FailureDirections, images: Any, embeddings, labels, preds,
                 class_names=None, captions: Callable[[int, int], Mapping] | None = None,
                 reference_embeddings=None, decoders: Mapping[str, Decoder] | None = None,
                 n_images: int = 8, n_decoded: int = 4, export_dir: str = ".", **kwargs):
        super().__init__(method=method, **kwargs)
        method._check_fitted()
        self.embeddings = check_array(embeddings, "embeddings", ndim=2, dtype="float")
        self.labels = check_labels(labels, "labels")
        self.failed = is_failure(labels, preds)
        self.preds = check_labels(preds, "preds")
        check_same_length(images=images, embeddings=self.embeddings, labels=self.labels)
        self.images = images
        n_classes = method.n_classes_
        self.class_names = list(class_names) if class_names is not None else [str(c) for c in range(n_classes)]
        if len(self.class_names) != n_classes:
            raise ValueError(f"class_names: expected {n_classes} names, got {len(self.class_names)}")
        if reference_embeddings is None:
            D = self.embeddings.shape[1]
            reference_embeddings = np.stack([self.embeddings[self.labels == c].mean(0) if np.any(self.labels == c)
                                             else np.ones(D) for c in range(n_classes)])
        self.references = check_array(reference_embeddings, "reference_embeddings",
                                      shape=(n_classes, self.embeddings.shape[1]), dtype="float")
        self.captions = captions
        self.decoders = dict(decoders or {})
        self.n_images, self.n_decoded, self.export_dir = n_images, n_decoded, export_dir
        self.last_export: pd.DataFrame | None = None

        has_chance = bool(np.isfinite(method.chance_).any())
        self.strength_chart = BarChart(
            self.class_names, np.nan_to_num(method.strength_, nan=0.0), y_label="strength",
            title="failure-mode strength (◆ chance: 95th percentile on permuted targets)" if has_chance
            else "failure-mode strength (CV balanced accuracy; chance not computed, n_permutations=0)")
        self.strength_chart.y_scale.min, self.strength_chart.y_scale.max = 0.0, 1.0
        if has_chance:
            self.strength_chart.set_reference(method.chance_, label="chance")
        self.hist_chart = GroupHistogram(bins=15, mode="stacked", title="decision values (< 0: flagged)",
                                         x_label="decision value")
        self.hist_chart.vline = 0.0
        self.class_dropdown = W.Dropdown(options=[(n, i) for i, n in enumerate(self.class_names)],
                                         description="class")
        self.mode_dropdown = W.Dropdown(options=[("mode 1", 0)], description="failure mode")
        self.status = W.HTML()
        self.hard_grid = ImageGrid(columns=n_images, thumb_size=64)
        self.easy_grid = ImageGrid(columns=n_images, thumb_size=64)
        self.caption_html = W.HTML()
        self.slider = W.FloatSlider(value=0.0, min=-1.0, max=1.0, step=0.05, description="easier ↔ harder",
                                    readout_format=".2f", style={"description_width": "initial"})
        self.decoder_dropdown = W.Dropdown(options=list(self.decoders), description="decoder")
        self.decoded_grid = ImageGrid(columns=n_decoded, thumb_size=96)
        self.export_button = W.Button(description="export flagged", icon="download")

        self.observe_guarded(self._on_bar_select, names="selected_index", widget=self.strength_chart)
        self.observe_guarded(lambda ch: setattr(self, "class_index", ch["new"]), names="value", widget=self.class_dropdown)
        self.observe_guarded(lambda ch: setattr(self, "mode", ch["new"]), names="value", widget=self.mode_dropdown)
        self.observe_guarded(lambda ch: setattr(self, "alpha", ch["new"]), names="value", widget=self.slider)
        self.observe_guarded(lambda ch: setattr(self, "decoder", ch["new"] or ""), names="value",
                             widget=self.decoder_dropdown)
        self.observe_guarded(self._on_class_index, names="class_index")
        self.observe_guarded(self._on_mode, names="mode")
        self.observe_guarded(self._on_alpha, names="alpha")
        self.observe_guarded(self._on_decoder, names="decoder")
        self.on_click_guarded(self.export_button, self._on_export)

        self.children = [
            self.strength_chart, W.HBox([self.class_dropdown, self.mode_dropdown]), self.status, self.hist_chart,
            W.HTML("<b>hardest</b>"), self.hard_grid, W.HTML("<b>easiest</b>"), self.easy_grid,
            self.caption_html, W.HBox([self.slider, self.decoder_dropdown]), self.decoded_grid,
            self.export_button, self.log,
        ]
        if self.decoders:
            self.decoder = next(iter(self.decoders))
        first_ok = np.flatnonzero(np.isfinite(method.strength_))
        self.class_index = int(first_ok[0]) if len(first_ok) else 0
        self.run_guarded(self._render_class)

    # ------------------------------------------------------------------ construction from the demo
    @classmethod
    def from_demo(cls, demo: Any = None, *, variant: str = "default", small: bool | None = None,
                  reference: str = "caption", max_modes: int | None = None, n_permutations: int | None = None,
                  progress: bool = False,
                  **kwargs: Any) -> "DirectionSlider":
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
        from failwidgets._validation import check_choice
        from failwidgets.demo.loading import resolve
        from failwidgets.demo.recipes.directions import demo_captions, whitening
        from failwidgets.methods.directions import GeneratorDecoder, RetrievalDecoder

        check_choice(reference, "reference", ["caption", "mean"])
        demo, small = resolve(demo, variant, small, progress)
        val = demo.world["val"]
        emb = demo.embeddings("val", progress=progress)
        preds = demo.predictions("val", progress=progress)
        names = demo.world.class_names
        fd = FailureDirections(max_modes=(1 if small else 3) if max_modes is None else max_modes,
                               n_permutations=(20 if small else 30) if n_permutations is None else n_permutations,
                               progress=progress)
        fd.fit(emb, val.labels, preds, n_classes=len(names), whitening=whitening(demo, progress=progress))
        caps, cap_emb, refs = demo_captions(demo)

        def captions(c, m):
            return fd.top_captions(c, caps[c], cap_emb[c], refs[c], k=5, mode=m)

        bank = val if small else demo.world["pool"]
        bank_emb = emb if small else demo.embeddings("pool", progress=progress)
        decoders = {"retrieval": RetrievalDecoder(bank_emb, bank.images, labels=bank.labels),
                    "generator": GeneratorDecoder(demo.decoder, embed_dim=demo.decoder.embed_dim, jitter=0.05)}
        references = refs if reference == "caption" else None
        widget = cls(fd, val.images, emb, val.labels, preds, class_names=names, captions=captions,
                     reference_embeddings=references, decoders=decoders, **kwargs)
        test = demo.world["test"]  # held out from every fit: where hypotheses and captions are checked
        widget.set_hypothesis_data(demo.vl, demo.embeddings("test", progress=progress), test.labels,
                                   demo.predictions("test", progress=progress))
        widget.demo = demo
        widget.caption_data = {"captions": caps, "caption_embeddings": cap_emb, "reference_embeddings": refs}
        return widget

    # ------------------------------------------------------------------ trait handlers
    def _on_bar_select(self, change):
        if change["new"] is not None:
            self.class_index = int(change["new"])

    def _on_class_index(self, change):
        c = change["new"]
        if not 0 <= c < self.method.n_classes_:
            raise ValueError(f"class_index: expected a class index in [0, {self.method.n_classes_}), got {c}")
        self.mode = 0
        self._render_class()

    def _on_mode(self, change):
        n = len(self.method.modes_[self.class_index])
        if change["new"] and not 0 <= change["new"] < n:
            raise ValueError(f"mode: expected an index in [0, {max(n, 1)}) for class {self.class_index}, got {change['new']}")
        self.mode_dropdown.value = change["new"]
        self._render_mode()

    def _on_alpha(self, change):
        a = change["new"]
        if not -1.0 <= a <= 1.0:
            raise ValueError(f"alpha: expected a value in [-1, 1], got {a}")
        self.slider.value = a
        self._render_decoded()

    def _on_decoder(self, change):
        name = change["new"]
        if name and name not in self.decoders:
            raise ValueError(f"decoder: expected one of {list(self.decoders)}, got {name!r}")
        self.decoder_dropdown.value = name or None
        if name:
            self.slider.continuous_update = bool(getattr(self.decoders[name], "interactive", True))
        self._render_decoded()

    # ------------------------------------------------------------------ rendering
    def _has_direction(self) -> bool:
        return bool(self.method.modes_[self.class_index])

    def _render_class(self):
        c = self.class_index
        with self.hold_sync():
            self.class_dropdown.value = c
            self.strength_chart.selected_index = c
            modes = self.method.modes_[c]
            self.mode_dropdown.options = [(f"mode {m.rank + 1} (strength {m.strength:.2f}"
                                           f"{'' if m.above_chance is not False else ', not above chance'})", m.rank)
                                          for m in modes] or [("none", 0)]
            self.status.value = (f"<b>{html.escape(self.class_names[c])}</b>: {html.escape(self.method.status_[c])}, "
                                 f"{int(self.method.n_errors_[c])} errors of {int(self.method.n_samples_[c])}"
                                 f"{self._chance_text(modes[0]) if modes else ''}")
        self._render_mode()

    @staticmethod
    def _chance_text(mode) -> str:
        if mode.above_chance is None:
            return ""
        verdict = "above chance" if mode.above_chance else "<b>not above chance</b>: too weak to call a failure mode"
        return f"; strength {mode.strength:.2f} vs chance {mode.chance:.2f} (p = {mode.p_value:.2f}), {verdict}"

    def _render_mode(self):
        c, m = self.class_index, self.mode
        if not self._has_direction():
            with self.hold_sync():
                self.hist_chart.layout.display = "none"
                for g in (self.hard_grid, self.easy_grid, self.decoded_grid):
                    g.set_images(np.zeros((0, 8, 8, 3), np.uint8))
                self.caption_html.value = ""
            return
        rows = np.flatnonzero(self.labels == c)
        d = self.method.decision_function(self.embeddings[rows], self.labels[rows], mode=m)
        hard_i, hard_d = self.method.hardest(c, self.embeddings, self.labels, k=self.n_images, mode=m)
        easy_i, easy_d = self.method.easiest(c, self.embeddings, self.labels, k=self.n_images, mode=m)
        hard_i, hard_d, easy_i, easy_d = self.within_selection(c, m, hard_i, hard_d, easy_i, easy_d)
        with self.hold_sync():
            self.hist_chart.layout.display = ""
            self.hist_chart.set_data(d, self.failed[rows].astype(np.int64), ["correct", "error"])
            self.hard_grid.set_images(self.images[hard_i], captions=[f"d={v:.2f}" for v in hard_d], keys=list(map(int, hard_i)))
            self.easy_grid.set_images(self.images[easy_i], captions=[f"d={v:.2f}" for v in easy_d], keys=list(map(int, easy_i)))
            self.caption_html.value = self._caption_table()
        self._render_decoded()

    def _caption_table(self) -> str:
        if self.captions is None:
            return "<i>no captions given</i>"
        top = self.captions(self.class_index, self.mode)
        def rows(items):
            return "".join(f"<tr><td>{html.escape(t)}</td><td>{s:+.3f}</td></tr>" for t, s in items)
        return (f"<table><tr><th>failure captions</th><th>score</th></tr>{rows(top['failure'])}"
                f"<tr><th>easy captions</th><th>score</th></tr>{rows(top['easy'])}</table>")

    def decoded_embedding(self) -> np.ndarray:
        """The rotated embedding (D,) for the current class, mode and slider value."""
        return self.method.rotated_embedding(self.class_index, self.alpha, self.references[self.class_index], mode=self.mode)

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
            return pd.DataFrame({"index": np.zeros(0, np.int64), "decision_value": np.zeros(0, np.float32),
                                 "error": np.zeros(0, bool)})
        d = self.method.decision_function(self.embeddings[rows], self.labels[rows], mode=self.mode)
        keep = np.argsort(d, kind="stable")
        keep = keep[d[keep] < 0]
        return pd.DataFrame({"index": rows[keep], "decision_value": d[keep], "error": self.failed[rows[keep]]})

    def _on_export(self, _button):
        import os

        df = self.flagged()
        path = os.path.join(self.export_dir, f"flagged_{self.class_names[self.class_index]}_mode{self.mode + 1}.csv")
        df.to_csv(path, index=False)
        self.last_export = df
        self.log.info(f"exported {len(df)} flagged images of {self.class_names[self.class_index]} to {path}")
