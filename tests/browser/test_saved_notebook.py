"""A notebook executed and saved with outputs shows each widget's static snapshot without a kernel.

``tests/browser/notebooks/all_widgets.ipynb`` is executed with nbclient, written to disk with its
outputs, read back and converted to HTML with nbconvert (the lab template), then opened from
``file://`` in headless Chromium with every other request refused: no kernel, no widget manager, no
network. Each widget's ``text/html`` snapshot (``FailWidget._repr_mimebundle_``) must be visible with
its images decoded and the note that explains the missing live view.

The notebook is saved the way JupyterLab and Notebook 7 save by default, without the widget state in
its metadata; with a saved state nbconvert would pick the live widget view instead, whose JavaScript
comes from a CDN. Both kinds of saved notebook still carry the snapshot in their outputs (checked too).
"""

from __future__ import annotations

import os

import nbformat
import pytest
from nbclient import NotebookClient
from nbconvert import HTMLExporter
from playwright.sync_api import expect

from tests.browser._builders import CLASS_NAMES, N_FILTERS, N_PAIRS
from tests.browser._voila import REPO

pytestmark = [pytest.mark.browser, pytest.mark.slow]

NOTEBOOK = REPO / "tests" / "browser" / "notebooks" / "all_widgets.ipynb"
# widget -> a text of its initial view
TEXTS = {
    "DirectionSlider": f"{CLASS_NAMES[0]}: ok",
    "TreeBrowser": "click a node",
    "RelationshipAnnotator": f"0 of {N_PAIRS} labelled",
    "FilterWordExplorer": f"{N_FILTERS} of {N_FILTERS} filters",
}
VIEW = "application/vnd.jupyter.widget-view+json"


def _execute(tmp_path, store_widget_state: bool) -> nbformat.NotebookNode:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTEST_CURRENT_TEST",)}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    client = NotebookClient(
        nb,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
        store_widget_state=store_widget_state,
    )
    client.execute(env=env)  # the kernel gets env: this checkout on PYTHONPATH
    return nb


def test_saved_notebook_shows_static_snapshots_in_chromium(open_page, tmp_path, screenshot_dir):
    nb = _execute(tmp_path, store_widget_state=False)
    saved = tmp_path / "all_widgets.ipynb"
    nbformat.write(nb, saved)
    nb = nbformat.read(saved, as_version=4)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    views = [o for o in outputs if VIEW in o.get("data", {})]
    assert len(views) == 4 and all("text/html" in o["data"] for o in views)
    assert not any(o.get("output_type") == "error" for o in outputs)

    body, _ = HTMLExporter(template_name="lab").from_notebook_node(nb)
    page_path = tmp_path / "all_widgets.html"
    page_path.write_text(body, encoding="utf-8")
    rec = open_page(allowed=("file://", "data:"))
    rec.goto(page_path.as_uri())
    page = rec.page
    for name, text in TEXTS.items():
        snap = page.locator(f'.fw-snapshot[data-fw-widget="{name}"]')
        expect(snap).to_have_count(1)
        expect(snap).to_be_visible()
        expect(snap.locator(".fw-snapshot-note")).to_contain_text("widget manager")
        expect(snap.get_by_text(text).first).to_be_visible()
        snap.scroll_into_view_if_needed()
        snap.screenshot(path=str(screenshot_dir / f"saved_notebook_{name}.png"))
    page.wait_for_function("() => [...document.images].every(i => i.complete)")
    widths = page.locator(".fw-snapshot img").evaluate_all("els => els.map(i => i.naturalWidth)")
    assert len(widths) > 0 and all(w > 0 for w in widths), widths
    assert page.locator(".fw-snapshot svg").count() >= 4  # bqplot figures drawn as SVG
    rec.check_no_errors()


def test_saved_widget_state_keeps_the_snapshot_in_the_outputs(tmp_path):
    nb = _execute(tmp_path, store_widget_state=True)
    assert "application/vnd.jupyter.widget-state+json" in nb.metadata.get("widgets", {})
    views = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if VIEW in o.get("data", {})]
    assert len(views) == 4
    for o in views:
        assert o["data"]["text/html"].startswith('<div class="fw-snapshot"')
