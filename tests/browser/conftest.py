"""Real-browser fixtures: one Voilà server (fixture notebooks and the tour), one headless Debian Chromium.

Scopes are ``package``: the server, its kernels and the browser go away when tests/browser is done.

- ``voila_server``: ``voila <repository>`` on 127.0.0.1 and a free port.
- ``chromium``: Playwright persistent context of ``/usr/bin/chromium``, headless, flags that
  keep it off the network, a fresh ``--user-data-dir`` in tmp.
- ``voila_pages``: the tour and every widget fixture notebook requested at once, so their kernels
  start and run in parallel (the tour takes longest); a test waits for its own page. The tabs stay
  open until tests/browser is done.
- ``open_page`` (function): ``open_page(url=None, allowed=..., ignore=...)`` -> PageRecord, a new tab
  that fails the test at teardown if the page logged JavaScript errors.
- ``screenshot_dir``: ``$FAILWIDGETS_ARTIFACTS/screenshots/``, by default ``test-artifacts/screenshots/``
  (gitignored).

Missing Chromium or Playwright fails the tests loudly (never skips): run ``scripts/install_browser.sh``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Callable

import pytest

from tests.browser._voila import (
    BQPLOT_HIDDEN_FIGURE_NOISE,
    REPO,
    PageRecord,
    launch_chromium,
    playwright,
    start_voila,
    stop_voila,
)

# name -> notebook (relative to the repository, which the server serves)
PAGES = {
    "tour": "notebooks/00_tour.ipynb",
    **{
        name: f"tests/browser/notebooks/{name}.ipynb"
        for name in ("direction_slider", "tree_browser", "relationship_annotator", "filter_word_explorer")
    },
}
# Console errors diagnosed as harmless, per page (the reasons are next to the constants); the tour
# holds a FilterWordExplorer too
KNOWN_NOISE = {"filter_word_explorer": BQPLOT_HIDDEN_FIGURE_NOISE, "tour": BQPLOT_HIDDEN_FIGURE_NOISE}


@pytest.fixture(scope="session")
def screenshot_dir() -> Path:
    path = Path(os.environ.get("FAILWIDGETS_ARTIFACTS") or REPO / "test-artifacts") / "screenshots"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="package")
def voila_server(tmp_path_factory):
    """Base URL of one Voilà server over the repository (the fixture notebooks and the tour).

    ``FAILWIDGETS_NOTEBOOK_TEST=1`` lets the tour pick its small settings, as in the notebook test.
    """
    folder = tmp_path_factory.mktemp("voila")
    proc, url = start_voila(REPO, REPO, folder / "voila.log", extra_env={"FAILWIDGETS_NOTEBOOK_TEST": "1"})
    try:
        yield url
    finally:
        stop_voila(proc)


@pytest.fixture(scope="package")
def chromium(tmp_path_factory):
    """A headless Chromium browser context (fresh profile directory, closed at the end)."""
    profile = tmp_path_factory.mktemp("chromium") / "profile"
    context = launch_chromium(playwright(), profile)
    try:
        yield context
    finally:
        context.close()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="package")
def voila_pages(chromium, voila_server) -> dict[str, PageRecord]:
    """name (a key of ``PAGES``) -> PageRecord, all requested at once (not waited for)."""
    missing = [path for path in PAGES.values() if not (REPO / path).exists()]
    assert not missing, f"notebooks missing: {missing}"
    pages = {}
    for name, path in PAGES.items():
        rec = PageRecord(chromium.new_page(), allowed=(voila_server,), ignore=KNOWN_NOISE.get(name, ()))
        rec.goto(f"{voila_server}voila/render/{path}", wait_until="commit")
        pages[name] = rec
    yield pages
    for rec in pages.values():
        rec.page.close()


@pytest.fixture
def open_page(chromium) -> Callable[..., PageRecord]:
    """``open_page(url=None, allowed=("http://127.0.0.1",), ignore=())`` -> PageRecord in a new tab."""
    opened: list[PageRecord] = []

    def _open(
        url: str | None = None, allowed: tuple[str, ...] = ("http://127.0.0.1",), ignore: tuple[str, ...] = ()
    ) -> PageRecord:
        rec = PageRecord(chromium.new_page(), allowed=allowed, ignore=ignore)
        opened.append(rec)
        if url is not None:
            rec.goto(url)
        return rec

    yield _open
    errors = [e for rec in opened for e in rec.errors]
    for rec in opened:
        rec.page.close()
    if errors:
        pytest.fail("JavaScript errors in the page:\n" + "\n".join(errors), pytrace=False)
