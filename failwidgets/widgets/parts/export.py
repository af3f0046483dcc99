"""Static HTML snapshot of a widget tree (opens without a kernel and without internet).

``ipywidgets.embed`` pages load their JavaScript from public CDNs, which are not reachable offline, so
we render the *current view* ourselves: walk the widget tree and turn each known widget type into plain
HTML (images as base64 data URIs, bqplot figures as inline SVG drawn from the marks' data, controls as
text of their value). Unknown widget types become an HTML comment.
"""

from __future__ import annotations

import html
import html.parser
from typing import Any, Callable

import ipywidgets as W
import numpy as np

from failwidgets.widgets.parts.thumbnails import data_uri, image_format

__all__ = ["widget_to_html", "widget_to_html_page", "figure_to_svg", "sanitize_html"]

_esc = html.escape

# What an ``HTML`` widget value may keep in a snapshot: formatting tags, tables, lists and images with
# ``data:`` sources; no scripts, no event handlers, no links to elsewhere.
_SAFE_TAGS = frozenset(
    "b i em strong u s small sub sup br hr p div span ul ol li table thead tbody tr td th caption code pre "
    "kbd h1 h2 h3 h4 h5 h6 img details summary abbr".split()
)
_SAFE_ATTRS = frozenset("class style title colspan rowspan align width height alt src".split())
_DROP_CONTENT = frozenset("script style iframe object embed noscript template textarea title".split())
_VOID = frozenset(("br", "hr", "img"))


class _Sanitizer(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)  # character references pass through as written
        self.out: list[str] = []
        self.skip = 0  # depth inside a dropped element (script, style, ...)

    def _attrs(self, tag: str, attrs: list[tuple[str, str | None]]) -> str | None:
        kept = []
        for k, v in attrs:
            k = k.lower()
            v = "" if v is None else v
            if k not in _SAFE_ATTRS:
                continue
            low = "".join(v.split()).lower()
            if k == "src" and not (tag == "img" and low.startswith("data:image/")):
                return None if tag == "img" else ""
            if k == "style" and ("url(" in low or "expression(" in low or "javascript:" in low):
                continue
            kept.append(f' {k}="{_esc(v)}"')
        return "".join(kept)

    def handle_starttag(self, tag, attrs):
        if tag in _DROP_CONTENT:
            if tag not in _VOID:
                self.skip += 1
            return
        if self.skip or tag not in _SAFE_TAGS:
            return
        a = self._attrs(tag, attrs)
        if a is None:
            return
        self.out.append(f"<{tag}{a}>")

    def handle_startendtag(self, tag, attrs):
        if self.skip or tag not in _SAFE_TAGS:
            return
        a = self._attrs(tag, attrs)
        if a is not None:
            self.out.append(f"<{tag}{a}/>" if tag in _VOID else f"<{tag}{a}></{tag}>")

    def handle_endtag(self, tag):
        if tag in _DROP_CONTENT:
            self.skip = max(0, self.skip - 1)
            return
        if not self.skip and tag in _SAFE_TAGS and tag not in _VOID:
            self.out.append(f"</{tag}>")

    def handle_data(self, data):
        if not self.skip:
            self.out.append(_esc(data))

    def handle_entityref(self, name):
        if not self.skip and name.isalnum():
            self.out.append(f"&{name};")

    def handle_charref(self, name):
        if not self.skip and (
            name.isdigit() or (name[:1] in "xX" and all(c in "0123456789abcdefABCDEF" for c in name[1:]))
        ):
            self.out.append(f"&#{name};")


def sanitize_html(fragment: str) -> str:
    """``fragment`` with only formatting markup kept: no scripts, event handlers or outside links.

    Used by the snapshot for ``HTML`` widget values (which the live widgets build with every user string
    escaped), as a second line of defence: a value that still held markup from a name cannot run code
    in the shared page. Text is re-escaped; tags outside a small allowlist are dropped (their text is
    kept); ``on*`` attributes, ``href`` and non-``data:`` image sources are removed.

    Parameters
    ----------
    fragment : str, an HTML fragment.

    Returns
    -------
    str, the cleaned fragment.
    """
    p = _Sanitizer()
    p.feed(str(fragment))
    p.close()
    return "".join(p.out)


_PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; font-size: 13px; margin: 16px; }}
.fw-vbox {{ display: flex; flex-direction: column; gap: 4px; }}
.fw-hbox {{ display: flex; flex-direction: row; flex-wrap: wrap; gap: 6px; align-items: flex-start; }}
.fw-btn {{ display: inline-block; border: 1px solid #bbb; border-radius: 3px; padding: 2px 8px; background: #eee; }}
.fw-btn.fw-on {{ background: #1976d2; color: white; }}
.fw-ctl {{ color: #333; }} .fw-ctl b {{ font-weight: 600; }}
pre.fw-out {{ background: #f7f7f7; padding: 4px; margin: 0; white-space: pre-wrap; }}
pre.fw-err {{ background: #fdecea; color: #b00020; }}
</style></head>
<body>
<h2>{title}</h2>
{body}
</body></html>
"""


def widget_to_html_page(root: W.Widget, title: str = "failwidgets snapshot") -> str:
    """A complete HTML document with the snapshot of ``root``."""
    return _PAGE.format(title=_esc(title), body=widget_to_html(root))


def _style(w: Any) -> str:
    layout = getattr(w, "layout", None)
    if layout is None:
        return ""
    parts = []
    for attr, css in (("width", "width"), ("border", "border"), ("padding", "padding"), ("margin", "margin")):
        v = getattr(layout, attr, None)
        if v:
            parts.append(f"{css}:{v}")
    return ";".join(parts)


def _hidden(w: Any) -> bool:
    layout = getattr(w, "layout", None)
    return layout is not None and (layout.display == "none" or layout.visibility == "hidden")


def _described(w: Any, value: str) -> str:
    desc = getattr(w, "description", "") or ""
    label = f"<b>{_esc(desc)}</b> " if desc else ""
    return f'<span class="fw-ctl">{label}{_esc(value)}</span>'


def _render_output(w: W.Output) -> str:
    parts = []
    for o in w.outputs:
        kind = o.get("output_type")
        if kind == "stream":
            cls = "fw-out fw-err" if o.get("name") == "stderr" else "fw-out"
            parts.append(f'<pre class="{cls}">{_esc(o.get("text", ""))}</pre>')
        elif kind in ("display_data", "execute_result"):
            data = o.get("data", {})
            if "image/png" in data:
                parts.append(f'<img src="data:image/png;base64,{data["image/png"]}"/>')
            elif "image/jpeg" in data:
                parts.append(f'<img src="data:image/jpeg;base64,{data["image/jpeg"]}"/>')
            elif "image/svg+xml" in data:
                parts.append(data["image/svg+xml"])
            elif "text/html" in data:
                parts.append(data["text/html"])
            elif "text/plain" in data:
                parts.append(f'<pre class="fw-out">{_esc(data["text/plain"])}</pre>')
        elif kind == "error":
            parts.append(f'<pre class="fw-out fw-err">{_esc(chr(10).join(o.get("traceback", [])))}</pre>')
    return '<div class="fw-output">' + "".join(parts) + "</div>"


def _render_box(w: W.Box) -> str:
    inner = "".join(widget_to_html(c) for c in w.children)
    if isinstance(w, W.GridBox):
        cols = w.layout.grid_template_columns or "repeat(auto-fill, minmax(120px, 1fr))"
        gap = w.layout.grid_gap or "4px"
        return f'<div style="display:grid;grid-template-columns:{cols};gap:{gap}">{inner}</div>'
    cls = "fw-hbox" if isinstance(w, W.HBox) else "fw-vbox"
    return f'<div class="{cls}" style="{_style(w)}">{inner}</div>'


def _render_selection_container(w: Any) -> str:
    parts = []
    for i, child in enumerate(w.children):
        title = w.get_title(i) if hasattr(w, "get_title") else ""
        is_open = " open" if (w.selected_index == i or isinstance(w, W.Tab)) else ""
        parts.append(f"<details{is_open}><summary>{_esc(title or '')}</summary>{widget_to_html(child)}</details>")
    return '<div class="fw-vbox">' + "".join(parts) + "</div>"


def widget_to_html(w: Any) -> str:
    """HTML fragment for one widget and its descendants (hidden widgets are skipped)."""
    if not isinstance(w, W.Widget) or _hidden(w):
        return ""
    for kind, render in _renderers():
        if isinstance(w, kind):
            return render(w)
    return f"<!-- {type(w).__name__} not rendered -->"


def _render_image(w: W.Image) -> str:
    data = bytes(w.value or b"")
    if not data:
        return ""
    fmt = image_format(data)
    width = f' style="width:{w.layout.width}"' if w.layout.width else ""
    return f'<img src="{data_uri(data, fmt)}"{width}/>'


def _render_toggle(w: W.ToggleButton) -> str:
    on = " fw-on" if w.value else ""
    mark = "&#10003; " if w.value else ""
    return f'<span class="fw-btn{on}">{mark}{_esc(w.description)}</span>'


def _render_selection(w: Any) -> str:
    label = getattr(w, "label", None)
    if isinstance(label, (list, tuple)):  # SelectMultiple
        label = ", ".join(map(str, label))
    return _described(w, str(label if label is not None else w.value))


def _render_value(w: Any) -> str:
    v = w.value
    if isinstance(v, float):
        v = f"{v:.4g}"
    elif isinstance(v, (tuple, list)):
        v = " – ".join(f"{x:.4g}" if isinstance(x, float) else str(x) for x in v)
    return _described(w, str(v))


def _render_checkbox(w: W.Checkbox) -> str:
    return f'<span class="fw-ctl">{"&#9745;" if w.value else "&#9744;"} {_esc(w.description)}</span>'


def _bqplot_renderers() -> list[tuple[type, Callable[[Any], str]]]:
    try:
        import bqplot
    except ImportError:  # pragma: no cover
        return []
    return [(bqplot.Figure, figure_to_svg)]


def _renderers() -> list[tuple[type, Callable[[Any], str]]]:
    """(widget type, renderer) pairs, most specific first."""
    global _RENDERERS_CACHE
    if _RENDERERS_CACHE is None:
        _RENDERERS_CACHE = _bqplot_renderers() + _BASE_RENDERERS
    return _RENDERERS_CACHE


_RENDERERS_CACHE: list[tuple[type, Callable[[Any], str]]] | None = None
_BASE_RENDERERS: list[tuple[type, Callable[[Any], str]]] = [
    (W.Output, _render_output),
    (W.Accordion, _render_selection_container),
    (W.Tab, _render_selection_container),
    (W.Box, _render_box),
    (W.HTMLMath, lambda w: f"<div>{sanitize_html(w.value)}</div>"),
    (W.HTML, lambda w: f"<div>{sanitize_html(w.value)}</div>"),
    (W.Label, lambda w: f"<span>{_esc(w.value)}</span>"),
    (W.Image, _render_image),
    (W.ToggleButton, _render_toggle),
    (W.Button, lambda w: f'<span class="fw-btn">{_esc(w.description)}</span>'),
    (W.Checkbox, _render_checkbox),
    (W.Valid, lambda w: _described(w, "valid" if w.value else "invalid")),
    (W.widgets.widget_selection._Selection, _render_selection),
    (W.widgets.widget_selection._MultipleSelection, _render_selection),
    (W.ValueWidget, _render_value),
]


# ----------------------------------------------------------------------------------------------------
# bqplot figure -> SVG
# ----------------------------------------------------------------------------------------------------
_W, _H, _ML, _MR, _MT, _MB = 480, 300, 56, 16, 28, 48
_PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]


def _arr(x: Any) -> np.ndarray:
    return np.asarray(x) if x is not None else np.zeros(0)


def _is_ordinal(scale: Any) -> bool:
    import bqplot

    return isinstance(scale, bqplot.OrdinalScale)


def _mark_values(mark: Any, key: str) -> np.ndarray:
    import bqplot

    if isinstance(mark, bqplot.Hist):
        sample = _arr(mark.sample).astype(float).ravel()
        if key == "sample":
            return sample
        counts, _ = np.histogram(sample, bins=int(mark.bins)) if sample.size else (np.zeros(1), None)
        return np.array([0.0, float(counts.max(initial=0))])
    if isinstance(mark, bqplot.Bars) and key == "y":
        y = _arr(mark.y).astype(float)
        if y.ndim == 2 and mark.type == "stacked":
            return np.concatenate([[0.0], y.sum(axis=0), np.minimum(y, 0).sum(axis=0)])
        return np.concatenate([[0.0], y.ravel()])
    return _arr(getattr(mark, key, None)).ravel()


class _Axis:
    """Maps data values of one scale to pixel positions (linear or ordinal)."""

    def __init__(self, scale: Any, values: list[np.ndarray], lo_px: float, hi_px: float):
        self.lo_px, self.hi_px = lo_px, hi_px
        self.ordinal = _is_ordinal(scale)
        if self.ordinal:
            domain = list(scale.domain) if scale.domain else []
            for v in values:
                for x in v.tolist():
                    if x not in domain:
                        domain.append(x)
            self.domain = domain
        else:
            nums = [v.astype(float) for v in values if v.size]
            allv = np.concatenate(nums) if nums else np.array([0.0, 1.0])
            allv = allv[np.isfinite(allv)]
            lo = float(allv.min()) if allv.size else 0.0
            hi = float(allv.max()) if allv.size else 1.0
            lo = float(scale.min) if getattr(scale, "min", None) is not None else lo
            hi = float(scale.max) if getattr(scale, "max", None) is not None else hi
            if hi <= lo:
                hi = lo + 1.0
            self.lo, self.hi = lo, hi

    def band(self) -> float:
        n = max(1, len(self.domain)) if self.ordinal else 1
        return abs(self.hi_px - self.lo_px) / n

    def __call__(self, v: Any) -> float:
        if self.ordinal:
            i = self.domain.index(v.item() if hasattr(v, "item") else v)
            step = (self.hi_px - self.lo_px) / max(1, len(self.domain))
            return self.lo_px + step * (i + 0.5)
        return self.lo_px + (float(v) - self.lo) / (self.hi - self.lo) * (self.hi_px - self.lo_px)

    def ticks(self) -> list[tuple[float, str]]:
        if self.ordinal:
            return [(self(d), str(d)) for d in self.domain][:40]
        return [(self(t), f"{t:.4g}") for t in _nice_ticks(self.lo, self.hi)]


def _nice_ticks(lo: float, hi: float, target: int = 5) -> np.ndarray:
    """Round tick values (steps of 1, 2 or 5 times a power of ten) inside [lo, hi]."""
    raw = (hi - lo) / max(target - 1, 1)
    mag = 10.0 ** np.floor(np.log10(raw)) if raw > 0 else 1.0
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    ticks = np.arange(np.ceil(lo / step) * step, hi + step * 1e-9, step)
    return np.round(ticks / step) * step + 0.0  # no -0.0 or 0.30000000000000004


def _colour(c: Any, i: int) -> str:
    if isinstance(c, (list, tuple)) and c:
        return str(c[i % len(c)])
    return _PALETTE[i % len(_PALETTE)]


def _interp_colour(value: float, lo: float, mid: float | None, hi: float, colours: list[str]) -> str:
    from PIL import ImageColor

    rgb = [np.array(ImageColor.getrgb(c)[:3], dtype=float) for c in colours]
    if mid is not None and len(rgb) == 3:
        t = (
            0.5 * (value - lo) / (mid - lo)
            if value < mid and mid > lo
            else (0.5 + 0.5 * (value - mid) / (hi - mid) if hi > mid else 0.5)
        )
    else:
        t = (value - lo) / (hi - lo) if hi > lo else 0.5
    t = float(np.clip(t, 0, 1)) * (len(rgb) - 1)
    i = min(int(t), len(rgb) - 2)
    c = rgb[i] * (1 - (t - i)) + rgb[i + 1] * (t - i)
    r, g, b = (int(round(x)) for x in c)
    return f"#{r:02x}{g:02x}{b:02x}"


def _grid_heatmap_svg(mark: Any) -> list[str]:
    color = _arr(mark.color).astype(float)
    if color.ndim != 2 or color.size == 0:
        return []
    R, C = color.shape
    cs = mark.scales.get("color")
    finite = color[np.isfinite(color)]
    lo = float(cs.min) if cs is not None and cs.min is not None else float(finite.min(initial=0))
    hi = float(cs.max) if cs is not None and cs.max is not None else float(finite.max(initial=1))
    mid = cs.mid if cs is not None else None
    colours = list(cs.colors) if cs is not None and cs.colors else ["#2166ac", "#f7f7f7", "#b2182b"]
    x0, y0, w, h = _ML, _MT, _W - _ML - _MR, _H - _MT - _MB
    cw, ch = w / C, h / R
    out = []
    for r in range(R):
        for c in range(C):
            v = color[r, c]
            fill = "#ffffff" if not np.isfinite(v) else _interp_colour(v, lo, mid, hi, colours)
            out.append(
                f'<rect x="{x0 + c * cw:.1f}" y="{y0 + r * ch:.1f}" width="{cw:.1f}" height="{ch:.1f}" '
                f'fill="{fill}" stroke="#fff" stroke-width="0.5"><title>{r},{c}: {v:.3g}</title></rect>'
            )
    rows = list(_arr(mark.row)) if mark.row is not None else list(range(R))
    cols = list(_arr(mark.column)) if mark.column is not None else list(range(C))
    if R <= 40:
        for r, lab in enumerate(rows[:R]):
            out.append(
                f'<text x="{x0 - 4}" y="{y0 + (r + 0.5) * ch + 4:.1f}" text-anchor="end" '
                f'font-size="10">{_esc(str(lab))}</text>'
            )
    if C <= 40:
        for c, lab in enumerate(cols[:C]):
            out.append(
                f'<text x="{x0 + (c + 0.5) * cw:.1f}" y="{y0 + h + 14}" text-anchor="middle" '
                f'font-size="10">{_esc(str(lab))}</text>'
            )
    return out


def figure_to_svg(fig: Any) -> str:
    """Inline SVG of a bqplot ``Figure`` drawn from its marks' data.

    Supported marks: ``Bars`` (1-D, grouped / stacked 2-D), ``Lines``, ``Scatter``, ``Hist``,
    ``GridHeatMap``; others are skipped. Good enough to share a finding, not a pixel copy.
    """
    import bqplot

    marks = [m for m in fig.marks if m.visible]
    body: list[str] = []
    x_px, y_px = (_ML, _W - _MR), (_H - _MB, _MT)
    # collect values per scale object so marks sharing a scale share an axis
    by_scale: dict[int, tuple[Any, list[np.ndarray], tuple[float, float]]] = {}
    for m in marks:
        if isinstance(m, bqplot.GridHeatMap):
            continue
        for key, sc in m.scales.items():
            if key in ("x", "sample"):
                px = x_px
            elif key in ("y", "count"):
                px = y_px
            else:
                continue
            entry = by_scale.setdefault(id(sc), (sc, [], px))
            entry[1].append(_mark_values(m, key))
    axes = {k: _Axis(sc, vals, *px) for k, (sc, vals, px) in by_scale.items()}
    for m in marks:
        if isinstance(m, bqplot.GridHeatMap):
            body.extend(_grid_heatmap_svg(m))
            continue
        xs = m.scales.get("x") or m.scales.get("sample")
        ys = m.scales.get("y") or m.scales.get("count")
        if xs is None or ys is None:
            continue
        ax, ay = axes[id(xs)], axes[id(ys)]
        if isinstance(m, bqplot.Hist):
            sample = _arr(m.sample).astype(float).ravel()
            if sample.size:
                counts, edges = np.histogram(sample, bins=int(m.bins))
                for cnt, a, b in zip(counts, edges[:-1], edges[1:]):
                    body.append(_rect(ax(a), ay(cnt), ax(b) - ax(a), ay(0) - ay(cnt), _colour(m.colors, 0)))
        elif isinstance(m, bqplot.Bars):
            body.extend(_bars_svg(m, ax, ay))
        elif isinstance(m, bqplot.Lines):
            x, y = _arr(m.x), _arr(m.y).astype(float)
            ys_ = y if y.ndim == 2 else y[None]
            xs_ = x if x.ndim == 2 else np.broadcast_to(x, ys_.shape) if x.size else x
            for i, (xr, yr) in enumerate(zip(xs_, ys_)):
                pts = " ".join(f"{ax(a):.1f},{ay(b):.1f}" for a, b in zip(xr, yr) if np.isfinite(b))
                style = ' stroke-dasharray="5,3"' if m.line_style == "dashed" else ""
                body.append(
                    f'<polyline points="{pts}" fill="none" stroke="{_colour(m.colors, i)}" '
                    f'stroke-width="{m.stroke_width}"{style}/>'
                )
        elif isinstance(m, bqplot.Scatter):
            for a, b in zip(_arr(m.x), _arr(m.y)):
                body.append(f'<circle cx="{ax(a):.1f}" cy="{ay(b):.1f}" r="3" fill="{_colour(m.colors, 0)}"/>')
    # axes: ticks and labels
    for ax in axes.values():
        horizontal = ax.lo_px == x_px[0]
        for pos, lab in ax.ticks():
            if horizontal:
                body.append(
                    f'<text x="{pos:.1f}" y="{_H - _MB + 14}" text-anchor="middle" font-size="10">{_esc(lab)}</text>'
                )
            else:
                body.append(
                    f'<text x="{_ML - 4}" y="{pos + 3:.1f}" text-anchor="end" font-size="10">{_esc(lab)}</text>'
                )
    for axis in fig.axes:
        if getattr(axis, "label", ""):
            vertical = (
                getattr(axis, "side", None) in ("left", "right") or getattr(axis, "orientation", "") == "vertical"
            )
            if vertical:
                body.append(
                    f'<text x="12" y="{_H / 2:.0f}" transform="rotate(-90 12 {_H / 2:.0f})" '
                    f'text-anchor="middle" font-size="11">{_esc(axis.label)}</text>'
                )
            else:
                body.append(
                    f'<text x="{_W / 2:.0f}" y="{_H - 8}" text-anchor="middle" font-size="11">{_esc(axis.label)}</text>'
                )
    title = f'<text x="{_W / 2:.0f}" y="16" text-anchor="middle" font-size="13">{_esc(fig.title or "")}</text>'
    frame = (
        f'<line x1="{_ML}" y1="{_H - _MB}" x2="{_W - _MR}" y2="{_H - _MB}" stroke="#444"/>'
        f'<line x1="{_ML}" y1="{_MT}" x2="{_ML}" y2="{_H - _MB}" stroke="#444"/>'
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{_H}" viewBox="0 0 {_W} {_H}" '
        f'class="fw-figure">{title}{"".join(body)}{frame}</svg>'
    )


def _rect(x: float, y: float, w: float, h: float, fill: str, extra: str = "") -> str:
    if h < 0:
        y, h = y + h, -h
    if w < 0:
        x, w = x + w, -w
    return f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" fill="{fill}"{extra}/>'


def _bars_svg(m: Any, ax: _Axis, ay: _Axis) -> list[str]:
    x, y = _arr(m.x), _arr(m.y).astype(float)
    if x.size == 0:
        return []
    series = y if y.ndim == 2 else y[None]
    if ax.ordinal:
        width = ax.band() * (1 - float(m.padding))
    else:
        xf = np.sort(x.astype(float))
        step = float(np.min(np.diff(xf))) if xf.size > 1 else (ax.hi - ax.lo) or 1.0
        width = abs(ax(xf[0] + step) - ax(xf[0])) * (1 - float(m.padding))
    selected = set(_arr(m.selected).tolist()) if m.selected is not None else set()
    out = []
    base = np.zeros(series.shape[1])
    n = series.shape[0]
    for s, row in enumerate(series):
        colour = _colour(m.colors, s)
        for i, (xv, yv) in enumerate(zip(x, row)):
            if not np.isfinite(yv):
                continue
            cx = ax(xv)
            extra = ' stroke="#000" stroke-width="2"' if i in selected else ""
            if n > 1 and m.type == "grouped":
                w = width / n
                out.append(_rect(cx - width / 2 + s * w, ay(yv), w, ay(0) - ay(yv), colour, extra))
            else:
                b = base[i] if n > 1 else 0.0
                out.append(_rect(cx - width / 2, ay(b + yv), width, ay(b) - ay(b + yv), colour, extra))
        if n > 1 and m.type != "grouped":
            base = base + np.nan_to_num(row)
    return out
