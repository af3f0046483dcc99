"""FailureMap in a real browser: Voilà serves ``tests/browser/notebooks/failure_map.ipynb`` (planted data
from ``tests/browser/_map_builder.py``), headless Chromium draws the jupyter-scatter map with WebGL.

A lasso drawn with the mouse around the left (all-error) cluster must come back to Python and update the
grid (8 red thumbnails) and the numbers (60 selected, 100% error inside, CI and p-value); typing a
hypothesis shows inside / outside error rates.
"""

from __future__ import annotations

import time

import pytest

from tests.browser._map_builder import N_LEFT, N_RIGHT
from tests.browser._voila import PAGE_TIMEOUT_MS

pytestmark = [pytest.mark.browser, pytest.mark.slow]

UPDATE_MS = 30_000
PAGE = "tests/browser/notebooks/failure_map.ipynb"
# Voilà loads every installed lab extension; Notebook 7's (``@jupyter-notebook/lab-extension``) asks the
# host for ``@jupyterlab/docregistry``, which Voilà does not share, and logs this on every Voilà page
# (the four widget fixture pages too); nothing on the page depends on it.
_MEAN_RGB = """els => els.map(img => {
    const c = document.createElement('canvas');
    c.width = img.naturalWidth; c.height = img.naturalHeight;
    const g = c.getContext('2d'); g.drawImage(img, 0, 0);
    const d = g.getImageData(0, 0, c.width, c.height).data;
    const s = [0, 0, 0];
    for (let i = 0; i < d.length; i += 4) { s[0] += d[i]; s[1] += d[i + 1]; s[2] += d[i + 2]; }
    return s.map(v => v / (d.length / 4));
})"""


def _drag(page, points, steps=10):
    page.mouse.move(*points[0])
    page.mouse.down()
    for a, b in zip(points, points[1:]):
        for k in range(1, steps + 1):
            page.mouse.move(a[0] + (b[0] - a[0]) * k / steps, a[1] + (b[1] - a[1]) * k / steps)
            time.sleep(0.02)  # the lasso samples the pointer over time
    page.mouse.up()


def test_lasso_on_the_page_updates_grid_and_numbers_and_hypothesis_box(voila_server, open_page, screenshot_dir):
    rec = open_page()
    rec.goto(f"{voila_server}voila/render/{PAGE}", wait_until="commit")
    page = rec.page
    page.wait_for_selector(".fw-test-root canvas", timeout=PAGE_TIMEOUT_MS)
    assert "lasso points" in page.locator(".fw-test-evidence").text_content()
    # the lasso tool of jupyter-scatter's toolbar, then a lasso around the left third of the plot
    page.locator(".fw-test-root [title*='asso']").first.click()
    box = page.locator(".fw-test-root canvas").first.bounding_box()
    x0, y0, w, h = box["x"], box["y"], box["width"], box["height"]
    _drag(
        page,
        [
            (x0 + 0.02 * w, y0 + 0.05 * h),
            (x0 + 0.35 * w, y0 + 0.05 * h),
            (x0 + 0.35 * w, y0 + 0.95 * h),
            (x0 + 0.02 * w, y0 + 0.95 * h),
            (x0 + 0.02 * w, y0 + 0.06 * h),
        ],
    )
    page.wait_for_function(
        "() => document.querySelector('.fw-test-evidence').textContent.includes('selected')", timeout=UPDATE_MS
    )
    text = page.locator(".fw-test-evidence").text_content()
    assert f"{N_LEFT} selected of {N_LEFT + N_RIGHT}" in text
    assert "error 100% [" in text and "inside vs 0% [" in text and "Fisher p = " in text
    page.wait_for_function(
        "() => { const ims = [...document.querySelectorAll('.fw-test-grid img')];"
        " return ims.length === 8 && ims.every(i => i.complete && i.naturalWidth > 0); }",
        timeout=UPDATE_MS,
    )
    rgb = page.locator(".fw-test-grid img").evaluate_all(_MEAN_RGB)
    assert all(r > 200 and g < 60 for r, g, _ in rgb), rgb  # the failing cluster's images are red
    page.screenshot(path=str(screenshot_dir / "failure_map_lasso.png"))
    # a hypothesis typed into the box: inside / outside error rates
    box_input = page.locator(".fw-test-phrase input")
    box_input.fill("axis 1")
    box_input.press("Enter")
    page.wait_for_function(
        "() => document.querySelector('.fw-test-hypothesis').textContent.includes('outside')", timeout=UPDATE_MS
    )
    hyp = page.locator(".fw-test-hypothesis").text_content()
    assert "inside" in hyp and "higher error inside" in hyp
    rec.check_no_errors()


def test_clicking_a_tree_leaf_highlights_its_points_on_the_map(voila_server, open_page, screenshot_dir):
    from tests.browser._builders import build

    tree = build("tree_browser")  # the page's tree, built the same way here
    expected = tree.node_members(1).size  # node 1: the left leaf (the failures)
    tree.close()
    rec = open_page()
    rec.goto(f"{voila_server}voila/render/tests/browser/notebooks/failure_map_tree.ipynb", wait_until="commit")
    page = rec.page
    page.wait_for_selector(".fw-test-map canvas", timeout=PAGE_TIMEOUT_MS)
    page.wait_for_selector(".fw-test-root .bqplot.figure path.dot", timeout=PAGE_TIMEOUT_MS)
    time.sleep(1)
    canvas = page.locator(".fw-test-map canvas").first
    before = canvas.screenshot()
    page.locator(".fw-test-root .bqplot.figure path.dot").nth(2).click()
    page.wait_for_function(
        "() => document.querySelector('.fw-test-map .fw-test-evidence').textContent.includes('selected')",
        timeout=UPDATE_MS,
    )
    text = page.locator(".fw-test-map .fw-test-evidence").text_content()
    assert f"{expected} selected of 300" in text
    deadline = time.monotonic() + UPDATE_MS / 1000
    while canvas.screenshot() == before and time.monotonic() < deadline:  # the points light up
        time.sleep(0.25)
    assert canvas.screenshot() != before
    page.screenshot(path=str(screenshot_dir / "failure_map_tree_leaf.png"))
    rec.check_no_errors()
