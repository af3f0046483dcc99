"""Read-only image gallery through ipyplot, inside an ``ipywidgets.HTML``.

ipyplot is not a widget: ``plot_images`` calls ``display()``, returns None, turns relative file paths
into ``<img src>`` links that break outside a notebook server, and validates with ``assert``. This
adapter hides that: it encodes every image ourselves (cached thumbnails as base64 data URIs, which
ipyplot passes through unchanged), escapes labels, validates with clear errors, and asks ipyplot only
for its grid HTML (``ipyplot._html_helpers._create_imgs_grid``, private; a plain fallback grid is used if
that ever disappears), which goes into an ``HTML`` widget that can sit in any Box.
"""

from __future__ import annotations

import html
from typing import Any, Sequence

import ipywidgets as W

from failwidgets._validation import check_positive_int
from failwidgets.widgets.parts.thumbnails import DEFAULT_THUMB_SIZE, data_uri, thumbnail_bytes, to_uint8_images

__all__ = ["gallery_html", "Gallery"]


def _fallback_grid(uris: list[str], labels: list[str], texts: list[str | None], img_width: int) -> str:
    cells = []
    for u, lab, t in zip(uris, labels, texts):
        extra = f'<div style="font-size:11px">{t}</div>' if t else ""
        cells.append(
            f'<div style="display:inline-block;width:{img_width}px;margin:3px;text-align:center;'
            f'vertical-align:top"><div style="font-size:12px">{lab}</div>{extra}'
            f'<img src="{u}" style="width:{img_width}px"/></div>'
        )
    return "<div>" + "".join(cells) + "</div>"


def gallery_html(
    images: Any,
    labels: Sequence[Any] | None = None,
    custom_texts: Sequence[str] | None = None,
    *,
    img_width: int = DEFAULT_THUMB_SIZE,
    max_images: int = 60,
    overlays: Any = None,
    signed: bool = False,
) -> str:
    """HTML of an ipyplot image grid with every image embedded as a base64 data URI.

    Parameters
    ----------
    images : Tensor (N, 3, H, W) in [0, 1], uint8 (N, H, W, 3), or a list of PIL images / paths.
    labels : N labels shown above each image (escaped); default the index.
    custom_texts : N extra lines (escaped) or None.
    img_width : displayed width (and thumbnail size) in pixels.
    max_images : show at most this many (the first ones).
    overlays : optional (N, h, w) heat maps blended on the images.
    """
    check_positive_int(img_width, "img_width")
    check_positive_int(max_images, "max_images")
    imgs = to_uint8_images(images, "images")[:max_images]
    n = len(imgs)
    labels = [str(i) for i in range(n)] if labels is None else [html.escape(str(x)) for x in labels][:n]
    if len(labels) != n:
        raise ValueError(f"labels: expected {n} labels (one per image), got {len(labels)}")
    texts = [None] * n if custom_texts is None else [html.escape(str(t)) for t in custom_texts][:n]
    if len(texts) != n:
        raise ValueError(f"custom_texts: expected {n} texts (one per image), got {len(texts)}")
    ovs = [None] * n if overlays is None else list(overlays)[:n]
    uris = [data_uri(thumbnail_bytes(im, max_side=img_width, overlay=ov, signed=signed)) for im, ov in zip(imgs, ovs)]
    try:
        from ipyplot._html_helpers import _create_imgs_grid
    except ImportError:  # pragma: no cover - only if ipyplot's internals move
        return _fallback_grid(uris, labels, texts, img_width)
    return _create_imgs_grid(
        uris,
        labels,
        custom_texts=texts,
        max_images=max_images,
        img_width=img_width,
        zoom_scale=2.0,
        show_url=False,
        force_b64=False,
        resize_image=False,
    )


class Gallery(W.HTML):
    """A read-only gallery widget (an ``ipywidgets.HTML`` holding ipyplot's grid).

    ``Gallery(images, labels)`` or ``Gallery().set_images(images, labels, custom_texts=...)``.
    """

    def __init__(self, images: Any = None, labels: Sequence[Any] | None = None, **kwargs: Any):
        opts = {k: kwargs.pop(k) for k in ("img_width", "max_images") if k in kwargs}
        super().__init__(**kwargs)
        self._opts = opts
        if images is not None:
            self.set_images(images, labels)

    def set_images(
        self,
        images: Any,
        labels: Sequence[Any] | None = None,
        custom_texts: Sequence[str] | None = None,
        overlays: Any = None,
    ) -> None:
        self.value = gallery_html(images, labels, custom_texts, overlays=overlays, **self._opts)
