"""The parts in a real browser: Voilà serves the widgets, headless Chromium clicks them.

Checks what plain pytest cannot: that the front ends render our composition and that clicks in the
browser reach the Python traits (tile toggle -> ImageGrid.selected, bar -> BarChart.selected_index,
histogram bar -> GroupHistogram.selected_bin, heat-map cell -> MatrixHeatmap.selected_cell, which
needs our workaround for bqplot issue #1632).
"""

import nbformat
import pytest

from tests.browser._voila import PageRecord, launch_chromium, playwright, start_voila, stop_voila

pytestmark = [pytest.mark.browser, pytest.mark.slow]

_CELL = r"""
import numpy as np, ipywidgets as W
from failwidgets.widgets.parts import ImageGrid, BarChart, GroupHistogram, MatrixHeatmap, FailWidget
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
"""


@pytest.fixture(scope="module")
def voila_url(tmp_path_factory):
    folder = tmp_path_factory.mktemp("voila")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(_CELL)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, folder / "parts.ipynb")
    proc, url = start_voila(folder / "parts.ipynb", folder, folder / "voila.log")
    try:
        yield url
    finally:
        stop_voila(proc)


def test_clicks_in_the_browser_reach_the_python_traits(voila_url, tmp_path):
    browser = launch_chromium(playwright(), tmp_path / "profile")  # headless, offline flags, fresh profile
    try:
        rec = PageRecord(browser.new_page(), allowed=(voila_url,))  # refuses (and records) the rest
        page = rec.page
        page.goto(voila_url, timeout=120_000)
        page.wait_for_selector(".fw-status", timeout=120_000)
        status = page.locator(".fw-status")

        def wait_status(part: str, absent: str | None = None) -> str:
            for _ in range(60):
                text = status.inner_text()
                if part in text and (absent is None or absent not in text):
                    break
                page.wait_for_timeout(250)
            return status.inner_text()

        assert page.locator("img").count() >= 4  # thumbnails rendered
        page.get_by_role("button", name="select", exact=True).nth(2).click()
        assert "grid=[2]" in wait_status("grid=[2]")
        page.locator("rect.bar").nth(1).click()  # BarChart: bar "b"
        assert "bar=1" in wait_status("bar=1")
        page.locator("rect.bar").nth(3 + 7).click()  # histogram, 2nd group's bars
        assert "bin=" in wait_status("bin=", absent="bin=None") and "bin=None" not in status.inner_text()
        page.locator("rect.heatmapcell").nth(1).click()  # row 0, column 1
        assert "cell=(0, 1)" in wait_status("cell=(0, 1)")
    finally:
        browser.close()
    assert rec.errors == []
    assert all("fontawesome" in u for u in rec.refused), rec.refused  # only Voilà's icon CSS is external
