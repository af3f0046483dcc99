"""MadryLab robustness checkpoints -> torchvision ResNet-50, with a file written by the test."""

from __future__ import annotations

import pytest
import torch
import torchvision

from failwidgets.compute.checkpoints import load_robustness_resnet50, robustness_state_dict

MEAN = [0.4, 0.5, 0.6]
STD = [0.2, 0.25, 0.3]


def _robustness_format(net: torch.nn.Module) -> dict:
    """The layout of a ``robustness`` ImageNet checkpoint (model + attacker copies, normaliser buffers)."""
    mean = torch.tensor(MEAN).view(3, 1, 1)
    std = torch.tensor(STD).view(3, 1, 1)
    sd = {
        "module.normalizer.new_mean": mean,
        "module.normalizer.new_std": std,
        "module.attacker.normalize.new_mean": mean,
        "module.attacker.normalize.new_std": std,
    }
    for k, v in net.state_dict().items():
        sd[f"module.model.{k}"] = v
        sd[f"module.attacker.model.{k}"] = v  # same tensors: torch.save stores them once
    return {"model": sd, "epoch": 90, "schedule": None}


def _random_resnet50() -> torch.nn.Module:
    """A torchvision ResNet-50 with random weights, built without its slow default initialisation."""
    g = torch.Generator().manual_seed(0)
    with torch.device("meta"):
        net = torchvision.models.resnet50(weights=None, num_classes=10)
    sd = {}
    for k, v in net.state_dict().items():
        if v.dtype == torch.long:  # num_batches_tracked
            sd[k] = torch.zeros(v.shape, dtype=torch.long)
        elif v.ndim > 1:
            sd[k] = torch.randn(v.shape, generator=g) / v[0].numel() ** 0.5
        elif k.endswith("running_var"):
            sd[k] = torch.rand(v.shape, generator=g) + 0.5
        else:
            sd[k] = torch.randn(v.shape, generator=g) * 0.1
    net.load_state_dict(sd, assign=True)
    return net.eval()


def test_state_dict_prefixes_and_normaliser_hand_case():
    ckpt = {
        "state_dict": {
            "module.normalizer.new_mean": torch.tensor(MEAN).view(3, 1, 1),
            "module.normalizer.new_std": torch.tensor(STD).view(3, 1, 1),
            "module.model.fc.weight": torch.ones(2, 2),
            "module.attacker.model.fc.weight": torch.zeros(2, 2),  # must not win over the model copy
            "module.attacker.normalize.new_mean": torch.zeros(3, 1, 1),
        },
        "epoch": 3,
    }
    sd, mean, std = robustness_state_dict(ckpt)
    assert list(sd) == ["fc.weight"] and torch.equal(sd["fc.weight"], torch.ones(2, 2))
    assert mean == pytest.approx(MEAN) and std == pytest.approx(STD)
    # a bare torchvision state dict passes through without normaliser
    sd2, m2, s2 = robustness_state_dict({"conv1.weight": torch.ones(1)})
    assert list(sd2) == ["conv1.weight"] and m2 is None and s2 is None
    with pytest.raises(ValueError, match="checkpoint: no network weights"):
        robustness_state_dict({"model": {"module.normalizer.new_mean": torch.zeros(3)}})


def test_load_checkpoint_file_matches_normalised_torchvision_resnet50(tmp_path):
    net = _random_resnet50()
    path = tmp_path / "imagenet_l2_3_0.pt"
    torch.save(_robustness_format(net), path)
    model = load_robustness_resnet50(path)
    x = torch.rand(1, 3, 32, 32)
    mean = torch.tensor(MEAN).view(1, 3, 1, 1)
    std = torch.tensor(STD).view(1, 3, 1, 1)
    with torch.no_grad():
        expected = net((x - mean) / std)
        got = model(x)
    torch.testing.assert_close(got, expected)
    names = dict(model.named_modules())
    assert "model.avgpool" in names and "model.layer4" in names and not model.training
    bare = load_robustness_resnet50(path, normalize=False)
    with torch.no_grad():
        torch.testing.assert_close(bare((x - mean) / std), expected)


def test_load_checkpoint_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="checkpoint: no file"):
        load_robustness_resnet50(tmp_path / "missing.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match="checkpoint: could not read"):
        load_robustness_resnet50(bad)
    with pytest.raises(ValueError, match="does not match torchvision's ResNet-50"):
        load_robustness_resnet50(
            {"model": {"module.model.fc.weight": torch.zeros(10, 2048), "module.model.fc.bias": torch.zeros(10)}}
        )
