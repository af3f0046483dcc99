"""The parts in a real browser: Voilà serves the widgets, headless Chromium clicks them.

Checks what plain pytest cannot: that the front ends render our composition and that clicks in the
browser reach the Python traits (tile toggle -> ImageGrid.selected, bar -> BarChart.selected_index,
histogram bar -> GroupHistogram.selected_bin, heat-map cell -> MatrixHeatmap.selected_cell, which
needs our workaround for bqplot issue #1632).
"""
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import nbformat
import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"

_CELL = r'''
import numpy as np, ipywidgets as W
from failwidgets.widgets._parts import ImageGrid, BarChart, GroupHistogram, MatrixHeatmap, FailWidget
imgs = np.zeros((4, 32, 32, 3), np.uint8); imgs[..., 1] = 150
heat = np.zeros((4, 4, 4)); heat[:, 1:3, 1:3] = 1.0
grid = ImageGrid(columns=4, thumb_size=96); grid.set_images(imgs, captions=[f"img {i}" for i in range(4)], overlays=heat)
bars = BarChart(["a", "b", "c"], [1, 3, 2], title="bars")
hist = GroupHistogram(bins=10, title="hist")
v = np.linspace(-2, 2, 200); hist.set_data(v, (v < 0).astype(int), ["ok", "err"])
mat = MatrixHeatmap(title="mat"); mat.set_matrix(np.array([[1.0, -0.5], [0.2, 0.0]]), ["r0", "r1"], ["c0", "c1"])
status = W.HTML("start"); status.add_class("fw-status")
def show(_=None):
    status.value = f"grid={grid.selected} bar={bars.selected_index} bin={hist.selected_bin} cell={mat.selected_cell}"
for w, n in ((grid, "selected"), (bars, "selected_index"), (hist, "selected_bin"), (mat, "selected_cell")):
    w.observe(show, names=n)
FailWidget(children=[status, grid, W.HBox([bars, hist, mat])])
'''


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def voila_url(tmp_path_factory):
    folder = tmp_path_factory.mktemp("voila")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(_CELL)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, folder / "parts.ipynb")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("FAILWIDGETS_RAISE_CALLBACK_ERRORS", "PYTEST_CURRENT_TEST")}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    log = open(folder / "voila.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "voila", "--no-browser", f"--port={port}", "--Voila.ip=127.0.0.1",
                             "parts.ipynb"], cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.time() + 90
        while True:
            try:
                urllib.request.urlopen(url + "api", timeout=2)
                break
            except urllib.error.HTTPError:  # any HTTP answer means the server is up
                break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    raise RuntimeError(f"voila did not start: {(folder / 'voila.log').read_text()[-2000:]}")
                time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        proc.wait(20)
        log.close()


def test_clicks_in_the_browser_reach_the_python_traits(voila_url, tmp_path):
    from playwright.sync_api import sync_playwright

    errors, external = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"])  # playwright gives each launch a fresh profile
        page = browser.new_page(viewport={"width": 1400, "height": 1000})

        def route(r):  # offline: anything not served by Voilà is refused (and recorded)
            if r.request.url.startswith(voila_url):
                r.continue_()
            else:
                external.append(r.request.url)
                r.abort()

        page.route("**/*", route)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" and "Failed to load resource"
                not in m.text else None)
        page.goto(voila_url, timeout=120_000)
        page.wait_for_selector(".fw-status", timeout=120_000)
        status = page.locator(".fw-status")

        def wait_status(part: str) -> str:
            for _ in range(60):
                if part in status.inner_text():
                    break
                page.wait_for_timeout(250)
            return status.inner_text()

        assert page.locator("img").count() >= 4                       # thumbnails rendered
        page.get_by_role("button", name="select", exact=True).nth(2).click()
        assert "grid=[2]" in wait_status("grid=[2]")
        page.locator("rect.bar").nth(1).click()                       # BarChart: bar "b"
        assert "bar=1" in wait_status("bar=1")
        page.locator("rect.bar").nth(3 + 7).click()                   # histogram, 2nd group's bars
        assert "bin=" in wait_status("bin=") and "bin=None" not in status.inner_text()
        page.locator("rect.heatmapcell").nth(1).click()              # row 0, column 1
        assert "cell=(0, 1)" in wait_status("cell=(0, 1)")
        browser.close()
    assert errors == []
    assert all("fontawesome" in u for u in external), external     # only Voilà's icon CSS is external
