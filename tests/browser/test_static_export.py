"""``export_html`` snapshots opened from ``file://`` in headless Chromium with the network cut off.

Each widget is built (same synthetic data as the Voilà notebooks), put in a state a user would reach
(a class picked and the slider moved, a node clicked, a pair labelled, a word searched), exported, and
opened. The page must need nothing but the file (every other request is refused and recorded), log no
JavaScript errors, show every image (decoded, naturalWidth > 0) and the key text of that state.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser._builders import (
    CLASS_NAMES,
    N_PAIRS,
    PLANTED_WORD,
    PLANTED_WORD_FILTER,
    TREE_SPLIT_FEATURE,
    build,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _direction_slider(w):
    w.class_dropdown.value = 2
    w.slider.value = 1.0
    # hardest 6 + easiest 6 + decoded 4 thumbnails; the class's status and the slider position
    return 16, [f"{CLASS_NAMES[2]}: ok", "alpha=+1.00", "failure-mode strength", "a photo on grass"]


def _tree_browser(w):
    w.nodes_mark.selected = [1]  # what a click on the node writes
    return 12, ["node 1 (leaf)", f"feature[{TREE_SPLIT_FEATURE}] <=", "failures in this node"]


def _relationship_annotator(w):
    w.matrix_chart.selected_cell = (2, 3)
    w.level_buttons[1].click()  # "probably negative": a3 uses a2's units with the opposite sign
    return 6, [f"1 of {N_PAIRS} labelled", "a2 – a3: probably negative", "mined mean relation"]


def _filter_word_explorer(w):
    w.search_box.value = PLANTED_WORD
    w.selected_filter = PLANTED_WORD_FILTER
    return 5, [f"1 of 5 filters with {PLANTED_WORD}", f"conv4 filter {PLANTED_WORD_FILTER}"]


STATES = {
    "direction_slider": _direction_slider,
    "tree_browser": _tree_browser,
    "relationship_annotator": _relationship_annotator,
    "filter_word_explorer": _filter_word_explorer,
}


@pytest.mark.parametrize("name", list(STATES))
def test_export_opens_offline_with_images_and_text(name, open_page, tmp_path, screenshot_dir):
    widget = build(name)
    try:
        n_images, texts = STATES[name](widget)
        path = tmp_path / f"{name}.html"
        widget.export_html(str(path))
    finally:
        widget.close()
    rec = open_page(allowed=("file://", "data:"))
    rec.goto(path.as_uri())
    page = rec.page
    images = page.locator("img")
    expect(images).to_have_count(n_images)
    page.wait_for_function("() => [...document.images].every(i => i.complete)")
    widths = images.evaluate_all("els => els.map(i => i.naturalWidth)")
    assert all(w > 0 for w in widths), widths
    for text in texts:
        expect(page.get_by_text(text).first).to_be_visible()
    page.screenshot(path=str(screenshot_dir / f"export_{name}.png"), full_page=True)
    assert rec.refused == []  # self-contained: nothing but the file was requested
    rec.check_no_errors()
