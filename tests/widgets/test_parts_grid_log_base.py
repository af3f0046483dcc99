"""ImageGrid selection, LogArea / guarded callbacks, FailWidget state, close() and export_html."""

import base64
import json

import bqplot as bq
import ipywidgets as W
import numpy as np
import pytest
import torch
import traitlets
from ipywidgets.widgets.widget import _instances

from failwidgets.widgets.parts import FailWidget, ImageGrid, LogArea, ThumbnailCache, guarded
from failwidgets.widgets.parts.thumbnails import thumbnail_bytes


def _images(n, size=16, seed=0):
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


# ---------------------------------------------------------------- ImageGrid
def test_grid_tiles_captions_and_bytes():
    grid = ImageGrid(columns=3, thumb_size=32, cache=ThumbnailCache())
    imgs = _images(4)
    grid.set_images(imgs, captions=[f"cap{i}" for i in range(4)])
    assert len(grid.tiles) == 4 and len(grid.grid.children) == 4
    assert grid.tiles[2].caption.value == "cap2"
    assert grid.tiles[1].image.value == thumbnail_bytes(imgs[1], max_side=32)  # JPEG of image 1
    assert grid.tiles[1].image.format == "jpeg"
    assert "repeat(3," in grid.grid.layout.grid_template_columns


def test_grid_selection_by_toggle_and_by_trait():
    grid = ImageGrid(columns=2)
    grid.set_images(_images(5), keys=["a", "b", "c", "d", "e"])
    seen = []
    grid.observe(lambda ch: seen.append(list(ch["new"])), names="selected")
    grid.tiles[1].button.value = True  # the user clicks tile 1
    grid.tiles[3].button.value = True
    assert grid.selected == ["b", "d"] and grid.selected_indices == [1, 3]
    grid.tiles[1].button.value = False
    assert grid.selected == ["d"]
    grid.selected = ["a", "e"]  # from Python: buttons follow
    assert [t.button.value for t in grid.tiles] == [True, False, False, False, True]
    assert seen[-1] == ["a", "e"]
    grid.clear_button.click()
    assert grid.selected == [] and not any(t.button.value for t in grid.tiles)
    with pytest.raises(ValueError, match="selected"):
        grid.selected = ["zzz"]


def test_grid_single_selection_mode():
    grid = ImageGrid(multiple=False)
    grid.set_images(_images(3))
    grid.tiles[0].button.value = True
    grid.tiles[2].button.value = True
    assert grid.selected == [2]
    assert [t.button.value for t in grid.tiles] == [False, False, True]


def test_grid_reuses_tiles_when_count_does_not_grow():
    grid = ImageGrid()
    grid.set_images(_images(6))
    first = list(grid.tiles)
    grid.selected = [4]
    grid.set_images(_images(3, seed=1))
    assert grid.tiles == first[:3]  # same widget objects, no rebuild
    assert grid.selected == []  # new images clear the selection
    grid.set_images(_images(8, seed=2))
    assert grid.tiles[:6] == first and len(grid.tiles) == 8


def test_grid_overlay_toggle_switches_between_png_heatmap_and_jpeg():
    grid = ImageGrid(thumb_size=16)
    assert grid.overlay_toggle.layout.display == "none"
    imgs = _images(2)
    heat = np.zeros((2, 4, 4), np.float32)
    heat[:, :, 2:] = 1.0
    grid.set_images(imgs, overlays=heat)
    assert grid.overlay_toggle.layout.display != "none"
    with_heat = grid.image_bytes(0)
    assert with_heat[:4] == b"\x89PNG"
    grid.overlay_toggle.value = False
    assert grid.show_overlay is False and grid.image_bytes(0)[:3] == b"\xff\xd8\xff"
    grid.show_overlay = True
    assert grid.image_bytes(0) == with_heat
    with pytest.raises(ValueError, match="overlays"):
        grid.set_overlays(np.zeros((3, 4, 4)))


def test_grid_argument_errors():
    grid = ImageGrid()
    with pytest.raises(ValueError, match="captions"):
        grid.set_images(_images(2), captions=["x"])
    with pytest.raises(ValueError, match="keys"):
        grid.set_images(_images(2), keys=[1, 1])
    with pytest.raises(TypeError, match="columns"):
        ImageGrid(columns=0.5)


# ---------------------------------------------------------------- LogArea / guarded
def test_log_info_error_and_busy():
    log = LogArea()
    log.info("loaded %d images", 12)
    assert "loaded 12 images" in log.text
    assert log.output.outputs[0]["name"] == "stdout"
    try:
        raise KeyError("missing")
    except KeyError as exc:
        log.error(exc, context="on_pick")
    assert log.n_errors == 1
    assert log.output.outputs[-1]["name"] == "stderr"
    assert "KeyError" in log.text and "Traceback" in log.text and "on_pick" in log.text
    assert log.accordion.selected_index == 0  # opened on error
    with log.busy("fitting..."):
        assert "fitting..." in log.status.value and log.busy_depth == 1
    assert log.busy_depth == 0 and "fitting" not in log.status.value


def test_guarded_logs_and_reraises_under_pytest(monkeypatch):
    log = LogArea()

    @guarded(log)
    def bad(x):
        raise RuntimeError(f"boom {x}")

    with pytest.raises(RuntimeError, match="boom 1"):
        bad(1)
    assert "boom 1" in log.text and log.n_errors == 1


def test_guarded_swallows_outside_tests(monkeypatch):
    monkeypatch.delenv("PYTEST_CURRENT_TEST", raising=False)
    monkeypatch.delenv("FAILWIDGETS_RAISE_CALLBACK_ERRORS", raising=False)
    log = LogArea()
    assert guarded(log)(lambda: 1 / 0)() is None  # the notebook keeps running ...
    assert "ZeroDivisionError" in log.text  # ... and the user sees the traceback
    monkeypatch.setenv("FAILWIDGETS_RAISE_CALLBACK_ERRORS", "1")
    with pytest.raises(ZeroDivisionError):
        guarded(log)(lambda: 1 / 0)()


# ---------------------------------------------------------------- FailWidget
class _Demo(FailWidget):
    _state_traits = ("threshold", "picked")
    threshold = traitlets.Float(0.5)
    picked = traitlets.List()

    def __init__(self, **kw):
        super().__init__(method="m", **kw)
        self.weights = torch.ones(1000)
        self.slider = W.FloatSlider(value=0.5, description="threshold")
        self.button = W.Button(description="Run")
        self.grid = ImageGrid(thumb_size=16)
        self.grid.set_images(_images(2), captions=["cat &#10003;", "dog &#10007;"])
        self.fig = bq.Figure(
            marks=[bq.Bars(x=["x1", "x2"], y=[1.0, 3.0], scales={"x": bq.OrdinalScale(), "y": bq.LinearScale()})],
            title="errors per group",
        )
        self.calls = []
        self.spare_panel = W.VBox([W.HTML("shown later")])  # an attribute, not in the tree yet
        self.observe_guarded(self._on_slider, names="value", widget=self.slider)
        self.on_click_guarded(self.button, self._on_run)
        self.children = [W.HTML("<h3>Finding</h3>"), self.slider, self.button, self.grid, self.fig, self.log]

    def _on_slider(self, change):
        self.calls.append(change["new"])
        self.threshold = change["new"]
        if change["new"] > 0.9:
            raise ValueError("threshold too high")

    def _on_run(self, _b):
        raise RuntimeError("run failed")


def test_observe_guarded_routes_errors_and_requires_names():
    w = _Demo()
    w.slider.value = 0.7
    assert w.threshold == 0.7
    with pytest.raises(ValueError, match="too high"):
        w.slider.value = 0.95
    assert "threshold too high" in w.log.text
    with pytest.raises(RuntimeError, match="run failed"):
        w.button.click()
    assert w.log.n_errors == 2
    with pytest.raises(ValueError, match="names"):
        w.observe_guarded(lambda c: None, names=None)
    w.close()


def test_to_dict_from_dict_roundtrip_through_json():
    w = _Demo()
    w.threshold, w.picked = 0.25, [3, 1]
    d = json.loads(json.dumps(w.to_dict()))
    assert d == {"widget": "_Demo", "version": 1, "threshold": 0.25, "picked": [3, 1]}
    w2 = _Demo().from_dict(d)
    assert (w2.threshold, w2.picked) == (0.25, [3, 1])
    with pytest.raises(ValueError, match="widget"):
        w2.from_dict({"widget": "Other", "version": 1})
    with pytest.raises(ValueError, match="unknown state keys"):
        w2.from_dict({"widget": "_Demo", "version": 1, "nope": 1})
    w.close(), w2.close()


def test_close_unobserves_closes_descendants_and_drops_tensors():
    before = set(_instances)
    w = _Demo()
    created = set(_instances) - before
    assert len(created) > 20
    slider = w.slider
    w.close()
    assert not (set(_instances) & created)  # every widget it made, layouts and bqplot parts included
    assert w.weights is None and w.method is None
    slider.value = 0.99  # no observer left: nothing runs, nothing raises
    assert w.calls == []


def test_export_html_is_self_contained(tmp_path):
    w = _Demo()
    w.slider.value = 0.3
    w.log.info("found 2 failures")
    path = tmp_path / "snap.html"
    html = w.export_html(str(path))
    assert path.read_text(encoding="utf-8") == html
    assert "<h3>Finding</h3>" in html and "cat &#10003;" in html
    assert "threshold</b> 0.3" in html and "found 2 failures" in html
    # the thumbnails themselves are embedded
    for tile in w.grid.tiles:
        assert "data:image/jpeg;base64," + base64.b64encode(tile.image.value).decode() in html
    # the chart is an inline SVG with one bar per value, and its title
    assert html.count("<svg") == 1 and "errors per group" in html
    svg = html[html.index("<svg") : html.index("</svg>")]
    assert svg.count("<rect") == 2
    # nothing loaded from the network or from relative files
    assert "http://" not in html.replace("http://www.w3.org/2000/svg", "") and "https://" not in html
    assert "<script" not in html
    w.close()


def test_grid_thumb_size_change_reencodes_at_new_size():
    import io

    from PIL import Image as PILImage

    grid = ImageGrid(thumb_size=16)
    grid.set_images(_images(2, size=64))
    assert PILImage.open(io.BytesIO(grid.image_bytes(0))).size == (16, 16)
    grid.thumb_size = 40
    assert PILImage.open(io.BytesIO(grid.image_bytes(0))).size == (40, 40)
    assert grid.tiles[0].image.layout.width == "40px" and "48px" in grid.grid.layout.grid_template_columns
    grid.columns = 5
    assert grid.grid.layout.grid_template_columns.startswith("repeat(5,")


def test_run_guarded_shows_busy_then_clears():
    w = FailWidget()
    seen = []
    assert w.run_guarded(lambda: seen.append(w.log.status.value) or 7, busy="fitting tree") == 7
    assert "fitting tree" in seen[0] and w.log.status.value == ""
    with pytest.raises(ZeroDivisionError):
        w.run_guarded(lambda: 1 / 0, busy="x")
    assert "ZeroDivisionError" in w.log.status.value and w.log.busy_depth == 0
    w.close()


def test_export_renders_outputs_tabs_and_skips_hidden_widgets():
    png = thumbnail_bytes(np.zeros((4, 4, 3), np.uint8), fmt="png")
    out = W.Output()
    from IPython.display import Image as IPyImage

    out.append_display_data(IPyImage(png))
    out.append_stdout("plain <text>\n")
    tabs = W.Tab(children=[W.HTML("first tab"), W.Label("second & tab")], titles=("one", "two"))
    hidden = W.HTML("secret", layout=W.Layout(display="none"))
    w = FailWidget(
        children=[
            out,
            tabs,
            hidden,
            W.Checkbox(value=True, description="only errors"),
            W.Dropdown(options=[("cats", 0), ("dogs", 1)], value=1, description="class"),
        ]
    )
    html = w.export_html()
    assert "data:image/png;base64," + base64.b64encode(png).decode() in html
    assert "plain &lt;text&gt;" in html
    assert "<summary>one</summary>" in html and "first tab" in html and "second &amp; tab" in html
    assert "secret" not in html
    assert "&#9745; only errors" in html and "class</b> dogs" in html
    w.close()
