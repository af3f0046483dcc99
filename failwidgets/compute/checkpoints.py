"""Load MadryLab ``robustness`` ResNet-50 checkpoints into a torchvision ResNet-50.

Barlow (Singla et al. 2021) takes its features from the robust ResNet-50 checkpoints of the MadryLab
``robustness`` library (e.g. ImageNet, L2 eps 3). Those files hold ``{"model": state_dict, "epoch": ...,
"optimizer": ..., "schedule": ...}`` (some exports use ``"state_dict"``), with keys such as

- ``module.normalizer.new_mean`` / ``module.normalizer.new_std`` — (3, 1, 1) input normalisation;
- ``module.model.conv1.weight`` ... — the network (torchvision ResNet-50 names after the prefix);
- ``module.attacker.model.*`` / ``module.attacker.normalize.*`` — a second copy used by the attacker.

The loader keeps one copy of the weights, strips the prefixes and wraps the network in
:class:`~failwidgets.compute.images.Normalized` with the checkpoint's mean and std, so the returned model
takes images in [0, 1] like every model in failwidgets (its layers are then named ``model.layer4``,
``model.avgpool``, ...). Files are read with ``torch.load(weights_only=True)``: no code runs on load.
"""

from __future__ import annotations

import os
from typing import Any, Mapping

import torch
import torchvision
from torch import nn

from failwidgets.compute.encoders import IMAGENET_MEAN, IMAGENET_STD
from failwidgets.compute.images import Normalized

__all__ = ["robustness_state_dict", "load_robustness_resnet50"]

_NORMALIZER_PREFIXES = ("normalizer.", "normalize.")


def _strip(key: str, prefix: str) -> str:
    return key[len(prefix) :] if key.startswith(prefix) else key


def robustness_state_dict(
    checkpoint: Mapping[str, Any],
) -> tuple[dict[str, torch.Tensor], list[float] | None, list[float] | None]:
    """Split a ``robustness`` checkpoint into a torchvision state dict and its normalisation.

    Parameters
    ----------
    checkpoint : the loaded file: a dict with ``"model"`` or ``"state_dict"``, or the state dict itself.

    Returns
    -------
    state_dict : dict of tensors with torchvision ResNet names (``conv1.weight``, ``fc.bias``, ...).
    mean, std : lists of 3 floats from the ``normalizer`` buffers, or None when the file has none.
    """
    if not isinstance(checkpoint, Mapping):
        raise TypeError(
            f"checkpoint: expected a dict (a loaded robustness checkpoint), got {type(checkpoint).__name__}"
        )
    sd = checkpoint
    for k in ("model", "state_dict"):
        if k in checkpoint and isinstance(checkpoint[k], Mapping):
            sd = checkpoint[k]
            break
    out: dict[str, torch.Tensor] = {}
    mean = std = None
    for key, value in sd.items():
        if not isinstance(value, torch.Tensor):
            continue
        k = _strip(key, "module.")
        if k.startswith("attacker."):  # the attacker's copy of the same weights
            continue
        if k.startswith(_NORMALIZER_PREFIXES):
            name = k.split(".", 1)[1]
            if name == "new_mean":
                mean = [float(v) for v in value.flatten()]
            elif name == "new_std":
                std = [float(v) for v in value.flatten()]
            continue
        k = _strip(k, "model.")
        out[k] = value
    if not out:
        raise ValueError("checkpoint: no network weights found (expected keys like 'module.model.conv1.weight')")
    return out, mean, std


def load_robustness_resnet50(
    checkpoint: str | os.PathLike | Mapping[str, Any],
    *,
    normalize: bool = True,
    map_location: str | torch.device = "cpu",
) -> nn.Module:
    """A torchvision ResNet-50 with the weights of a MadryLab ``robustness`` checkpoint, in eval mode.

    Parameters
    ----------
    checkpoint : path of the ``.pt``/``.ckpt`` file, or an already loaded checkpoint dict.
    normalize : wrap in ``Normalized(resnet, mean, std)`` (the checkpoint's normaliser, else ImageNet's)
        so the model takes images in [0, 1]; penultimate features are then at ``"model.avgpool"`` and the
        last conv map at ``"model.layer4"``. With ``False`` the bare ResNet is returned (expects
        normalised inputs).
    map_location : where tensors are loaded.
    """
    if isinstance(checkpoint, (str, os.PathLike)):
        try:
            loaded = torch.load(checkpoint, map_location=map_location, weights_only=True)
        except FileNotFoundError:
            raise FileNotFoundError(f"checkpoint: no file at {os.fspath(checkpoint)!r}") from None
        except Exception as exc:  # noqa: BLE001 - re-raised with what was expected
            raise ValueError(
                f"checkpoint: could not read {os.fspath(checkpoint)!r} as a tensor-only torch file "
                f"({exc.__class__.__name__}: {str(exc)[:200]})"
            ) from exc
    else:
        loaded = checkpoint
    sd, mean, std = robustness_state_dict(loaded)
    if "fc.weight" not in sd:
        raise ValueError("checkpoint: no 'fc.weight' after removing prefixes; not a ResNet-50 checkpoint")
    # Built on the meta device: the checkpoint supplies every tensor, so random initialisation of 25M
    # parameters (seconds on a CPU) would be wasted; assign=True adopts the loaded tensors.
    with torch.device("meta"):
        net = torchvision.models.resnet50(weights=None, num_classes=int(sd["fc.weight"].shape[0]))
    missing, unexpected = net.load_state_dict(sd, strict=False, assign=True)
    if missing or unexpected:
        raise ValueError(
            "checkpoint: does not match torchvision's ResNet-50 "
            f"(missing {missing[:5]}{' ...' if len(missing) > 5 else ''}, "
            f"unexpected {unexpected[:5]}{' ...' if len(unexpected) > 5 else ''})"
        )
    net.eval()
    if not normalize:
        return net
    model = Normalized(net, mean or list(IMAGENET_MEAN), std or list(IMAGENET_STD))
    return model.eval()
