"""The four widgets in a real browser: Voilà serves each fixture notebook, headless Chromium uses it.

Each test waits for its widget to render, does what a person would do (pick a class and drag the
slider, click a tree node, click a matrix cell and press a label button, type a search word), and
asserts on what the page then shows: image pixels read back from the page, texts, counts. The
expected results come from the structure planted in ``tests/browser/_builders.py``. Every page must
stay free of JavaScript console errors; a screenshot of each widget goes to
``test-artifacts/screenshots/``.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser._builders import (
    CLASS_NAMES,
    N_FILTERS,
    N_PAIRS,
    PLANTED_WORD,
    PLANTED_WORD_FILTER,
    TREE_SPLIT_FEATURE,
)
from tests.browser._voila import PAGE_TIMEOUT_MS

pytestmark = [pytest.mark.browser, pytest.mark.slow]

UPDATE_MS = 30_000  # a kernel round trip on a busy machine

# JS: the pixels of each <img> (drawn on a canvas), so "the images changed" means what a person sees
# changed, not only a blob URL. Images are same-origin blobs, so the canvas is readable.
_PIXELS = """els => els.map(img => {
    const c = document.createElement('canvas');
    c.width = img.naturalWidth; c.height = img.naturalHeight;
    c.getContext('2d').drawImage(img, 0, 0);
    return c.toDataURL();
})"""
# JS: mean RGB of the top tenth of each <img> (where the builder paints a red band on failing images).
_TOP_BAND_RGB = """els => els.map(img => {
    const c = document.createElement('canvas');
    c.width = img.naturalWidth; c.height = img.naturalHeight;
    const g = c.getContext('2d'); g.drawImage(img, 0, 0);
    const h = Math.max(1, Math.floor(c.height / 10));
    const d = g.getImageData(0, 0, c.width, h).data;
    const s = [0, 0, 0];
    for (let i = 0; i < d.length; i += 4) { s[0] += d[i]; s[1] += d[i + 1]; s[2] += d[i + 2]; }
    const n = d.length / 4;
    return s.map(v => v / n);
})"""

# JS: texts / dots of a bqplot figure whose box pokes out of its plot area (by more than 1 px).
_OUTSIDE_PLOT_AREA = """fig => {
    const area = fig.querySelector('rect.plotarea_background').getBoundingClientRect();
    return [...fig.querySelectorAll('text.label, path.dot')].filter(e => {
        const b = e.getBoundingClientRect();
        return b.width > 0 && (b.left < area.left - 1 || b.right > area.right + 1
                               || b.top < area.top - 1 || b.bottom > area.bottom + 1);
    }).map(e => e.textContent || e.getAttribute('class'));
}"""


def _ready(rec):
    """Wait until the widget has rendered in ``rec``'s page; returns (page, widget root locator)."""
    page = rec.page
    page.wait_for_selector(".fw-test-root", timeout=PAGE_TIMEOUT_MS)
    return page, page.locator(".fw-test-root")


def _loaded_images(page, selector: str, n: int) -> list[str]:
    """Wait for exactly ``n`` decoded images under ``selector``; returns their pixels."""
    page.wait_for_function(
        "([sel, n]) => { const ims = [...document.querySelectorAll(sel)];"
        " return ims.length === n && ims.every(i => i.complete && i.naturalWidth > 0); }",
        arg=[selector, n],
        timeout=UPDATE_MS,
    )
    return page.locator(selector).evaluate_all(_PIXELS)


def _wait_pixels_change(page, selector: str, before: list[str]) -> list[str]:
    page.wait_for_function(
        f"([sel, before]) => {{ const ims = [...document.querySelectorAll(sel)];"
        f" if (!ims.length || !ims.every(i => i.complete && i.naturalWidth > 0)) return false;"
        f" const now = ({_PIXELS})(ims); return JSON.stringify(now) !== JSON.stringify(before); }}",
        arg=[selector, before],
        timeout=UPDATE_MS,
    )
    return page.locator(selector).evaluate_all(_PIXELS)


def _is_red(rgb) -> bool:
    return rgb[0] > 180 and rgb[1] < 90 and rgb[2] < 90


def test_direction_slider_pick_class_and_drag_slider(voila_pages, screenshot_dir):
    rec = voila_pages["direction_slider"]
    page, root = _ready(rec)
    status = root.locator(".widget-html-content", has_text="errors of")
    expect(status).to_contain_text(f"{CLASS_NAMES[0]}:", timeout=UPDATE_MS)
    hard_sel, dec_sel = ".fw-test-hard img", ".fw-test-decoded img"
    hard_before = _loaded_images(page, hard_sel, 6)

    # pick a class: the status, and the hardest images (now of class cow) change
    page.get_by_label("class", exact=True).select_option(label=CLASS_NAMES[2])
    expect(status).to_contain_text(f"{CLASS_NAMES[2]}:", timeout=UPDATE_MS)
    hard_after = _wait_pixels_change(page, hard_sel, hard_before)
    assert len(hard_after) == 6 and hard_after != hard_before

    # the hardest images of a class whose planted failures carry a red band show that band
    assert all(_is_red(rgb) for rgb in page.locator(hard_sel).evaluate_all(_TOP_BAND_RGB))

    # drag the slider from 0 (class mean) to +1 (harder): the decoded images follow it and, planted,
    # the retrieved images at the hard end are the failing minority (red band); at 0 they are not
    decoded_before = _loaded_images(page, dec_sel, 4)
    assert not all(_is_red(rgb) for rgb in page.locator(dec_sel).evaluate_all(_TOP_BAND_RGB))
    readout = root.locator(".fw-test-slider .widget-readout")
    expect(readout).to_have_text("0.00")
    handle = root.locator(".fw-test-slider .noUi-handle")
    track = root.locator(".fw-test-slider .noUi-target").bounding_box()
    box = handle.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(track["x"] + track["width"] + 20, box["y"] + box["height"] / 2, steps=8)
    page.mouse.up()
    expect(readout).to_have_text("1.00", timeout=UPDATE_MS)
    decoded_after = _wait_pixels_change(page, dec_sel, decoded_before)
    page.wait_for_function(  # the last slider message may still be on its way: wait for the red band
        f"sel => ({_TOP_BAND_RGB})([...document.querySelectorAll(sel)])"
        ".every(c => c[0] > 180 && c[1] < 90 && c[2] < 90)",
        arg=dec_sel,
        timeout=UPDATE_MS,
    )
    assert len(decoded_after) == 4
    expect(root.locator(".fw-test-decoded")).to_contain_text("alpha=+1.00")
    root.screenshot(path=str(screenshot_dir / "direction_slider.png"))
    rec.check_no_errors()


def test_tree_browser_click_node(voila_pages, screenshot_dir):
    rec = voila_pages["tree_browser"]
    page, root = _ready(rec)
    panel = root.locator(".fw-test-node")
    expect(panel).to_have_text("click a node", timeout=UPDATE_MS)
    expect(root.locator(".fw-test-failures img")).to_have_count(0)
    # the tree figure: edges, the green ring of the valid leaf, then one dot per node (root, left
    # leaf, right leaf), then labels; node 1 = the left leaf (feature[9] <= threshold, the failures)
    dots = root.locator(".bqplot.figure path.dot")
    expect(dots).to_have_count(1 + 3)
    # every node and its "ER · EC" label lies inside the plot area (none cut off at the edges)
    expect(root.locator(".bqplot.figure text.label")).to_have_count(3)
    outside = root.locator(".bqplot.figure").first.evaluate(_OUTSIDE_PLOT_AREA)
    assert outside == [], outside
    dots.nth(2).click()
    expect(panel).to_contain_text("node 1 (leaf)", timeout=UPDATE_MS)
    expect(panel).to_contain_text(f"feature[{TREE_SPLIT_FEATURE}] <=")
    expect(panel).to_contain_text("held-out")
    fails = _loaded_images(page, ".fw-test-failures img", 6)  # n_samples failures of the leaf, shown
    assert len(set(fails)) == 6
    expect(root.locator(".fw-test-failures")).to_contain_text(f"label {CLASS_NAMES[1]}")
    expect(root.get_by_role("button", name=f"visualise feature[{TREE_SPLIT_FEATURE}]")).to_be_enabled()
    root.screenshot(path=str(screenshot_dir / "tree_browser.png"))
    rec.check_no_errors()


def test_relationship_annotator_click_cell_and_label(voila_pages, screenshot_dir):
    rec = voila_pages["relationship_annotator"]
    page, root = _ready(rec)
    counter, pair = root.locator(".fw-test-counter"), root.locator(".fw-test-pair")
    expect(counter).to_contain_text(f"0 of {N_PAIRS} labelled", timeout=UPDATE_MS)
    expect(pair).to_contain_text("a0 – a1")
    # 6 x 6 matrix, row-major cells: row 2, column 3 is the pair (a2, a3)
    root.locator("rect.heatmapcell").nth(2 * 6 + 3).click()
    expect(pair).to_contain_text("a2 – a3", timeout=UPDATE_MS)
    expect(pair).to_contain_text("unlabelled")
    # planted: a3 uses half of a2's units with the opposite sign, so a person labels it negative
    root.get_by_role("button", name="2: probably negative").click()
    expect(counter).to_contain_text(f"1 of {N_PAIRS} labelled", timeout=UPDATE_MS)
    expect(pair).to_contain_text("probably negative")
    # the level's mark ("-") appears in both symmetric cells of the matrix
    marks = root.locator(".bqplot.figure text.label").filter(has_text=re.compile(r"^-$"))
    expect(marks).to_have_count(2, timeout=UPDATE_MS)
    root.get_by_role("button", name="undo (u)").click()
    expect(counter).to_contain_text(f"0 of {N_PAIRS} labelled", timeout=UPDATE_MS)
    expect(marks).to_have_count(0, timeout=UPDATE_MS)
    root.get_by_role("button", name="redo (r)").click()
    expect(counter).to_contain_text(f"1 of {N_PAIRS} labelled", timeout=UPDATE_MS)
    root.screenshot(path=str(screenshot_dir / "relationship_annotator.png"))
    rec.check_no_errors()


def test_filter_word_explorer_search_word(voila_pages, screenshot_dir):
    rec = voila_pages["filter_word_explorer"]
    page, root = _ready(rec)
    count = root.locator(".fw-test-count")
    options = root.locator(".fw-test-list option")
    expect(count).to_contain_text(f"{N_FILTERS} of {N_FILTERS} filters", timeout=UPDATE_MS)
    expect(options).to_have_count(N_FILTERS)
    box = root.locator(".fw-test-search input")
    box.fill(PLANTED_WORD)
    box.press("Enter")  # continuous_update=False: the word is sent on Enter, as a person would
    expect(count).to_contain_text(f"1 of {N_FILTERS} filters with {PLANTED_WORD}", timeout=UPDATE_MS)
    expect(options).to_have_count(1)
    expect(options.first).to_contain_text(f"filter {PLANTED_WORD_FILTER}:")
    # open the filter: its header and its top images appear
    root.locator(".fw-test-list select").select_option(index=0)
    expect(root).to_contain_text(f"conv4 filter {PLANTED_WORD_FILTER}", timeout=UPDATE_MS)
    _loaded_images(page, ".fw-test-root .widget-gridbox img", 5)
    root.screenshot(path=str(screenshot_dir / "filter_word_explorer.png"))
    # the Groups tab: its bar chart was drawn while hidden (see BQPLOT_HIDDEN_FIGURE_NOISE); shown, it has real bars
    root.get_by_role("tab", name="Groups").click()
    bars = root.locator(".bqplot.figure rect.bar")
    expect(bars.first).to_be_visible(timeout=UPDATE_MS)
    page.wait_for_function(
        "() => { const b = [...document.querySelectorAll('.fw-test-root .bqplot.figure rect.bar')];"
        " return b.length > 0 && b.some(r => r.getBBox().width > 1 && r.getBBox().height > 1); }",
        timeout=UPDATE_MS,
    )
    root.screenshot(path=str(screenshot_dir / "filter_word_explorer_groups.png"))
    rec.check_no_errors()
