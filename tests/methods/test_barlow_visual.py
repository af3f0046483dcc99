"""Barlow feature visualisation: top activating images, heat maps and feature attacks on planted models."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from failwidgets.compute import EmbeddingCache
from failwidgets.methods.barlow import extract_features
from failwidgets.methods.barlow.attack import feature_attack
from failwidgets.methods.barlow.visual import feature_heatmaps, top_activating


class RedNet(nn.Module):
    """Channel 0 = red intensity, channel 1 = green intensity (1x1 conv), global pool, linear head.

    So penultimate feature 0 is the image's mean redness and its heat map is the red pixels.
    """

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 1, bias=False)
        with torch.no_grad():
            self.conv.weight.zero_()
            self.conv.weight[0, 0] = 1.0
            self.conv.weight[1, 1] = 1.0
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = nn.Linear(2, 2)
        self.forwards = 0

    def forward(self, x):
        self.forwards += 1
        return self.fc(self.pool(self.conv(x)))


def _red_square_images():
    x = torch.zeros(3, 3, 16, 16)
    x[0, 0, :4, :4] = 1.0  # top-left red square
    x[1, 0, 8:, 8:] = 0.5  # bottom-right dimmer, larger red square
    x[2, 1] = 1.0  # all green, no red
    return x


def test_top_activating_hand_case():
    feats = np.array([[0.1, 5.0], [0.9, 1.0], [0.5, 3.0], [0.9, 2.0]])
    assert list(top_activating(feats, 0, k=3)) == [1, 3, 2]  # ties: lower index first
    assert list(top_activating(feats, 1, k=2, among=[1, 2, 3])) == [2, 3]
    assert list(top_activating(feats, 1, k=2, among=np.array([False, True, False, True]))) == [3, 1]
    with pytest.raises(ValueError, match="feature: expected an index in \\[0, 2\\)"):
        top_activating(feats, 2)


def test_extract_features_is_pooled_penultimate_and_checks_layer():
    model = RedNet()
    x = _red_square_images()
    f = extract_features(model, x, "pool", progress=False)
    # mean redness: 16/256 = 0.0625; 64*0.5/256 = 0.125; 0
    np.testing.assert_allclose(f[:, 0], [0.0625, 0.125, 0.0], atol=1e-6)
    np.testing.assert_allclose(f[:, 1], [0.0, 0.0, 1.0], atol=1e-6)
    with pytest.raises(ValueError, match="layer: no module named 'pool2'"):
        extract_features(model, x, "pool2", progress=False)


def test_extract_features_cached(tmp_path):
    model = RedNet()
    x = _red_square_images()
    cache = EmbeddingCache(tmp_path)
    a = extract_features(model, x, "pool", cache=cache, progress=False)
    n = model.forwards
    b = extract_features(model, x, "pool", cache=cache, progress=False)
    assert model.forwards == n  # second call served from the cache
    np.testing.assert_array_equal(a, b)


def test_heatmaps_locate_the_planted_channel():
    model = RedNet()
    x = _red_square_images()
    heat = feature_heatmaps(model, x, "conv", 0)
    assert heat.shape == (3, 16, 16) and heat.dtype == np.float32
    assert heat.min() >= 0 and heat.max() <= 1
    assert heat[0, :4, :4].min() == pytest.approx(1.0) and heat[0, 8:, 8:].max() == pytest.approx(0.0)
    assert heat[1, 8:, 8:].min() == pytest.approx(1.0) and heat[1, :4, :4].max() == pytest.approx(0.0)
    assert np.all(heat[2] == 0)  # a constant map normalises to 0, not NaN
    with pytest.raises(ValueError, match="conv_layer: expected a \\(N, C, h, w\\) map"):
        feature_heatmaps(model, x, "pool", 0)
    with pytest.raises(ValueError, match="layer: no module named"):
        feature_heatmaps(model, x, "layer4", 0)


def test_feature_attack_raises_feature_stays_in_range_and_stops_early(tmp_path):
    model = RedNet()
    x = _red_square_images()
    res = feature_attack(model, x, "pool", 0, steps=200, step_size=1.0, patience=5)
    assert res.images.shape == (3, 3, 16, 16)
    assert res.images.min() >= 0 and res.images.max() <= 1
    np.testing.assert_allclose(res.start_activation, [0.0625, 0.125, 0.0], atol=1e-6)
    # gradient of mean redness is uniform on the red channel: ascent saturates red everywhere -> 1.0
    np.testing.assert_allclose(res.final_activation, 1.0, atol=1e-5)
    np.testing.assert_allclose(res.images[:, 0], 1.0, atol=1e-5)
    np.testing.assert_allclose(res.images[:, 1:], x[:, 1:].numpy(), atol=1e-6)  # other channels untouched
    # L2 distance to saturation is at most 16 (256 pixels x 1) -> about 16 steps, then 5 flat ones
    assert np.all(res.steps < 30), res.steps

    cache = EmbeddingCache(tmp_path)
    a = feature_attack(model, x, "pool", 0, patience=5, cache=cache)
    n = model.forwards
    b = feature_attack(model, x, "pool", 0, patience=5, cache=cache)
    assert model.forwards == n
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.steps, b.steps)


def test_feature_attack_step_rule_single_step():
    # one step of size 0.5 from black: gradient of mean redness is uniform over the 256 red pixels,
    # L2-normalised it is 1/16 per pixel, so every red pixel becomes 0.5/16 = 0.03125.
    model = RedNet()
    x = torch.zeros(1, 3, 16, 16)
    res = feature_attack(model, x, "pool", 0, steps=1, step_size=0.5)
    np.testing.assert_allclose(res.images[0, 0], 0.03125, atol=1e-7)
    assert res.steps[0] == 1
    assert res.final_activation[0] == pytest.approx(0.03125)


def test_feature_attack_bad_feature_and_layer():
    model = RedNet()
    x = _red_square_images()
    with pytest.raises(ValueError, match="feature: expected an index in \\[0, 2\\)"):
        feature_attack(model, x, "pool", 5)
    with pytest.raises(ValueError, match="layer: no module named 'nope'"):
        feature_attack(model, x, "nope", 0)
