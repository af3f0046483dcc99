"""Encoders: open_clip with random weights (offline), local checkpoints, torchvision features, caching."""

import numpy as np
import pytest
import torch
import torchvision

from failwidgets.compute import Encoder, OpenClipEncoder, TorchvisionFeatureEncoder, encode_with_cache

ARCH = "ViT-S-32"  # small open_clip architecture; random weights, no download


@pytest.fixture(scope="module")
def clip_encoder():
    torch.manual_seed(0)
    return OpenClipEncoder(ARCH, pretrained=None, device="cpu")


def test_open_clip_random_weights_encode_images_and_texts(clip_encoder):
    assert isinstance(clip_encoder, Encoder)
    imgs = torch.rand(3, 3, 40, 50)
    z = clip_encoder.encode_images(imgs, batch_size=2, progress=False)
    assert z.shape == (3, clip_encoder.embed_dim) and z.dtype == np.float32
    t = clip_encoder.encode_texts(["a photo of a red circle", "a photo of a dog"])
    assert t.shape == (2, clip_encoder.embed_dim)
    assert not np.allclose(t[0], t[1]), "different captions give different embeddings"
    with pytest.raises(TypeError, match="texts"):
        clip_encoder.encode_texts("a single string")


def test_open_clip_local_checkpoint_path_gives_same_embeddings(clip_encoder, tmp_path):
    path = tmp_path / "ckpt.pt"
    torch.save({"state_dict": clip_encoder.model.state_dict()}, path)
    other = OpenClipEncoder(ARCH, pretrained=str(path), device="cpu")
    imgs = torch.rand(2, 3, 32, 32)
    np.testing.assert_allclose(
        other.encode_images(imgs, progress=False), clip_encoder.encode_images(imgs, progress=False), atol=1e-5
    )
    assert other.identity()["weights"] == clip_encoder.identity()["weights"]


def test_open_clip_unknown_architecture():
    with pytest.raises(ValueError, match="model_name"):
        OpenClipEncoder("ViT-Nope-99")


def test_torchvision_penultimate_features_equal_pooled_layer4():
    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None, num_classes=7).eval()
    enc = TorchvisionFeatureEncoder(model, device="cpu")
    assert enc.embed_dim == 512
    x = torch.rand(2, 3, 48, 48)
    z = enc.encode_images(x, progress=False)
    # the input of the fc head equals the globally pooled layer4 map of the normalised image
    enc4 = TorchvisionFeatureEncoder(model, layer="layer4", reduce="mean", device="cpu")
    np.testing.assert_allclose(z, enc4.encode_images(x, progress=False), atol=1e-5)
    with pytest.raises(NotImplementedError):
        enc.encode_texts(["x"])
    with pytest.raises(ValueError, match="layer"):
        TorchvisionFeatureEncoder(model, layer="layer9")


def test_encode_with_cache_second_request_computes_nothing(tmp_path):
    from failwidgets.compute import EmbeddingCache

    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None, num_classes=3).eval()
    enc = TorchvisionFeatureEncoder(model, device="cpu")
    calls = {"n": 0}
    original = enc.encode_images

    def counting(*a, **k):
        calls["n"] += 1
        return original(*a, **k)

    enc.encode_images = counting
    cache = EmbeddingCache(tmp_path)
    x = torch.rand(4, 3, 32, 32)
    a = encode_with_cache(enc, x, cache=cache, data_id="toy:v1", progress=False)
    b = encode_with_cache(enc, x, cache=cache, data_id="toy:v1", progress=False)
    assert calls["n"] == 1
    np.testing.assert_array_equal(a, b)
    encode_with_cache(enc, x, cache=cache, data_id="toy:v2", progress=False)
    assert calls["n"] == 2, "another dataset identity is another entry"
