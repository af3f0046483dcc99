"""The tour (``notebooks/00_tour.ipynb``) served by Voilà: all four widgets render in the browser.

This is what the README's main command opens. The page (requested with the fixture notebooks at the
start of tests/browser, see ``voila_pages``) must show each widget, found by what a person sees (its
title or a control's label), decode every image, show no Python traceback and log no JavaScript error.
"""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TOUR_TIMEOUT_S = 540  # the demo world, four methods and their widgets on 2 busy cores
# widget -> text only that widget shows (a header, a figure title or a control's label)
MARKERS = {
    "RelationshipAnnotator": "Attribute relations",
    "TreeBrowser": "colour = error rate, size = error coverage",
    "FilterWordExplorer": "filters (",
    "DirectionSlider": "easier ↔ harder",
}


def test_tour_shows_all_four_widgets(voila_pages, screenshot_dir):
    rec = voila_pages["tour"]
    page = rec.page
    outputs = page.locator(".jp-OutputArea-output")
    traceback = page.get_by_text("Traceback")
    deadline = time.monotonic() + TOUR_TIMEOUT_S
    while time.monotonic() < deadline:  # all widgets shown, or stop at the first traceback
        if traceback.count():
            pytest.fail(f"the tour raised:\n{traceback.first.locator('..').inner_text()[-3000:]}", pytrace=False)
        if all(outputs.filter(has_text=m).count() for m in MARKERS.values()):
            break
        page.wait_for_timeout(2000)
    for widget, marker in MARKERS.items():
        out = outputs.filter(has_text=marker).last
        expect(out, f"{widget} did not render").to_be_visible(timeout=1000)
        out.scroll_into_view_if_needed()
        out.screenshot(path=str(screenshot_dir / f"tour_{widget}.png"))
    page.wait_for_function("() => [...document.images].every(i => i.complete)", timeout=60_000)
    broken = page.locator("img").evaluate_all("els => els.filter(i => !(i.naturalWidth > 0)).map(i => i.src)")
    assert broken == []
    expect(traceback).to_have_count(0)
    rec.check_no_errors()
