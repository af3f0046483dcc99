"""captum attribution maps: hand-computed values on linear models, planted locality, errors."""

import numpy as np
import pytest
import torch
from torch import nn

from failwidgets.compute.attribution import attribution_maps

H = W = 8


def _linear_model(seed=0):
    torch.manual_seed(seed)
    lin = nn.Linear(3 * H * W, 3)
    return nn.Sequential(nn.Flatten(), lin), lin.weight.detach().view(3, 3, H, W)


def _images(n, seed=1):
    return torch.rand(n, 3, H, W, generator=torch.Generator().manual_seed(seed))


class _LeftHalf(nn.Module):
    """Multiplies feature maps by a mask that is zero on the right half of the image."""

    def forward(self, x):
        mask = torch.zeros_like(x)
        mask[..., : x.shape[-1] // 2] = 1.0
        return x * mask


class _LeftOnlyCNN(nn.Module):
    """A CNN whose logits depend only on the left half of the image (planted truth)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.crop = _LeftHalf()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.relu = nn.ReLU()
        self.gate = _LeftHalf()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(self.pool(self.gate(self.relu(self.conv(self.crop(x))))).flatten(1))


def test_saliency_of_linear_model_is_abs_weight_max_over_channels():
    model, w = _linear_model()
    x = _images(4)
    target = [0, 2, 1, 2]
    maps = attribution_maps(model, x, target, "saliency", progress=False)
    assert maps.shape == (4, H, W) and maps.dtype == np.float32
    for i, t in enumerate(target):
        assert np.allclose(maps[i], w[t].abs().amax(0).numpy(), atol=1e-6)


def test_integrated_gradients_of_linear_model_is_input_times_weight():
    # for f(x) = w.x + b and a zero baseline, IG_j = x_j * w_j exactly (completeness)
    model, w = _linear_model(seed=3)
    x = _images(3, seed=4)
    maps = attribution_maps(model, x, 1, "integrated_gradients", n_steps=8, progress=False)
    expected = (x * w[1]).sum(1).numpy()
    assert np.allclose(maps, expected, atol=1e-5)
    assert (maps < 0).any() and (maps > 0).any()  # signed


@pytest.mark.parametrize("method,layer", [("saliency", None), ("integrated_gradients", None), ("grad_cam", "gate")])
def test_left_only_model_has_zero_attribution_on_right_half(method, layer):
    model = _LeftOnlyCNN()
    x = _images(5, seed=7)
    maps = attribution_maps(model, x, [0, 1, 0, 1, 0], method, layer=layer, batch_size=40, n_steps=8, progress=False)
    assert maps.shape == (5, H, W)
    # Grad-CAM is upsampled bilinearly, so the column next to the boundary may carry a little signal
    margin = 1 if method == "grad_cam" else 0
    assert np.abs(maps[..., W // 2 + margin :]).max() == 0.0
    assert np.abs(maps[..., : W // 2]).max() > 0.0


def test_grad_cam_is_nonnegative_and_batches_agree():
    model = _LeftOnlyCNN()
    x = _images(5, seed=8)
    one = attribution_maps(model, x, 1, "grad_cam", layer="conv", batch_size=5, progress=False)
    many = attribution_maps(model, x, 1, "grad_cam", layer="conv", batch_size=2, progress=False)
    assert (one >= 0).all() and np.allclose(one, many, atol=1e-6)


def test_uint8_images_and_training_mode_restored():
    model, _ = _linear_model()
    model.train()
    x = (np.random.default_rng(0).random((2, H, W, 3)) * 255).astype(np.uint8)
    maps = attribution_maps(model, x, 0, progress=False)
    assert maps.shape == (2, H, W) and model.training


def test_errors_name_the_argument():
    model = _LeftOnlyCNN()
    x = _images(2)
    with pytest.raises(ValueError, match=r"layer: no module named 'gat'.*'gate'"):
        attribution_maps(model, x, 0, "grad_cam", layer="gat", progress=False)
    with pytest.raises(ValueError, match="layer: expected a module name"):
        attribution_maps(model, x, 0, "grad_cam", progress=False)
    with pytest.raises(ValueError, match="layer: only used by method='grad_cam'"):
        attribution_maps(model, x, 0, "saliency", layer="conv", progress=False)
    with pytest.raises(ValueError, match="Grad-CAM needs a convolutional layer"):
        attribution_maps(model, x, 0, "grad_cam", layer="fc", progress=False)
    with pytest.raises(ValueError, match="method"):
        attribution_maps(model, x, 0, "lime", progress=False)
    with pytest.raises(ValueError, match="target: expected length 2"):
        attribution_maps(model, x, [0, 1, 0], progress=False)
    with pytest.raises(ValueError, match="target"):
        attribution_maps(model, x, -1, progress=False)
    with pytest.raises(ValueError, match="images"):
        attribution_maps(model, x * 3, 0, progress=False)
