"""Architectures, the L2 attack, the GloVe text side and training determinism (no shipped weights)."""

import numpy as np
import pytest
import torch
from torch import nn

from failwidgets.compute import capture, get_module
from failwidgets.demo.attacks import l2_pgd
from failwidgets.demo.models import DemoVisionLanguageEncoder, EmbeddingDecoder, RobustNet, TargetCNN
from failwidgets.demo.text import GloveText, caption_words


@pytest.fixture(scope="module")
def images():
    return torch.rand(4, 3, 64, 64, generator=torch.Generator().manual_seed(0))


def test_target_heads_and_named_conv_maps(images):
    model = TargetCNN(6, 20).eval()
    assert model(images).shape == (4, 6)
    assert model.attributes(images).shape == (4, 20)
    with capture(model, ["conv1", "conv2", "conv3", "conv4"]) as acts:
        model(images)
    assert [tuple(acts[f"conv{i}"].shape[1:]) for i in range(1, 5)] == [
        (16, 32, 32),
        (32, 16, 16),
        (64, 8, 8),
        (128, 8, 8),
    ]


def test_attribute_model_shares_weights_and_names(images):
    model = TargetCNN(6, 20).eval()
    view = model.attribute_model().eval()
    for name in ("conv1", "conv2", "conv3", "conv4"):
        assert get_module(view, name) is get_module(model, name)
    torch.testing.assert_close(view(images), model.attributes(images))
    before = view(images).clone()
    with torch.no_grad():
        model.attribute_head.bias += 1.0  # a change in the target shows in the view
    torch.testing.assert_close(view(images), before + 1.0)


def test_robust_net_named_feature_and_map(images):
    model = RobustNet(6).eval()
    with capture(model, ["layer3", "features"]) as acts:
        logits = model(images)
    assert logits.shape == (4, 6)
    assert tuple(acts["layer3"].shape) == (4, 64, 8, 8)
    # `features` is the global average of the last conv map
    torch.testing.assert_close(acts["features"], acts["layer3"].mean(dim=(2, 3)))
    torch.testing.assert_close(model.embed(images), acts["features"])


class _Linear2(nn.Module):
    """logits = [0, w . (x - 0.5)]: the margin of class 1 over class 0 is w . (x - 0.5)."""

    def __init__(self, w):
        super().__init__()
        self.w = w

    def forward(self, x):
        m = (x - 0.5).flatten(1) @ self.w.flatten()
        return torch.stack([torch.zeros_like(m), m], dim=1)


def test_l2_pgd_reaches_the_analytic_worst_case_of_a_linear_model():
    g = torch.Generator().manual_seed(1)
    w = torch.randn(3, 8, 8, generator=g)
    x = torch.full((2, 3, 8, 8), 0.5)  # centre of the box: clamping to [0, 1] never binds below
    x[1] += 0.01 * w / w.norm()
    y = torch.tensor([1, 1])
    eps = 0.3
    adv = l2_pgd(_Linear2(w), x, y, eps=eps, steps=3)
    delta = (adv - x).flatten(1)
    assert torch.all(delta.norm(dim=1) <= eps + 1e-5)
    # worst case for a linear margin within an L2 ball: move by eps along -w, margin drops by eps*||w||
    margin_before = (x - 0.5).flatten(1) @ w.flatten()
    margin_after = (adv - 0.5).flatten(1) @ w.flatten()
    torch.testing.assert_close(
        margin_before - margin_after, torch.full((2,), eps * float(w.norm())), rtol=1e-4, atol=1e-4
    )


def test_l2_pgd_stays_in_the_image_box():
    model = TargetCNN(3, 2).eval()
    x = torch.rand(3, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    adv = l2_pgd(
        model,
        x,
        torch.tensor([0, 1, 2]),
        eps=5.0,
        steps=2,
        random_start=True,
        generator=torch.Generator().manual_seed(0),
    )
    assert adv.min() >= 0 and adv.max() <= 1
    assert torch.all((adv - x).flatten(1).norm(dim=1) <= 5.0 + 1e-4)
    with pytest.raises(ValueError, match="eps"):
        l2_pgd(model, x, torch.tensor([0, 1, 2]), eps=-1.0)


def test_caption_embedding_is_the_normalised_mean_of_word_vectors():
    from failwidgets.compute.words import WordSpace

    vecs = np.array([[3.0, 0, 0], [0, 2.0, 0], [0, 0, 5.0]], dtype=np.float32)
    text = GloveText(WordSpace(["red", "circle", "sand"], vecs, name="toy"))
    assert caption_words("A red circle on the Sand, on the left") == ["red", "circle", "sand", "left"]
    out = text.encode(["a red circle", "zzz circle", "the of"])
    # hand computed: unit vectors e1, e2 -> mean (0.5, 0.5, 0) -> normalised (1/sqrt2, 1/sqrt2, 0)
    np.testing.assert_allclose(out[0], [2**-0.5, 2**-0.5, 0], atol=1e-6)
    np.testing.assert_allclose(out[1], [0, 1, 0], atol=1e-6)  # unknown word skipped
    np.testing.assert_allclose(out[2], [0, 0, 0])  # nothing known: zero vector
    with pytest.raises(TypeError, match="texts"):
        text.encode("a red circle")


def test_glove_text_side_knows_synonyms():
    text = GloveText.load()
    e = text.encode(["red", "crimson", "striped", "stripy", "water", "ocean"])
    cos = e @ e.T
    assert text.dim == 50
    assert cos[0, 1] > cos[0, 3] and cos[0, 1] > cos[0, 5]  # crimson is closer to red than the others
    assert cos[4, 5] > cos[4, 1]


def test_vl_encoder_protocol_and_decoder_shapes(images):
    from failwidgets.compute import Encoder

    vl = DemoVisionLanguageEncoder().eval()
    assert isinstance(vl, Encoder)
    z = vl.encode_images(images, progress=False)
    assert z.shape == (4, 50) and z.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(z, axis=1), 1, atol=1e-5)
    uint8 = (images.permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)
    assert vl.encode_images(uint8, progress=False).shape == (4, 50)
    assert vl.encode_texts(["a red circle"]).shape == (1, 50)
    ident = vl.identity()
    assert ident["name"] == vl.name and ident["weights"] != DemoVisionLanguageEncoder().identity()["weights"]
    out = EmbeddingDecoder().decode(z)
    assert out.shape == (4, 3, 64, 64) and out.min() >= 0 and out.max() <= 1
    with pytest.raises(ValueError, match="embeddings"):
        EmbeddingDecoder().decode(np.zeros((2, 7), np.float32))


@pytest.fixture(scope="module")
def tiny_world():
    from failwidgets.world import WorldConfig, make_world

    return make_world(WorldConfig.demo(n_train=48, n_val=8, n_test=8, n_pool=8), cache=False)


def _state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def _same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("name", ["target", "robust", "vl"])
def test_training_is_deterministic_for_a_seed(tiny_world, name):
    from failwidgets.demo.training import targets as train

    fn = {"target": train.train_target, "robust": train.train_robust, "vl": train.train_vl}[name]
    kw = dict(epochs=1, batch_size=16, max_steps=2, progress=False)
    first, second = _state(fn(tiny_world, seed=3, **kw)), _state(fn(tiny_world, seed=3, **kw))
    other = _state(fn(tiny_world, seed=4, **kw))
    assert _same(first, second)
    assert not _same(first, other)


def test_decoder_training_is_deterministic(tiny_world):
    from failwidgets.demo.training import targets as train

    vl = DemoVisionLanguageEncoder().eval()
    kw = dict(epochs=1, batch_size=16, max_steps=2, progress=False)
    a, b = train.train_decoder(tiny_world, vl, seed=1, **kw), train.train_decoder(tiny_world, vl, seed=1, **kw)
    assert _same(_state(a), _state(b))


def test_attribute_view_mirrors_the_target_mode_and_leaves_it_alone():
    from failwidgets.compute import output_gradients

    target = TargetCNN(6, 20).eval()
    view = target.attribute_model()
    assert not view.training
    output_gradients(view, torch.rand(2, 3, 64, 64), "conv3", progress=False)
    assert not any(m.training for m in target.modules()), "the target's shared BatchNorm stays in eval mode"
