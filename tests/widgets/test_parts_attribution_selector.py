"""AttributionSelector: choosing a method recomputes (once) and shows the grid's heat maps."""

import numpy as np
import pytest
import torch
from torch import nn

import failwidgets.compute.attribution as attribution
from failwidgets.widgets.parts import AttributionSelector, ImageGrid, LogArea


def _setup(layer=None):
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 2, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2, 2)
    )
    images = torch.rand(3, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    grid = ImageGrid(thumb_size=16)
    grid.set_images(images)
    log = LogArea()
    sel = AttributionSelector(grid, model, images, target=[0, 1, 0], layer=layer, log=log)
    return grid, sel, model, images, log


def test_choosing_a_method_sets_overlays_and_caches(monkeypatch):
    grid, sel, model, images, _ = _setup()
    calls = []
    real = attribution.attribution_maps
    monkeypatch.setattr(attribution, "attribution_maps", lambda *a, **k: calls.append(a[3]) or real(*a, **k))
    plain = grid.image_bytes(0)
    sel.dropdown.value = "saliency"  # the user picks a method
    assert sel.method == "saliency" and calls == ["saliency"]
    expected = real(model, images, [0, 1, 0], "saliency", progress=False)
    assert np.allclose(sel.maps_["saliency"], expected)
    assert grid.image_bytes(0)[:4] == b"\x89PNG" and grid.image_bytes(0) != plain
    sel.method = "integrated_gradients"
    assert grid.signed_overlays and sel.dropdown.value == "integrated_gradients"
    sel.method = "saliency"  # cached: no recomputation
    assert calls == ["saliency", "integrated_gradients"] and not grid.signed_overlays
    sel.method = "none"
    assert grid.image_bytes(0) == plain
    sel.close(), grid.close()


def test_grad_cam_offered_only_with_a_layer_and_errors_reach_the_log():
    grid, sel, *_ = _setup()
    assert "grad_cam" not in [v for _, v in sel.dropdown.options]
    grid2, sel2, _, _, log2 = _setup(layer="nope")
    with pytest.raises(ValueError, match="layer: no module named 'nope'"):
        sel2.method = "grad_cam"
    assert "no module named 'nope'" in log2.text and log2.busy_depth == 0
    for w in (sel, grid, sel2, grid2):
        w.close()
