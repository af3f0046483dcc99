"""``ImageGrid``: a grid of thumbnails with captions, per-tile selection and optional heat maps."""

from __future__ import annotations

from typing import Any, Hashable, Sequence

import ipywidgets as W
import numpy as np
import traitlets

from failwidgets._validation import check_positive_int
from failwidgets.widgets.parts.base import close_recursively, walk_widgets
from failwidgets.widgets.parts.sync import EchoGuard, hold_all_sync, reject
from failwidgets.widgets.parts.thumbnails import (
    DEFAULT_THUMB_SIZE,
    ThumbnailCache,
    image_format,
    thumbnail_bytes,
    to_uint8_images,
)

__all__ = ["ImageGrid", "Tile"]


class Tile(W.VBox):
    """One tile: ``image`` (ipywidgets.Image), ``caption`` (HTML) and ``button`` (ToggleButton).

    A plain ``Image`` has no click event, so selection is the toggle button under it.
    """

    def __init__(self, thumb_size: int):
        self.image = W.Image(format="jpeg", layout=W.Layout(width=f"{thumb_size}px", height="auto"))
        self.caption = W.HTML("", layout=W.Layout(width=f"{thumb_size}px"))
        self.button = W.ToggleButton(
            value=False, description="select", tooltip="select this image", layout=W.Layout(width=f"{thumb_size}px")
        )
        super().__init__(
            children=[self.image, self.caption, self.button],
            layout=W.Layout(border="2px solid transparent", padding="2px"),
        )
        self.index = -1

    def set_size(self, thumb_size: int) -> None:
        for w in (self.image, self.caption, self.button):
            w.layout.width = f"{thumb_size}px"

    def show_selected(self, on: bool) -> None:
        self.layout.border = "2px solid #1976d2" if on else "2px solid transparent"
        self.button.description = "selected" if on else "select"


class ImageGrid(W.VBox):
    """Thumbnails in a grid, each with a caption and a selection toggle.

    Parameters
    ----------
    columns : int, tiles per row.
    thumb_size : int, longest side of a thumbnail in pixels.
    multiple : bool, allow several selected tiles (False: selecting one clears the others).
    signed_overlays : bool, overlays are signed maps (diverging red/blue) instead of [0, 1] maps.
    overlay_alpha : float, blend weight of heat maps.
    cache : ThumbnailCache, where encoded thumbnails are kept (default: module-wide cache).

    Traits
    ------
    selected : list of keys of the selected tiles (keys default to tile indices 0..N-1).
        Observable; assign a new list to select from Python.
    show_overlay : bool, whether heat maps are drawn (a toggle is shown when overlays are set).
    columns, thumb_size : layout.

    Examples
    --------
    >>> grid = ImageGrid(columns=4)
    >>> grid.set_images(images, captions=["cat (pred dog)", ...], overlays=maps)   # doctest: +SKIP
    >>> grid.tiles[2].button.value = True; grid.selected                            # doctest: +SKIP
    [2]
    """

    selected = traitlets.List()
    show_overlay = traitlets.Bool(True)
    columns = traitlets.Int(6, min=1)
    thumb_size = traitlets.Int(DEFAULT_THUMB_SIZE, min=1)
    multiple = traitlets.Bool(True)

    def __init__(
        self,
        columns: int = 6,
        thumb_size: int = DEFAULT_THUMB_SIZE,
        multiple: bool = True,
        signed_overlays: bool = False,
        overlay_alpha: float = 0.5,
        cache: ThumbnailCache | None = None,
        **kwargs: Any,
    ):
        check_positive_int(columns, "columns")
        check_positive_int(thumb_size, "thumb_size")
        self._pool: list[Tile] = []
        self._images: list[np.ndarray] = []
        self._overlays: list[np.ndarray | None] | None = None
        self._captions: list[str] = []
        self._keys: list[Hashable] = []
        self._quiet = EchoGuard()
        self.signed_overlays = signed_overlays
        self.overlay_alpha = overlay_alpha
        self.cache = cache
        self.grid = W.GridBox(children=[], layout=W.Layout())
        self.overlay_toggle = W.ToggleButton(
            value=True,
            description="heat maps",
            icon="fire",
            tooltip="show / hide heat-map overlays",
            layout=W.Layout(display="none", width="auto"),
        )
        self.clear_button = W.Button(description="clear selection", layout=W.Layout(width="auto"))
        self.toolbar = W.HBox([self.overlay_toggle, self.clear_button])
        super().__init__(children=[self.toolbar, self.grid], **kwargs)
        self.columns = columns
        self.thumb_size = thumb_size
        self.multiple = multiple
        self._update_layout()
        self._overlay_link = traitlets.link((self, "show_overlay"), (self.overlay_toggle, "value"))
        self.clear_button.on_click(lambda _b: self.clear_selection())
        self.observe(self._on_selected, names="selected")
        self.observe(self._on_layout_change, names=["columns", "thumb_size"])
        self.observe(self._on_show_overlay, names="show_overlay")

    def _tile_parts(self, tiles: Sequence[Tile]) -> list[W.Widget]:
        """Every widget of ``tiles`` (the tiles, their image / caption / button and layouts)."""
        return [w for tile in tiles for w in walk_widgets(tile, layouts=True)]

    # -- public API ----------------------------------------------------------------------------------
    @property
    def tiles(self) -> list[Tile]:
        """The visible tiles, in order."""
        return list(self._pool[: len(self._images)])

    @property
    def tile_keys(self) -> list[Hashable]:
        """Keys of the shown tiles, in order."""
        return list(self._keys)

    def __len__(self) -> int:
        return len(self._images)

    def set_images(
        self,
        images: Any,
        captions: Sequence[str] | None = None,
        overlays: Any = None,
        keys: Sequence[Hashable] | None = None,
    ) -> None:
        """Show ``images``; clears the selection.

        Parameters
        ----------
        images : Tensor (N, 3, H, W) in [0, 1], uint8 ndarray (N, H, W, 3), or a list of PIL images /
            paths / single images.
        captions : list of N str (HTML snippets), e.g. ``"label: cat<br>pred: dog 0.91"``.
        overlays : optional ndarray (N, h, w) or list of N (h, w) maps (or None entries): heat maps.
        keys : optional list of N hashable ids reported in ``selected`` (default: 0..N-1).
        """
        imgs = to_uint8_images(images, "images")
        n = len(imgs)
        captions = [""] * n if captions is None else [str(c) for c in captions]
        if len(captions) != n:
            raise ValueError(f"captions: expected {n} captions (one per image), got {len(captions)}")
        keys = list(range(n)) if keys is None else list(keys)
        if len(keys) != n:
            raise ValueError(f"keys: expected {n} keys (one per image), got {len(keys)}")
        if len(set(keys)) != n:
            raise ValueError("keys: expected unique keys, got duplicates")
        ovs = self._check_overlays(overlays, n)
        self._images, self._captions, self._keys, self._overlays = imgs, captions, keys, ovs
        while len(self._pool) < n:  # grow the pool only when needed; tiles are reused otherwise
            self._pool.append(self._new_tile())
        with (
            hold_all_sync(self, self.grid, self.overlay_toggle.layout, self._tile_parts(self._pool[:n])),
            self._quiet(),
        ):
            self.selected = []
            for i, tile in enumerate(self._pool[:n]):
                tile.index = i
                tile.caption.value = captions[i]
                tile.button.value = False
                tile.show_selected(False)
                tile.set_size(self.thumb_size)
            self._render_images()
            self.grid.children = tuple(self._pool[:n])
            self.overlay_toggle.layout.display = "none" if ovs is None else ""

    def set_overlays(self, overlays: Any) -> None:
        """Replace the heat maps (N, h, w) without touching images, captions or selection."""
        self._overlays = self._check_overlays(overlays, len(self._images))
        self.overlay_toggle.layout.display = "none" if self._overlays is None else ""
        with hold_all_sync(self.tiles):
            self._render_images()

    def set_captions(self, captions: Sequence[str]) -> None:
        captions = [str(c) for c in captions]
        if len(captions) != len(self._images):
            raise ValueError(f"captions: expected {len(self._images)} captions, got {len(captions)}")
        self._captions = captions
        for tile, c in zip(self._pool, captions):
            tile.caption.value = c

    def clear_selection(self) -> None:
        self.selected = []

    @property
    def selected_indices(self) -> list[int]:
        """Tile indices of ``selected`` (whatever the keys are)."""
        pos = {k: i for i, k in enumerate(self._keys)}
        return [pos[k] for k in self.selected if k in pos]

    def image_bytes(self, i: int) -> bytes:
        """Encoded bytes currently shown by tile ``i``."""
        return self._pool[i].image.value

    def close(self) -> None:
        """Close every tile of the pool (shown or spare, with their layouts) and the grid's own parts."""
        if getattr(self, "_overlay_link", None) is not None:
            self._overlay_link.unlink()
            self._overlay_link = None
        for tile in getattr(self, "_pool", []):
            close_recursively(tile)
        for name in ("grid", "overlay_toggle", "clear_button", "toolbar"):
            if getattr(self, name, None) is not None:
                close_recursively(getattr(self, name))
        self._pool, self._images, self._overlays = [], [], None
        super().close()

    # -- internals -----------------------------------------------------------------------------------
    @staticmethod
    def _check_overlays(overlays: Any, n: int) -> list[np.ndarray | None] | None:
        if overlays is None:
            return None
        if isinstance(overlays, (list, tuple)):
            ovs = [None if o is None else np.asarray(o, dtype=np.float32) for o in overlays]
        else:
            from failwidgets._validation import to_numpy

            arr = to_numpy(overlays, "overlays")
            if arr.ndim != 3:
                raise ValueError(f"overlays: expected an (N, h, w) array of heat maps, got shape {arr.shape}")
            ovs = [a.astype(np.float32) for a in arr]
        if len(ovs) != n:
            raise ValueError(f"overlays: expected {n} heat maps (one per image), got {len(ovs)}")
        for i, o in enumerate(ovs):
            if o is not None and o.ndim != 2:
                raise ValueError(f"overlays[{i}]: expected a 2-D (h, w) map, got shape {o.shape}")
        return ovs

    def _new_tile(self) -> Tile:
        tile = Tile(self.thumb_size)
        tile.button.observe(lambda change, t=tile: self._on_tile_toggle(t, change), names="value")
        return tile

    def _render_images(self) -> None:
        use_ov = self._overlays is not None and self.show_overlay
        for i, img in enumerate(self._images):
            ov = self._overlays[i] if use_ov else None
            data = thumbnail_bytes(
                img,
                max_side=self.thumb_size,
                overlay=ov,
                signed=self.signed_overlays,
                alpha=self.overlay_alpha,
                cache=self.cache,
            )
            tile = self._pool[i]
            tile.image.format = image_format(data)
            tile.image.value = data

    def _update_layout(self) -> None:
        self.grid.layout.grid_template_columns = f"repeat({self.columns}, {self.thumb_size + 8}px)"
        self.grid.layout.grid_gap = "4px"

    def _on_layout_change(self, change: dict) -> None:
        self._update_layout()
        if change["name"] == "thumb_size":
            with hold_all_sync(self._tile_parts(self._pool)):
                for tile in self._pool:
                    tile.set_size(self.thumb_size)
                self._render_images()

    def _on_show_overlay(self, change: dict) -> None:
        with hold_all_sync(self.tiles):
            self._render_images()

    def _on_tile_toggle(self, tile: Tile, change: dict) -> None:
        if self._quiet or tile.index < 0 or tile.index >= len(self._keys):
            return
        key = self._keys[tile.index]
        sel = [k for k in self.selected if k != key]
        if change["new"]:
            sel = (sel + [key]) if self.multiple else [key]
        self.selected = sel

    @traitlets.validate("selected")
    def _valid_selected(self, proposal: dict) -> list:
        keys = set(self._keys)
        unknown = [k for k in proposal["value"] if k not in keys]
        if unknown:
            reject(self, f"selected: expected keys of shown tiles, got unknown {unknown[:5]}")
        return proposal["value"]

    def _on_selected(self, change: dict) -> None:
        chosen = set(change["new"])
        with hold_all_sync(self._tile_parts(self.tiles)), self._quiet():
            for i, key in enumerate(self._keys):
                on = key in chosen
                tile = self._pool[i]
                if tile.button.value != on:
                    tile.button.value = on
                tile.show_selected(on)
