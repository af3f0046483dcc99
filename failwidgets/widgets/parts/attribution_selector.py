"""``AttributionSelector``: a dropdown of captum attribution methods that sets an ImageGrid's heat maps."""

from __future__ import annotations

from typing import Any

import ipywidgets as W
import numpy as np
import traitlets

from failwidgets.widgets.parts.image_grid import ImageGrid
from failwidgets.widgets.parts.log import LogArea, guarded

__all__ = ["AttributionSelector"]

_LABELS = {
    "none": "no heat map",
    "saliency": "saliency (|gradient|)",
    "integrated_gradients": "integrated gradients (signed)",
    "grad_cam": "Grad-CAM",
}


class AttributionSelector(W.HBox):
    """Dropdown of attribution methods; choosing one recomputes the overlays of ``grid``.

    Parameters
    ----------
    grid : ImageGrid whose overlays are replaced.
    model : nn.Module (images in [0, 1] -> logits).
    images : Tensor (N, 3, H, W) in [0, 1] (the images shown in ``grid``, same order).
    target : int or int array (N,), the class explained per image (e.g. the prediction or the label).
    layer : module name for Grad-CAM; without it Grad-CAM is not offered.
    log : LogArea for errors and the busy indicator (default: a new one, not displayed).
    batch_size : passed to :func:`failwidgets.compute.attribution.attribution_maps`.

    Traits
    ------
    method : ``"none"`` or one of ``ATTRIBUTION_METHODS``; set it (or use the dropdown) to recompute.

    Maps are computed once per method and kept (``maps_[method]``: ndarray (N, H, W)) until
    :meth:`set_inputs` is called.
    """

    method = traitlets.Unicode("none")
    log = traitlets.Instance(LogArea)  # replaces the widget's ``logging.Logger`` trait, as in FailWidget

    def __init__(
        self,
        grid: ImageGrid,
        model: Any,
        images: Any,
        target: Any,
        layer: str | None = None,
        log: LogArea | None = None,
        batch_size: int = 32,
        **kwargs: Any,
    ):
        self.grid = grid
        self.layer = layer
        self.log = log if log is not None else LogArea()
        self.batch_size = batch_size
        self.maps_: dict[str, np.ndarray] = {}
        self.model, self.images, self.target = model, images, target
        options = ["none", "saliency", "integrated_gradients"] + (["grad_cam"] if layer else [])
        self.dropdown = W.Dropdown(
            options=[(_LABELS[o], o) for o in options],
            value="none",
            description="heat map",
            layout=W.Layout(width="320px"),
        )
        super().__init__(children=[self.dropdown], **kwargs)
        self._on_dropdown = guarded(self.log, "AttributionSelector")(self._on_dropdown_change)
        self._on_method = guarded(self.log, "AttributionSelector")(self._on_method_change)
        self.dropdown.observe(self._on_dropdown, names="value")
        self.observe(self._on_method, names="method")

    def set_inputs(self, model: Any, images: Any, target: Any) -> None:
        """New model / images / targets (e.g. after ``grid.set_images``); recomputes the current method."""
        self.model, self.images, self.target = model, images, target
        self.maps_ = {}
        self._apply(self.method)

    def _on_dropdown_change(self, change: dict) -> None:
        self.method = change["new"]

    def _on_method_change(self, change: dict) -> None:
        if self.dropdown.value != change["new"]:
            self.dropdown.value = change["new"]  # validates against the options
        self._apply(change["new"])

    def _apply(self, method: str) -> None:
        if method == "none":
            self.grid.set_overlays(None)
            return
        if method not in self.maps_:
            from failwidgets.compute.attribution import attribution_maps

            with self.log.busy(f"computing {_LABELS[method]}..."):
                self.maps_[method] = attribution_maps(
                    self.model,
                    self.images,
                    self.target,
                    method,
                    layer=self.layer if method == "grad_cam" else None,
                    batch_size=self.batch_size,
                    progress=False,
                )
        self.grid.signed_overlays = method == "integrated_gradients"
        self.grid.show_overlay = True
        self.grid.set_overlays(self.maps_[method])

    def close(self) -> None:
        dropdown = getattr(self, "dropdown", None)
        if dropdown is not None:  # idempotent: ipywidgets calls close() again from __del__
            self.dropdown = None
            dropdown.unobserve(self._on_dropdown, names="value")
            dropdown.close()
        self.maps_, self.model, self.images = {}, None, None
        super().close()
