"""User strings full of markup never become elements: live HTML widget values and exported snapshots.

Class names, attribute names, relation levels, captions and the search box get payloads like
``<img src=x onerror=...>`` and ``"><script>``. Every ``HTML`` value in the widget tree and the page
written by ``export_html`` are parsed with ``html.parser``; no element may carry an event handler, no
``<script>`` may exist and no ``<img>`` may load anything but an embedded ``data:`` image.
"""

from __future__ import annotations

from html.parser import HTMLParser

import ipywidgets as W
import numpy as np

from failwidgets.methods.relations import RelationGraph, RelationMiner
from failwidgets.widgets.parts import walk_widgets
from failwidgets.widgets.parts.export import sanitize_html
from tests.test_reliability import CTX

PAYLOADS = ["<img src=x onerror=alert(1)>", '"><script>alert(2)</script>', "x' onmouseover='alert(3)"]
LEVEL = "<b onmouseover=alert(4)>zero</b>"


class _Elements(HTMLParser):
    def __init__(self):
        super().__init__()
        self.bad: list[str] = []

    def handle_starttag(self, tag, attrs):
        names = [k.lower() for k, _ in attrs]
        if tag == "script" or any(k.startswith("on") for k in names):
            self.bad.append(f"<{tag} {attrs}>")
        if tag == "img":
            src = dict(attrs).get("src") or ""
            if not src.startswith("data:image/"):
                self.bad.append(f"<img src={src!r}>")

    handle_startendtag = handle_starttag


def injected(text: str) -> list[str]:
    """Elements in ``text`` that could only have come from a payload."""
    p = _Elements()
    p.feed(text)
    p.close()
    return p.bad


def html_values(root) -> list[str]:
    return [w.value for w in walk_widgets(root) if isinstance(w, (W.HTML, W.HTMLMath))]


def check(widget, tmp_path):
    values = html_values(widget)
    assert values, "no HTML widget found"
    bad = [b for v in values for b in injected(v)]
    assert bad == [], bad
    page = widget.export_html(tmp_path / "snap.html")
    assert (tmp_path / "snap.html").read_text(encoding="utf-8") == page
    assert injected(page) == []
    return values, page


def test_the_check_finds_raw_payloads():
    """The parser check is not vacuous: raw payloads are found, escaped ones are not."""
    import html

    for p in PAYLOADS[:2] + [LEVEL]:
        assert injected(f"<div>{p}</div>"), p
        assert injected(f"<div>{html.escape(p)}</div>") == []
    assert injected("<span x='" + "' onmouseover='alert(3)" + "'>") != []


def test_sanitize_html_drops_handlers_scripts_and_remote_images():
    out = sanitize_html(
        '<b>ok</b><img src=x onerror=alert(1)>"><script>alert(2)</script>'
        '<b onmouseover=alert(4)>zero</b><img src="data:image/png;base64,AAAA"/>'
    )
    assert injected(out) == []
    assert "<b>ok</b>" in out and "<b>zero</b>" in out and 'src="data:image/png;base64,AAAA"' in out
    assert "alert(2)" not in out  # script content dropped with its element


def test_relationship_annotator_escapes_names_levels_and_captions(tmp_path):
    from failwidgets.widgets import RelationshipAnnotator

    _, acts, grads, attrs, _ = CTX.relations
    names = PAYLOADS + ["c", "d", "e"]
    miner = RelationMiner(progress=False, max_units=32).fit(acts, grads, attrs, names)
    levels = [LEVEL, "probably negative", "not related", "probably positive", "definitely positive"]
    g = RelationGraph(names, levels=levels)
    g.set(0, 1, LEVEL)
    g.set(2, 3, "not related")
    g.set(4, 5, "definitely positive")
    g.set(0, 2, "probably positive")
    images = np.zeros((8, 8, 8, 3), np.uint8)
    w = RelationshipAnnotator(miner, graph=g, images=images, gradients=grads[:8], example_attributes=attrs[:8])
    w.selected_pair = [0, 1]
    values, page = check(w, tmp_path)
    joined = "\n".join(values)
    assert "&lt;img src=x onerror=alert(1)&gt;" in w.pair_label.value  # shown as text
    assert "&lt;b onmouseover=alert(4)&gt;zero&lt;/b&gt;" in w.legend.value
    assert "&lt;img" in joined and "&lt;img" in page
    assert any("&lt;img" in t.caption.value for t in w.examples.tiles)  # example captions
    w.close()


def test_direction_slider_escapes_class_names_and_captions(tmp_path):
    caps = lambda c, m: {"failure": [(PAYLOADS[0], -1.0)], "easy": [(PAYLOADS[1], 1.0)]}  # noqa: E731
    from failwidgets.methods.directions import RetrievalDecoder
    from failwidgets.widgets import DirectionSlider

    X, labels, preds, _ = CTX.directions_data
    images = np.zeros((len(X), 8, 8, 3), np.uint8)
    w = DirectionSlider(
        CTX.fd,
        images,
        X,
        labels,
        preds,
        class_names=PAYLOADS,
        captions=caps,
        decoders={"retrieval": RetrievalDecoder(X, images)},
        export_dir=str(tmp_path),
    )
    for c in range(3):
        w.class_index = c
        check(w, tmp_path)
    w.close()


def test_direction_slider_export_stays_in_its_folder(tmp_path):
    from failwidgets.widgets import DirectionSlider

    X, labels, preds, _ = CTX.directions_data
    out = tmp_path / "exports"
    (out / "flagged_x").mkdir(parents=True)  # the probe's set-up for climbing out of export_dir
    w = DirectionSlider(
        CTX.fd,
        np.zeros((len(X), 8, 8, 3), np.uint8),
        X,
        labels,
        preds,
        class_names=["x/../../../TRAVERSED", "a/b", ".."],
        export_dir=str(out),
    )
    for c in range(3):
        w.class_index = c
        w.export_button.click()
    written = sorted(p.name for p in out.iterdir() if p.is_file())
    assert written == ["flagged_a_b_mode1.csv", "flagged_mode1.csv", "flagged_x_TRAVERSED_mode1.csv"], written
    assert not any(p.name.startswith("TRAVERSED") for p in tmp_path.rglob("*"))
    assert all("/" not in n and ".." not in n for n in written)
    w.close()


def test_tree_browser_escapes_class_names(tmp_path):
    from tests.test_reliability import _tree

    w = _tree(class_names=PAYLOADS)
    leaf = int(np.flatnonzero(w.result.fit.nodes["is_leaf"].to_numpy())[0])
    w.selected_node = leaf
    check(w, tmp_path)
    w.export_button.click()
    assert PAYLOADS[1] in w.export_text.value  # the rules text is plain text in a Textarea, shown as text
    w.close()


def test_filter_word_explorer_escapes_the_search(tmp_path):
    from failwidgets.widgets import FilterWordExplorer

    _, ex, images, groups = CTX.lavise
    w = FilterWordExplorer(ex, images, groups)
    w.search = PAYLOADS[0]
    check(w, tmp_path)
    w.close()
