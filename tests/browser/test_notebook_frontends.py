"""The four widgets in JupyterLab 4 and Notebook 7, as a person uses them: open, Run All, click, type keys.

Each app is started on 127.0.0.1 with a token and a fresh temporary root and settings
(``tests/browser/_jupyter.py``); headless Chromium opens ``tests/browser/notebooks/all_widgets.ipynb``
(copied to that root), runs all cells from the app's *Run* menu, waits for the four widgets and then
does one interaction per widget (pick a class, click a tree node, search a word) plus the keyboard
shortcuts that ipyevents delivers (label / undo / redo / move in the annotator, the slider's arrows,
moving between tree nodes, next filter). The same widget code as in the Voilà tests; every page must
stay free of JavaScript console errors; screenshots go to the artifacts folder.
"""

from __future__ import annotations

import re
import shutil

import pytest
from playwright.sync_api import expect

from tests.browser._builders import (
    CLASS_NAMES,
    N_FILTERS,
    N_PAIRS,
    PLANTED_WORD,
    PLANTED_WORD_FILTER,
)
from tests.browser._jupyter import start_jupyter, stop_jupyter
from tests.browser._voila import (
    BQPLOT_HIDDEN_FIGURE_NOISE,
    PAGE_TIMEOUT_MS,
    REPO,
    PageRecord,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

UPDATE_MS = 30_000  # a kernel round trip on a busy machine
# Notebook 7 handles key presses before ipyevents (JupyterLab after it), so while a widget has the
# focus, these command-mode shortcuts of Notebook 7 act as well as the widget's key: r turns the cell
# into a raw cell (its output, the widget, is gone), z / y / m / a / b / c / x / v edit cells, the up /
# down arrows move the notebook's cell cursor (digits act on Markdown cells only). Measured with
# Notebook 7.6; the Notebook 7 run presses none of them and uses Ctrl+Z / Ctrl+Shift+Z, n / p instead.
# Diagnosed as Notebook 7's own: while the page loads, its keyboard-shortcut settings plugin reads
# ``plugins[id].schema`` of a settings plugin that is not loaded yet (``pluginChanged`` during
# ``SettingRegistry.load``, in notebook_core.js); it happens before any cell runs and only sometimes.
NOTEBOOK7_LOAD_NOISE = "Cannot read properties of undefined (reading 'schema')"
NOTEBOOK7_CONFLICTS = ("r", "z", "y", "m", "a", "b", "c", "x", "v", "ArrowUp", "ArrowDown")
NOTEBOOK = REPO / "tests" / "browser" / "notebooks" / "all_widgets.ipynb"
# widget -> a child only that widget's root has (tagged by tests/browser/_builders.py)
MARKERS = {
    "DirectionSlider": ".fw-test-hard",
    "TreeBrowser": ".fw-test-node",
    "RelationshipAnnotator": ".fw-test-counter",
    "FilterWordExplorer": ".fw-test-count",
}


@pytest.fixture(scope="module", params=["lab", "notebook"])
def app_page(request, chromium, tmp_path_factory, screenshot_dir):
    """(app, PageRecord) with the fixture notebook open and all its cells run; the server stops after."""
    app = request.param
    tmp = tmp_path_factory.mktemp(f"jupyter-{app}")
    root, home = tmp / "root", tmp / "home"
    root.mkdir()
    shutil.copy(NOTEBOOK, root / NOTEBOOK.name)
    server = start_jupyter(app, root, home, tmp / "server.log", extra_env={"FAILWIDGETS_NOTEBOOK_TEST": "1"})
    rec = PageRecord(chromium.new_page(), allowed=(server.url,), ignore=BQPLOT_HIDDEN_FIGURE_NOISE)
    try:
        rec.goto(server.notebook_url(NOTEBOOK.name))
        page = rec.page
        try:
            page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=PAGE_TIMEOUT_MS)
            server.wait_for_idle_kernel(page, PAGE_TIMEOUT_MS / 1000)  # Run All before that would find no kernel
            page.wait_for_timeout(1000)
            if app == "notebook":  # forgiven only while the page loads, before any widget exists
                rec.errors = [e for e in rec.errors if NOTEBOOK7_LOAD_NOISE not in e]
            page.locator(".lm-MenuBar-item", has_text=re.compile(r"^Run$")).click()
            page.locator('.lm-Menu-item[data-command="runmenu:run-all"]').click()
            page.wait_for_function(
                "() => document.querySelectorAll('.fw-test-root').length === 4", timeout=PAGE_TIMEOUT_MS
            )
        except Exception:
            page.screenshot(path=str(screenshot_dir / f"{app}_run_all_failed.png"), full_page=True)
            print("page errors:", rec.errors, "refused:", rec.refused)
            raise
        yield app, rec
    finally:
        print((tmp / "server.log").read_text()[-3000:])  # shown by pytest when the test failed
        rec.page.close()
        stop_jupyter(server)


def _root(page, widget):
    root = page.locator(".fw-test-root").filter(has=page.locator(MARKERS[widget]))
    expect(root).to_have_count(1, timeout=UPDATE_MS)
    root.scroll_into_view_if_needed()
    return root


def test_four_widgets_render_and_react(app_page, screenshot_dir):
    app, rec = app_page
    page = rec.page
    expect(page.get_by_text("Traceback")).to_have_count(0)

    # DirectionSlider: pick a class; the arrow keys step the slider (over the slider row)
    root = _root(page, "DirectionSlider")
    status = root.locator(".widget-html-content", has_text="errors of")
    expect(status).to_contain_text(f"{CLASS_NAMES[0]}:", timeout=UPDATE_MS)
    root.get_by_label("class", exact=True).select_option(label=CLASS_NAMES[2])
    expect(status).to_contain_text(f"{CLASS_NAMES[2]}:", timeout=UPDATE_MS)
    readout = root.locator(".fw-test-slider .widget-readout")
    expect(readout).to_have_text("0.00")
    slider = root.locator(".fw-test-slider")
    _press(slider, "ArrowRight", "ArrowRight")
    expect(readout).to_have_text("0.10", timeout=UPDATE_MS)
    expect(root.locator(".fw-test-decoded")).to_contain_text("alpha=+0.10", timeout=UPDATE_MS)
    _press(slider, "ArrowLeft")
    expect(readout).to_have_text("0.05", timeout=UPDATE_MS)
    root.screenshot(path=str(screenshot_dir / f"{app}_direction_slider.png"))

    # TreeBrowser: click the left leaf; the right arrow moves to its sibling, up to the root
    root = _root(page, "TreeBrowser")
    panel = root.locator(".fw-test-node")
    root.locator(".bqplot.figure path.dot").nth(2).click()
    expect(panel).to_contain_text("node 1 (leaf)", timeout=UPDATE_MS)
    figure = root.locator(".bqplot.figure")
    _press(figure, "ArrowRight")
    expect(panel).to_contain_text("node 2 (leaf)", timeout=UPDATE_MS)
    _press(figure, "ArrowLeft")
    expect(panel).to_contain_text("node 1 (leaf)", timeout=UPDATE_MS)
    if app == "lab":  # see NOTEBOOK7_CONFLICTS
        _press(figure, "ArrowUp")
        expect(panel).to_contain_text("node 0", timeout=UPDATE_MS)
    root.screenshot(path=str(screenshot_dir / f"{app}_tree_browser.png"))

    # RelationshipAnnotator: keys only (the text box is hidden: ipyevents' front end is there)
    root = _root(page, "RelationshipAnnotator")
    counter, pair = root.locator(".fw-test-counter"), root.locator(".fw-test-pair")
    expect(counter).to_contain_text(f"0 of {N_PAIRS} labelled", timeout=UPDATE_MS)
    expect(root.get_by_placeholder(re.compile("keys:"))).to_be_hidden()
    _annotate_with_keys(app, root, counter, pair)
    root.screenshot(path=str(screenshot_dir / f"{app}_relationship_annotator.png"))

    # FilterWordExplorer: search a word; then the down key opens the next filter of the (full) list
    root = _root(page, "FilterWordExplorer")
    count = root.locator(".fw-test-count")
    expect(count).to_contain_text(f"{N_FILTERS} of {N_FILTERS} filters", timeout=UPDATE_MS)
    box = root.locator(".fw-test-search input")
    box.click()  # the mouse leaves the annotator, whose key listener would take the typed keys
    box.fill(PLANTED_WORD)
    box.press("Enter")
    expect(count).to_contain_text(f"1 of {N_FILTERS} filters with {PLANTED_WORD}", timeout=UPDATE_MS)
    root.locator(".fw-test-list select").select_option(index=0)  # open the one filter found
    expect(root).to_contain_text(f"conv4 filter {PLANTED_WORD_FILTER}:", timeout=UPDATE_MS)
    box.click()
    box.fill("")
    box.press("Enter")
    expect(count).to_contain_text(f"{N_FILTERS} of {N_FILTERS} filters", timeout=UPDATE_MS)
    _press(root.locator(".fw-test-list"), "ArrowDown" if app == "lab" else "n")
    expect(root).to_contain_text(f"conv4 filter {PLANTED_WORD_FILTER + 1}:", timeout=UPDATE_MS)
    root.screenshot(path=str(screenshot_dir / f"{app}_filter_word_explorer.png"))
    page.screenshot(path=str(screenshot_dir / f"{app}_page.png"))
    expect(page.get_by_text("Traceback")).to_have_count(0)
    rec.check_no_errors()


def _press(target, *keys: str) -> None:
    """Press ``keys`` with the mouse over ``target``: ipyevents listens while the mouse is over its widget
    (hovering again first, because a page that reflowed may have moved the widget from under it)."""
    target.scroll_into_view_if_needed()
    target.hover()
    for key in keys:
        target.page.keyboard.press(key)


def _annotate_with_keys(app, root, counter, pair) -> None:
    """Label, undo, redo and move in the annotator with real key presses (mouse over the widget).

    In Notebook 7 the keys of NOTEBOOK7_CONFLICTS are left out (``r`` would make the cell raw).
    """
    marks = root.locator(".bqplot.figure text.label").filter(has_text=re.compile(r"^0$"))
    here = root.locator(".fw-test-counter")
    expect(pair).to_contain_text("a0 – a1")
    _press(here, "3")  # "not related" (mark 0) on (a0, a1)
    expect(counter).to_contain_text(f"1 of {N_PAIRS} labelled", timeout=UPDATE_MS)
    expect(pair).to_contain_text("not related")
    expect(marks).to_have_count(2, timeout=UPDATE_MS)
    _press(here, "Control+z")
    expect(counter).to_contain_text(f"0 of {N_PAIRS} labelled", timeout=UPDATE_MS)
    expect(marks).to_have_count(0, timeout=UPDATE_MS)
    _press(here, "Control+Shift+Z")
    expect(counter).to_contain_text(f"1 of {N_PAIRS} labelled", timeout=UPDATE_MS)
    _press(here, "n")
    expect(pair).to_contain_text("a0 – a2", timeout=UPDATE_MS)
    _press(here, "1")
    expect(counter).to_contain_text(f"2 of {N_PAIRS} labelled", timeout=UPDATE_MS)
    _press(here, "u")
    expect(counter).to_contain_text(f"1 of {N_PAIRS} labelled", timeout=UPDATE_MS)
    _press(here, "r" if app == "lab" else "Control+Shift+Z")
    expect(counter).to_contain_text(f"2 of {N_PAIRS} labelled", timeout=UPDATE_MS)
    _press(here, "p")
    expect(pair).to_contain_text("a0 – a1", timeout=UPDATE_MS)
    _press(here, "ArrowRight")
    expect(pair).to_contain_text("a0 – a2", timeout=UPDATE_MS)
    _press(here, "ArrowLeft")
    expect(pair).to_contain_text("a0 – a1", timeout=UPDATE_MS)
    _press(here, "0")
    expect(counter).to_contain_text(f"1 of {N_PAIRS} labelled", timeout=UPDATE_MS)
