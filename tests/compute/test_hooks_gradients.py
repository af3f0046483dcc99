"""Hooks, activations and per-image multi-output gradients of the compute layer."""

import numpy as np
import pytest
import torch
from torch import nn

from failwidgets.compute import (
    as_image_tensor,
    capture,
    get_device,
    get_module,
    layer_activations,
    output_gradients,
)


class TinyNet(nn.Module):
    def __init__(self, n_out=5):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(4)
        self.relu = nn.ReLU(inplace=True)  # in-place on purpose: capture must not record post-ReLU values
        self.conv2 = nn.Conv2d(4, 6, 3, padding=1, stride=2)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(6, n_out)

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        x = torch.tanh(self.conv2(x))
        return self.head(self.pool(x).flatten(1))


@pytest.fixture
def net():
    torch.manual_seed(0)
    m = TinyNet()
    m.eval()
    # non-trivial BN statistics so eval-mode BN is not the identity
    m.bn1.running_mean.uniform_(-0.5, 0.5)
    m.bn1.running_var.uniform_(0.5, 2.0)
    return m


def _images(n=7, h=10, w=12, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, h, w, generator=g)


def test_get_module_exact_name_and_error_lists_close_names(net):
    assert get_module(net, "conv1") is net.conv1
    with pytest.raises(ValueError, match="conv1"):
        get_module(net, "conv_1")
    with pytest.raises(ValueError, match="no module named"):
        get_module(net, "")


def test_hooks_removed_even_when_forward_raises(net):
    class Boom(Exception):
        pass

    def explode(*_):
        raise Boom()

    h = net.conv2.register_forward_hook(explode)
    try:
        with pytest.raises(Boom):
            with capture(net, ["conv1", "bn1"]):
                net(_images())
    finally:
        h.remove()
    assert len(net.conv1._forward_hooks) == 0
    assert len(net.bn1._forward_hooks) == 0


def test_capture_records_pre_inplace_values(net):
    x = _images()
    with torch.no_grad(), capture(net, "bn1", keep_graph=True) as store:
        net(x)
    expected = net.bn1(net.conv1(x))
    assert (store["bn1"] < 0).any(), "bn1 output must keep its negative values (ReLU is in-place)"
    torch.testing.assert_close(store["bn1"].detach(), expected.detach())


def test_layer_activations_shapes_reduce_and_restore_mode(net):
    net.train()
    x = _images(9)
    acts = layer_activations(net, x, "conv2", batch_size=4, progress=False)
    assert acts.shape == (9, 6, 5, 6)
    pooled = layer_activations(net, x, "conv2", batch_size=4, reduce="mean", progress=False)
    torch.testing.assert_close(pooled, acts.flatten(2).mean(-1))
    assert net.training, "the caller's train/eval mode is restored"


def test_per_image_gradients_match_single_backward_passes(net):
    x = _images(6)
    acts, grads = output_gradients(net, x, "conv1", batch_size=4, progress=False)
    assert acts.shape == (6, 4, 10, 12)
    assert grads.shape == (6, 5, 4, 10, 12)
    for i in range(6):
        for k in range(5):
            xi = x[i : i + 1].clone()
            with capture(net, "conv1", keep_graph=True) as store:
                y = net(xi)
            (g,) = torch.autograd.grad(y[0, k], store["conv1"])
            np.testing.assert_allclose(grads[i, k].numpy(), g[0].numpy(), atol=1e-5, rtol=1e-5)


def test_output_gradients_with_output_selector_and_bad_outputs(net):
    x = _images(3)
    _, g = output_gradients(net, x, "conv2", outputs=lambda y: y[:, :2], progress=False)
    assert g.shape == (3, 2, 6, 5, 6)
    with pytest.raises(ValueError, match="outputs"):
        output_gradients(net, x, "conv2", outputs=lambda y: y.sum(1), progress=False)
    with pytest.raises(ValueError, match="layer"):
        output_gradients(net, x, "nope", progress=False)


def test_as_image_tensor_conventions_and_errors():
    u8 = np.random.default_rng(0).integers(0, 256, size=(2, 8, 9, 3), dtype=np.uint8)
    t = as_image_tensor(u8)
    assert t.shape == (2, 3, 8, 9) and t.dtype == torch.float32
    np.testing.assert_allclose(t[1, 2, 3, 4].item(), u8[1, 3, 4, 2] / 255.0, rtol=1e-6)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        as_image_tensor(torch.full((1, 3, 4, 4), 2.0))
    with pytest.raises(ValueError, match="NaN"):
        as_image_tensor(torch.full((1, 3, 4, 4), float("nan")))
    with pytest.raises(ValueError, match="shape"):
        as_image_tensor(torch.zeros(3, 4))


def test_device_choice(monkeypatch):
    assert get_device("cpu").type == "cpu"
    monkeypatch.setenv("FAILWIDGETS_DEVICE", "cpu")
    assert get_device().type == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA"):
            get_device("cuda")
    with pytest.raises(ValueError, match="device"):
        get_device("tpu9")


def test_output_gradients_with_frozen_parameters(net):
    for p in net.parameters():
        p.requires_grad_(False)
    x = _images(3)
    _, frozen = output_gradients(net, x, "conv2", progress=False)
    for p in net.parameters():
        p.requires_grad_(True)
    _, live = output_gradients(net, x, "conv2", progress=False)
    torch.testing.assert_close(frozen, live)


def test_eval_on_restores_mode_and_device_even_when_the_block_raises(net):
    from failwidgets.compute import eval_on

    net.train()
    with pytest.raises(RuntimeError, match="boom"):
        with eval_on(net, "cpu") as dev:
            assert dev.type == "cpu" and not net.training
            raise RuntimeError("boom")
    assert net.training
