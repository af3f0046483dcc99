"""A folder of PNG files (an image source) works where the methods take images."""

import os

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from failwidgets.compute import EmbeddingCache
from failwidgets.data import as_source
from failwidgets.methods import RelationMiner


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("pngs")
    imgs = np.random.default_rng(0).integers(0, 256, (24, 8, 8, 3), dtype=np.uint8)
    paths = []
    for i, im in enumerate(imgs):
        p = os.path.join(root, f"{i:03d}.png")
        Image.fromarray(im).save(p)
        paths.append(p)
    return imgs, as_source(paths)


def _model():
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(4, 4, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(2),
        nn.Flatten(),
        nn.Linear(16, 5),
    ).eval()


def test_relation_miner_fit_model_on_a_source_equals_the_array(folder):
    imgs, src = folder
    attrs = (np.random.default_rng(1).random((24, 5)) < 0.5).astype(np.float32)
    a = RelationMiner(progress=False, mask_images=12).fit_model(_model(), imgs, "0", attrs)
    b = RelationMiner(progress=False, mask_images=12).fit_model(_model(), src, "0", attrs)
    np.testing.assert_array_equal(a.masks_, b.masks_)
    np.testing.assert_allclose(a.relations_, b.relations_, atol=1e-6, equal_nan=True)


def test_lavise_features_stream_a_source_and_key_it_by_its_identity(folder, tmp_path):
    from failwidgets.methods.lavise import compute_features

    imgs, src = folder
    f_src = compute_features(_model(), src, "2", cache=EmbeddingCache(tmp_path), progress=False)
    f_arr = compute_features(_model(), imgs, "2", progress=False)
    torch.testing.assert_close(f_src, f_arr)
    (entry,) = EmbeddingCache(tmp_path).entries()
    from failwidgets.compute import as_image_tensor, fingerprint

    assert entry.parts["data"] == fingerprint(src) != fingerprint(as_image_tensor(src))  # no pixels hashed
