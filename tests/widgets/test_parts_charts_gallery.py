"""bqplot charts (selection mirrored through traits), SVG export of charts, and the ipyplot gallery."""

import base64
import re

import numpy as np
import pytest
import torch

from failwidgets.widgets.parts import BarChart, Gallery, GroupHistogram, MatrixHeatmap, figure_to_svg, gallery_html
from failwidgets.widgets.parts.thumbnails import thumbnail_bytes


def test_bar_chart_selection_both_ways():
    chart = BarChart(["cat", "dog", "fox"], [3, 1, 2], title="errors")
    chart.bars.selected = [2]  # what a click in the browser writes
    assert chart.selected_index == 2 and chart.selected_label == "fox"
    chart.selected_index = 0  # from Python
    assert list(chart.bars.selected) == [0]
    chart.bars.selected = None
    assert chart.selected_index is None
    with pytest.raises(ValueError, match="selected_index"):
        chart.selected_index = 7
    chart.selected_index = 1
    chart.set_data(["a", "b"], [1.0, 2.0])  # new data clears the selection
    assert chart.selected_index is None and chart.bars.selected is None
    with pytest.raises(ValueError, match="labels"):
        chart.set_data(["a"], [1.0, 2.0])
    chart.close()


def test_bar_chart_reference_markers():
    chart = BarChart(["cat", "dog", "fox"], [0.7, 0.9, 0.5])
    assert not chart.reference.visible and np.isnan(chart.reference_values).all()
    chart.set_reference([0.6, np.nan, 0.55], label="chance")
    assert chart.reference.visible and list(chart.reference.x) == ["cat", "fox"]
    np.testing.assert_allclose(chart.reference_values, [0.6, np.nan, 0.55])
    assert figure_to_svg(chart.figure).count("<circle") == 2  # the static export draws the two markers
    with pytest.raises(ValueError, match="one per bar"):
        chart.set_reference([0.5, 0.5])
    chart.set_reference([np.nan] * 3)
    assert not chart.reference.visible
    chart.set_reference([0.6, 0.6, 0.6])
    chart.set_data(["a", "b"], [1.0, 2.0])  # new bars drop the old markers
    assert not chart.reference.visible and np.isnan(chart.reference_values).all()
    chart.close()


def test_group_histogram_counts_match_hand_counts_and_bin_members():
    values = np.array([0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0])
    groups = np.array([0, 0, 0, 1, 1, 1, 1])
    h = GroupHistogram(bins=4)
    h.set_data(values, groups, ["correct", "error"])
    assert np.allclose(h.edges_, [0, 1, 2, 3, 4])
    # bins [0,1) [1,2) [2,3) [3,4]: correct = 0, 0.5 | 1.0 ; error = 1.5 | 2.0 | 3.0, 4.0
    assert np.array_equal(h.counts_, [[2, 1, 0, 0], [0, 1, 1, 2]])
    assert h.bars.labels == ["correct", "error"]
    h.bars.selected = [3]
    assert h.selected_bin == 3 and list(h.bin_members()) == [5, 6]  # last bin closed on the right
    assert list(h.bin_members(1)) == [2, 3]
    h.vline = 2.5
    assert h.line.visible and list(h.line.x) == [2.5, 2.5] and h.line.y[1] == 2.0  # tallest stack: 2
    h.vline = None
    assert not h.line.visible
    h.set_curve([0, 4], [0, 1])
    assert h.curve.visible and list(h.curve.y) == [0, 1]
    with pytest.raises(ValueError, match="groups"):
        h.set_data(values, groups[:3])
    h.close()


def test_group_histogram_density_integrates_to_one():
    rng = np.random.default_rng(0)
    h = GroupHistogram(bins=10, density=True)
    h.set_data(rng.normal(size=200), (rng.random(200) < 0.1).astype(int))
    widths = np.diff(h.edges_)
    assert np.allclose((h.counts_ * widths).sum(axis=1), 1.0)


def test_matrix_heatmap_selection_and_diverging_scale():
    m = np.array([[0.0, -0.5, 0.2], [0.4, np.nan, -0.1]])
    hm = MatrixHeatmap(title="relations")
    hm.set_matrix(m, ["young", "smiling"], ["a", "b", "c"])
    assert (hm.color_scale.min, hm.color_scale.max, hm.color_scale.mid) == (-0.5, 0.5, 0.0)
    hm.grid.selected = np.array([[1, 0]])  # a click on row 1, column 0
    assert hm.selected_cell == (1, 0) and hm.selected_value == pytest.approx(0.4)
    hm.selected_cell = (0, 2)
    assert np.array_equal(hm.grid.selected, [[0, 2]])
    hm.grid.set_state({"selected": [[1, 2]]})  # the message a click sends (plain JSON, bqplot issue #1632)
    assert hm.selected_cell == (1, 2)
    with pytest.raises(ValueError, match="selected_cell"):
        hm.selected_cell = (5, 5)
    with pytest.raises(ValueError, match="row_labels"):
        hm.set_matrix(m, ["x"], ["a", "b", "c"])
    hm.set_matrix(np.ones((4, 5)), list("ABCD"), list("vwxyz"))  # another shape
    assert hm.grid.color.shape == (4, 5) and list(hm.grid.row) == list("ABCD") and hm.selected_cell is None
    hm.close()


def test_chart_svg_bars_heights_are_proportional():
    chart = BarChart(["a", "b", "c"], [1.0, 2.0, 4.0], title="T")
    svg = figure_to_svg(chart.figure)
    heights = [float(h) for h in re.findall(r'<rect [^>]*height="([0-9.]+)"', svg)]
    assert len(heights) == 3
    assert heights[1] / heights[0] == pytest.approx(2.0, rel=0.02)
    assert heights[2] / heights[0] == pytest.approx(4.0, rel=0.02)
    assert ">T</text>" in svg and ">b</text>" in svg


def test_heatmap_svg_colours_sign():
    hm = MatrixHeatmap()
    hm.set_matrix(np.array([[1.0, -1.0], [0.0, 0.0]]))
    svg = figure_to_svg(hm.figure)
    fills = re.findall(r'fill="(#[0-9a-f]{6})"', svg)
    assert fills[:3] == ["#b2182b", "#2166ac", "#f7f7f7"]  # +max red, -max blue, 0 white


def test_gallery_embeds_images_and_escapes_labels():
    imgs = torch.rand(3, 3, 12, 12, generator=torch.Generator().manual_seed(0))
    g = Gallery(imgs, labels=["<b>cat</b>", "dog", "fox"], img_width=40)
    for i in range(3):
        b64 = base64.b64encode(thumbnail_bytes(imgs[i], max_side=40)).decode()
        assert f"data:image/jpeg;base64,{b64}" in g.value
    assert "&lt;b&gt;cat&lt;/b&gt;" in g.value and "<b>cat</b>" not in g.value
    assert "ipyplot" in g.value  # ipyplot's grid markup, not a re-implementation
    html = gallery_html(imgs, max_images=2)
    assert html.count("data:image/jpeg") == 2
    with pytest.raises(ValueError, match="labels"):
        gallery_html(imgs, labels=["a"])
