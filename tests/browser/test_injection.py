"""Hostile names in a real browser: Voilà renders widgets whose names are markup; nothing is injected.

``tests/browser/notebooks/hostile_names.ipynb`` builds a RelationshipAnnotator, a DirectionSlider and a
TreeBrowser whose attribute names, relation level, class names and captions are payloads that would
set ``window.__fwPwned`` (``tests/browser/_hostile.py``). In headless Chromium the page must show the
payloads as text, hold no element made from them (no ``img[src=x]``, no ``svg[onload]``, no element
with an event-handler attribute, no script with the payload) and never run one. The same check runs on
the static snapshot (``export_html``) opened from disk.
"""

from __future__ import annotations

import pytest

from tests.browser._hostile import build_hostile
from tests.browser._voila import PAGE_TIMEOUT_MS

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# JS: what a payload would have left in the page if markup had been made of a name
_INJECTED = """() => ({
    pwned: window.__fwPwned === undefined ? null : window.__fwPwned,
    remoteImages: [...document.querySelectorAll('img')].filter(i => !i.src.startsWith('data:')
                                                               && !i.src.startsWith('blob:')).length,
    handlers: [...document.querySelectorAll('*')].filter(e => [...e.attributes].some(
        a => a.name.toLowerCase().startsWith('on'))).map(e => e.outerHTML.slice(0, 120)),
    svgOnload: document.querySelectorAll('svg[onload]').length,
    payloadScripts: [...document.querySelectorAll('script')].filter(
        s => s.textContent.includes('__fwPwned')).length,
})"""


# Notebook 7's lab extension (installed next to Voila for the JupyterLab / Notebook tests) fails to load
# its shared @jupyterlab/docregistry module inside Voila's page; it renders nothing Voila needs.


def _assert_clean(page):
    found = page.evaluate(_INJECTED)
    assert found == {"pwned": None, "remoteImages": 0, "handlers": [], "svgOnload": 0, "payloadScripts": 0}, found


def test_hostile_names_render_as_text_in_voila(voila_server, open_page, screenshot_dir):
    rec = open_page(f"{voila_server}voila/render/tests/browser/notebooks/hostile_names.ipynb")
    page = rec.page
    page.wait_for_selector(".fw-test-hostile", timeout=PAGE_TIMEOUT_MS)
    pair = page.locator(".fw-test-pair")
    pair.wait_for(timeout=PAGE_TIMEOUT_MS)
    # the payloads are visible as text, e.g. the selected pair (attribute 0 - attribute 1: the level)
    text = pair.inner_text()
    assert '<img src=x onerror="window.__fwPwned=1">' in text and '"><script>' in text, text
    assert '<b onmouseover="window.__fwPwned=4">zero</b>' in text, text
    body = page.locator(".fw-test-hostile").inner_text()
    assert '<svg onload="window.__fwPwned=3"></svg>' in body
    page.mouse.move(10, 10)
    for b in page.locator(".fw-test-hostile b").all()[:20]:  # a hover would fire an injected onmouseover
        b.hover()
    page.wait_for_timeout(500)
    _assert_clean(page)
    page.screenshot(path=str(screenshot_dir / "hostile_names.png"), full_page=True)
    rec.check_no_errors()


def test_hostile_names_in_the_static_snapshot(tmp_path, open_page):
    from failwidgets.widgets.parts.export import widget_to_html_page

    root = build_hostile()
    path = tmp_path / "snapshot.html"
    path.write_text(widget_to_html_page(root, title="hostile"), encoding="utf-8")
    rec = open_page(path.as_uri(), allowed=("file://", "data:"))
    rec.page.wait_for_load_state("load")
    assert "window.__fwPwned=1" in rec.page.locator("body").inner_text()  # shown as text
    _assert_clean(rec.page)
    rec.check_no_errors()
    for w in root.children:
        w.close()
