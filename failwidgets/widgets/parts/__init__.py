"""Shared widget parts for the failwidgets method widgets.

Usage (inside a method widget)::

    from failwidgets.widgets.parts import FailWidget, ImageGrid, BarChart, LogArea, guarded

    class MyWidget(FailWidget):
        _state_traits = ("threshold",)
        threshold = traitlets.Float(0.5)

        def __init__(self, method, images, **kw):
            super().__init__(method=method, **kw)
            self.grid = ImageGrid(columns=6, thumb_size=112)
            self.grid.set_images(images, captions=[...], overlays=heatmaps)   # (N, h, w) maps
            self.observe_guarded(self._on_pick, names="selected", widget=self.grid)
            self.run = W.Button(description="Run")
            self.on_click_guarded(self.run, self._on_run)        # errors -> self.log, re-raised in pytest
            self.children = [self.run, self.grid, self.log]

        def _on_run(self, _button):
            with self.log.busy("fitting..."):
                ...

    w.to_dict(); w.from_dict(d); w.export_html("finding.html"); w.close()

Parts
-----
- thumbnails: ``thumbnail_bytes``, ``overlay_heatmap``, ``to_uint8_images``, ``ThumbnailCache`` (pure).
- ``ImageGrid``: thumbnails + captions + selection toggles (``selected`` trait), heat-map toggle.
- ``LogArea``, ``guarded``: log area with ``info``/``warning``/``error``/``busy``; guarded callbacks.
- ``FailWidget``: base class (``method``, ``log``, ``observe_guarded``, ``to_dict``/``from_dict``,
  ``export_html``, ``close``).
- charts: ``BarChart``, ``GroupHistogram``, ``MatrixHeatmap`` (bqplot; selection via traits).
- gallery: ``Gallery`` / ``gallery_html`` (read-only ipyplot gallery in an ``ipywidgets.HTML``).
- ``AttributionSelector``: dropdown of captum attribution methods recomputing an ImageGrid's overlays.
- sync: ``EchoGuard`` (the one echo guard), ``hold_all_sync`` (one message per widget), ``reject`` /
  ``InvalidValue`` (what a ``@validate`` raises), ``LoggedLink`` (control <-> trait).
"""

from failwidgets.widgets.parts.attribution_selector import AttributionSelector
from failwidgets.widgets.parts.base import FailWidget, close_recursively, walk_widgets
from failwidgets.widgets.parts.charts import DIVERGING_COLORS, GROUP_COLORS, BarChart, GroupHistogram, MatrixHeatmap
from failwidgets.widgets.parts.export import figure_to_svg, widget_to_html, widget_to_html_page
from failwidgets.widgets.parts.gallery import Gallery, gallery_html
from failwidgets.widgets.parts.image_grid import ImageGrid, Tile
from failwidgets.widgets.parts.log import LogArea, guarded, on_click_guarded, should_raise_callback_errors
from failwidgets.widgets.parts.sync import EchoGuard, InvalidValue, LoggedLink, hold_all_sync, reject
from failwidgets.widgets.parts.thumbnails import (
    DEFAULT_THUMB_SIZE,
    ThumbnailCache,
    data_uri,
    encode_image,
    normalize_map,
    overlay_heatmap,
    resize_map,
    thumbnail_bytes,
    to_uint8_images,
)

__all__ = [
    "AttributionSelector",
    "BarChart",
    "GroupHistogram",
    "MatrixHeatmap",
    "DIVERGING_COLORS",
    "GROUP_COLORS",
    "Gallery",
    "gallery_html",
    "FailWidget",
    "close_recursively",
    "walk_widgets",
    "figure_to_svg",
    "widget_to_html",
    "widget_to_html_page",
    "ImageGrid",
    "Tile",
    "LogArea",
    "guarded",
    "on_click_guarded",
    "should_raise_callback_errors",
    "EchoGuard",
    "InvalidValue",
    "LoggedLink",
    "hold_all_sync",
    "reject",
    "DEFAULT_THUMB_SIZE",
    "ThumbnailCache",
    "data_uri",
    "encode_image",
    "normalize_map",
    "overlay_heatmap",
    "resize_map",
    "thumbnail_bytes",
    "to_uint8_images",
]
