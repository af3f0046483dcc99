"""The tour (``notebooks/00_tour.ipynb``) served by Voilà: all four widgets render in the browser.

This is what the README's main command opens. The page must show each widget (found by what a person
sees: its title or its controls), decode every image, show no Python traceback and log no JavaScript
error. ``FAILWIDGETS_NOTEBOOK_TEST=1`` lets the tour pick its small settings, as in the notebook test.
"""
from __future__ import annotations

import time

import pytest
from playwright.sync_api import expect

from tests.browser._voila import BQPLOT_HIDDEN_FIGURE_NOISE, REPO, PageRecord, start_voila, stop_voila

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TOUR = REPO / "notebooks" / "00_tour.ipynb"
TOUR_TIMEOUT_MS = 540_000  # the demo world, four methods and their widgets on 2 busy cores
# widget -> text only that widget shows (a header, a figure title or a control's label)
MARKERS = {
    "RelationshipAnnotator": "Attribute relations",
    "TreeBrowser": "colour = error rate, size = error coverage",
    "FilterWordExplorer": "filters (",
    "DirectionSlider": "easier ↔ harder",
}


@pytest.fixture(scope="module")
def tour_url(tmp_path_factory):
    assert TOUR.exists(), f"{TOUR} is missing: the tour is what the README's main command opens"
    folder = tmp_path_factory.mktemp("voila-tour")
    proc, url = start_voila(TOUR, TOUR.parent, folder / "voila.log", extra_env={"FAILWIDGETS_NOTEBOOK_TEST": "1"})
    try:
        yield url
    finally:
        stop_voila(proc)


def test_tour_shows_all_four_widgets(tour_url, chromium, screenshot_dir):
    rec = PageRecord(chromium.new_page(), allowed=(tour_url,), ignore=BQPLOT_HIDDEN_FIGURE_NOISE)  # explorer's tab
    page = rec.page
    try:
        rec.goto(tour_url, wait_until="commit")
        outputs = page.locator(".jp-OutputArea-output")
        traceback = page.get_by_text("Traceback")
        deadline = time.monotonic() + TOUR_TIMEOUT_MS / 1000
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
        expect(page.get_by_text("Traceback")).to_have_count(0)
        rec.check_no_errors()
    finally:
        page.close()
