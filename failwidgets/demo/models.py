"""Architectures of the demo models trained on the planted-bias world.

All image models take float tensors ``(N, 3, 64, 64)`` in ``[0, 1]`` and normalise inside
(``normalize`` submodule, statistics of the training images stored as buffers).

Module names that the methods hook (stable, part of the public contract):

=====================  ==========================================  ===============================
model                  name                                        output
=====================  ==========================================  ===============================
``TargetCNN``          ``conv1`` .. ``conv4``                      conv maps (N, 16, 32, 32) ..
                                                                   (N, 128, 8, 8), after BN+ReLU
``TargetCNN``          ``pool``                                    pooled features (N, 128)
``RobustNet``          ``layer3``                                  last conv map (N, 64, 8, 8)
``RobustNet``          ``features``                                penultimate features (N, 64)
``DemoVisionLanguage`` ``image_tower.conv4``                       last conv map (N, 128, 8, 8)
=====================  ==========================================  ===============================
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torchvision.models.resnet import BasicBlock

__all__ = [
    "TargetCNN",
    "RobustNet",
    "DemoVisionLanguageEncoder",
    "EmbeddingDecoder",
    "IMAGE_SIZE",
]

IMAGE_SIZE = 64


class _Normalize(nn.Module):
    """Per-channel standardisation with the statistics of the training images (buffers, saved with
    the weights). ``torchvision.transforms.Normalize`` is not an ``nn.Module`` with saved state."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean", torch.full((1, 3, 1, 1), 0.5))
        self.register_buffer("std", torch.full((1, 3, 1, 1), 0.25))

    @torch.no_grad()
    def fit(self, images: torch.Tensor) -> _Normalize:
        """images : Tensor (N, 3, H, W) in [0, 1]."""
        self.mean.copy_(images.mean(dim=(0, 2, 3), keepdim=True))
        self.std.copy_(images.std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-3))
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def _conv_block(c_in: int, c_out: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class _ConvTrunk(nn.Module):
    """``normalize`` -> ``conv1`` .. ``conv3`` (stride 2) -> ``conv4`` (stride 1) -> ``pool``.

    Spatial sizes for 64x64 inputs: 32, 16, 8, 8. ``pool`` is global average pooling + flatten.
    (Striding from the first block keeps training to about a minute on two CPU cores.)
    """

    def __init__(self, widths: Sequence[int] = (16, 32, 64, 128)) -> None:
        super().__init__()
        w1, w2, w3, w4 = widths
        self.normalize = _Normalize()
        self.conv1 = _conv_block(3, w1, 2)
        self.conv2 = _conv_block(w1, w2, 2)
        self.conv3 = _conv_block(w2, w3, 2)
        self.conv4 = _conv_block(w3, w4, 1)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.out_dim = w4

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.normalize(x)
        x = self.conv4(self.conv3(self.conv2(self.conv1(x))))
        return self.pool(x)


class TargetCNN(nn.Module):
    """The model being diagnosed: a 4-block CNN with a class head and an attribute head.

    Parameters
    ----------
    n_classes : int
        Number of classes (the world's shapes).
    n_attributes : int
        Number of binary attributes (logits, one per attribute).
    widths : sequence of 4 ints
        Channels of ``conv1`` .. ``conv4``.

    Notes
    -----
    ``forward(x)`` -> class logits ``(N, n_classes)``; ``attributes(x)`` -> attribute logits
    ``(N, n_attributes)``; ``features(x)`` -> pooled features ``(N, widths[-1])``.
    ``attribute_model()`` returns a module sharing these weights whose forward gives attribute logits
    and whose conv blocks carry the same names (``conv1`` .. ``conv4``).
    """

    def __init__(self, n_classes: int, n_attributes: int, widths: Sequence[int] = (16, 32, 64, 128)) -> None:
        super().__init__()
        self.n_classes = int(n_classes)
        self.n_attributes = int(n_attributes)
        trunk = _ConvTrunk(widths)
        # The trunk's blocks are registered directly on the model so the names are `conv1`, not
        # `trunk.conv1`.
        self.normalize, self.conv1, self.conv2 = trunk.normalize, trunk.conv1, trunk.conv2
        self.conv3, self.conv4, self.pool = trunk.conv3, trunk.conv4, trunk.pool
        self.class_head = nn.Linear(trunk.out_dim, self.n_classes)
        self.attribute_head = nn.Linear(trunk.out_dim, self.n_attributes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """x : Tensor (N, 3, 64, 64) in [0, 1] -> pooled features (N, C4)."""
        x = self.normalize(x)
        return self.pool(self.conv4(self.conv3(self.conv2(self.conv1(x)))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x : Tensor (N, 3, 64, 64) in [0, 1] -> class logits (N, n_classes)."""
        return self.class_head(self.features(x))

    def attributes(self, x: torch.Tensor) -> torch.Tensor:
        """x : Tensor (N, 3, 64, 64) in [0, 1] -> attribute logits (N, n_attributes)."""
        return self.attribute_head(self.features(x))

    def both(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Class and attribute logits from one pass of the trunk."""
        f = self.features(x)
        return self.class_head(f), self.attribute_head(f)

    def attribute_model(self) -> AttributeModel:
        """A view of this model (shared weights) whose forward returns attribute logits."""
        return AttributeModel(self)


class AttributeModel(nn.Module):
    """Shares the modules of a :class:`TargetCNN` under the same names; forward -> attribute logits
    ``(N, n_attributes)``. Changing one model's weights changes the other's."""

    def __init__(self, target: TargetCNN) -> None:
        super().__init__()
        for name in ("normalize", "conv1", "conv2", "conv3", "conv4", "pool", "attribute_head"):
            setattr(self, name, getattr(target, name))
        self.n_attributes = target.n_attributes
        # mirror the target's mode: the view shares its BatchNorm layers, so a view left in train mode
        # would put the target's BatchNorm into train mode whenever a caller restores the view's mode
        self.train(target.training)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.normalize(x)
        return self.attribute_head(self.pool(self.conv4(self.conv3(self.conv2(self.conv1(x))))))


class RobustNet(nn.Module):
    """A small ResNet (torchvision ``BasicBlock``) trained with L2 PGD adversarial training.

    ``stem`` (stride 2: 32x32) -> ``layer1`` (32x32) -> ``layer2`` (16x16) -> ``layer3`` (8x8, the last conv
    map, for heat maps) -> ``features`` (global average pool + flatten: the penultimate features,
    ``(N, widths[-1])``, what Barlow uses) -> ``fc`` (class logits).
    """

    def __init__(self, n_classes: int, widths: Sequence[int] = (16, 32, 64)) -> None:
        super().__init__()
        self.n_classes = int(n_classes)
        w1, w2, w3 = widths
        self.normalize = _Normalize()
        self.stem = nn.Sequential(
            nn.Conv2d(3, w1, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(w1), nn.ReLU(inplace=True)
        )
        self.layer1 = BasicBlock(w1, w1)
        self.layer2 = self._stage(w1, w2, 2)
        self.layer3 = self._stage(w2, w3, 2)
        self.features = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = nn.Linear(w3, self.n_classes)
        self.feature_dim = w3

    @staticmethod
    def _stage(c_in: int, c_out: int, stride: int) -> BasicBlock:
        down = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out))
        return BasicBlock(c_in, c_out, stride=stride, downsample=down)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """x : Tensor (N, 3, 64, 64) in [0, 1] -> penultimate features (N, widths[-1])."""
        x = self.stem(self.normalize(x))
        return self.features(self.layer3(self.layer2(self.layer1(x))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x : Tensor (N, 3, 64, 64) in [0, 1] -> class logits (N, n_classes)."""
        return self.fc(self.embed(x))


class DemoVisionLanguageEncoder(nn.Module):
    """A small vision-language encoder: locked GloVe text side, CNN image side trained into it.

    Text side (no trained parameters, LiT's "locked text"): a caption's embedding is the normalised
    mean of the normalised GloVe 6B 50-d vectors of its words (stop words and unknown words skipped),
    see :class:`failwidgets.demo.text.GloveText`. Image side: a conv trunk (``image_tower``) and a
    linear projection into the 50-d word space, L2-normalised; trained with a CLIP (InfoNCE) loss on
    the world's captions. Because the text side is fixed, captions never seen in training
    (synonyms such as "crimson" or "stripy") land near the words they resemble and can be scored.

    Implements the ``Encoder`` protocol: ``name``, ``embed_dim``, ``identity()``,
    ``encode_images(images, batch_size)``, ``encode_texts(texts)``.
    """

    name = "demo-vl-glove50"

    def __init__(self, embed_dim: int = 50, widths: Sequence[int] = (16, 32, 64, 128), text=None) -> None:
        super().__init__()
        self.embed_dim = int(embed_dim)
        self.image_tower = _ConvTrunk(widths)
        self.projection = nn.Linear(self.image_tower.out_dim, self.embed_dim)
        # CLIP's learned temperature, initialised at 1/0.07 in log space.
        self.logit_scale = nn.Parameter(torch.tensor(float(np.log(1 / 0.07))))
        self._text = text

    # --- text side -------------------------------------------------------------------------
    @property
    def text(self):
        """The locked text side (:class:`~failwidgets.demo.text.GloveText`), loaded on first use."""
        if self._text is None:
            from failwidgets.demo.text import GloveText

            self._text = GloveText.load()
        return self._text

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        """texts : list of N str -> ndarray float32 (N, embed_dim), unit rows."""
        return self.text.encode(texts)

    # --- image side ------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x : Tensor (N, 3, 64, 64) in [0, 1] -> unit-norm image embeddings (N, embed_dim)."""
        return F.normalize(self.projection(self.image_tower(x)), dim=-1)

    @torch.no_grad()
    def encode_images(self, images, *, batch_size: int = 256, progress: bool = True) -> np.ndarray:
        """images : float (N, 3, H, W) in [0, 1] or uint8 (N, H, W, 3) -> ndarray float32 (N, D)."""
        from failwidgets.demo._inference import predict_batches

        return predict_batches(self, images, batch_size=batch_size, progress=progress, desc="VL image embeddings")

    def identity(self) -> dict:
        """What determines this encoder's outputs (for cache keys)."""
        from failwidgets.compute import fingerprint

        return {
            "name": self.name,
            "embed_dim": self.embed_dim,
            "weights": fingerprint(self),
            "text": self.text.identity(),
        }


class EmbeddingDecoder(nn.Module):
    """Maps unit-norm VL image embeddings ``(N, D)`` back to images ``(N, 3, 64, 64)`` in ``[0, 1]``.

    MLP to a 4x4x``width`` grid, then four transposed-conv upsamplings (4 -> 8 -> 16 -> 32 -> 64) and a
    sigmoid. Used by the failure-direction slider to show what a rotated embedding looks like.
    """

    def __init__(self, embed_dim: int = 50, width: int = 64) -> None:
        super().__init__()
        self.embed_dim = int(embed_dim)
        self.width = int(width)
        self.mlp = nn.Sequential(
            nn.Linear(self.embed_dim, 256),
            nn.ReLU(inplace=True),
            nn.Linear(256, self.width * 16),
            nn.ReLU(inplace=True),
        )

        def up(c_in: int, c_out: int) -> nn.Sequential:
            return nn.Sequential(
                nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)
            )

        self.deconv = nn.Sequential(
            up(self.width, 48), up(48, 32), up(32, 16), up(16, 8), nn.Conv2d(8, 3, 3, padding=1), nn.Sigmoid()
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """z : Tensor (N, D) -> images (N, 3, 64, 64) in [0, 1]."""
        z = F.normalize(z, dim=-1)
        return self.deconv(self.mlp(z).view(-1, self.width, 4, 4))

    @torch.no_grad()
    def decode(self, embeddings, batch_size: int = 256) -> np.ndarray:
        """embeddings : ndarray (N, D) -> ndarray float32 (N, 3, 64, 64) in [0, 1]."""
        from failwidgets._validation import check_array
        from failwidgets.compute import eval_on
        from failwidgets.demo._inference import model_device

        z = check_array(embeddings, "embeddings", ndim=2, shape=(None, self.embed_dim), dtype="float")
        with eval_on(self, model_device(self)) as dev:
            z = torch.from_numpy(np.ascontiguousarray(z, dtype=np.float32)).to(dev)
            out = [self(z[i : i + batch_size]).cpu() for i in range(0, len(z), batch_size)]
        return torch.cat(out).numpy() if out else np.zeros((0, 3, IMAGE_SIZE, IMAGE_SIZE), np.float32)
