"""Images, masks, captions, attributes, determinism and the torch view of the world."""

import re

import numpy as np
import pytest
import torch

from failwidgets.world import (
    ATTRIBUTE_NAMES,
    CONCEPTS,
    FACTOR_VALUES,
    WorldConfig,
    make_caption,
    make_world,
    render_image,
)
from failwidgets.world.render import OBJECT_RGB, render_batch

SMALL = dict(n_train=240, n_val=120, n_test=120, n_pool=60)


@pytest.fixture(scope="module")
def world():
    return make_world(WorldConfig.demo(**SMALL), cache=False)


# ---------------------------------------------------------------------------------------------- API
def test_split_arrays_follow_the_documented_contract(world):
    assert world.class_names == FACTOR_VALUES["shape"]
    assert len(world.attribute_names) >= 12
    for name in ("train", "val", "test", "pool"):
        s = world[name]
        n = SMALL[f"n_{name}"]
        assert s.images.dtype == np.uint8 and s.images.shape == (n, 64, 64, 3)
        assert s.labels.dtype == np.int64 and s.labels.shape == (n,)
        assert s.attributes.dtype == np.float32 and s.attributes.shape == (n, len(world.attribute_names))
        assert set(np.unique(s.attributes)) <= {0.0, 1.0}
        assert set(s.factors) == set(world.factor_values)
        assert all(v.dtype == np.int64 and v.shape == (n,) for v in s.factors.values())
        assert len(s.captions) == n
        assert np.array_equal(s.labels, s.factors["shape"])
    t = world["val"].as_tensor()
    assert t.dtype == torch.float32 and t.shape == (120, 3, 64, 64)
    assert torch.equal(t[3, :, 5, 7], torch.tensor(world["val"].images[3, 5, 7], dtype=torch.float32) / 255)
    with pytest.raises(ValueError, match="split: expected one of"):
        world["validation"]


def test_arrays_are_read_only(world):
    with pytest.raises(ValueError):
        world["train"].images[0, 0, 0, 0] = 1
    with pytest.raises(ValueError):
        world["train"].factors["shape"][0] = 1


def test_torch_dataset_view(world):
    ds = world["test"].dataset()
    assert len(ds) == 120
    img, label, attrs = ds[7]
    assert img.shape == (3, 64, 64) and img.dtype == torch.float32 and 0 <= img.min() and img.max() <= 1
    assert int(label) == world["test"].labels[7]
    assert torch.equal(attrs, torch.tensor(world["test"].attributes[7]))
    xb, yb, ab = next(iter(torch.utils.data.DataLoader(ds, batch_size=16)))
    assert xb.shape == (16, 3, 64, 64) and yb.dtype == torch.int64 and ab.shape == (16, len(ATTRIBUTE_NAMES))
    flipped = world["test"].dataset(transform=lambda x: x.flip(-1))[7][0]
    assert torch.equal(flipped, img.flip(-1))


# ---------------------------------------------------------------------------------------------- determinism
def test_same_config_gives_byte_identical_worlds_and_seeds_differ():
    cfg = WorldConfig.demo(n_train=64, n_val=32, n_test=32, n_pool=16)
    a, b = make_world(cfg, cache=False), make_world(cfg, cache=False)
    # access in a different order: splits do not depend on each other
    b_test = b["test"]
    for name in ("train", "val", "pool", "test"):
        assert a[name].images.tobytes() == b[name].images.tobytes()
        assert all(np.array_equal(a[name].factors[k], b[name].factors[k]) for k in a[name].factors)
    assert a["test"].images.tobytes() == b_test.images.tobytes()
    c = make_world(WorldConfig.demo(seed=1, n_train=64, n_val=32, n_test=32, n_pool=16), cache=False)
    assert np.mean(a["train"].images != c["train"].images) > 0.5
    assert not np.array_equal(a["train"].labels, c["train"].labels)
    # a different training size leaves the held-out splits unchanged
    d = make_world(WorldConfig.demo(n_train=10, n_val=32, n_test=32, n_pool=16), cache=False)
    assert d["test"].images.tobytes() == a["test"].images.tobytes()


def test_make_world_caches_by_config():
    cfg = WorldConfig(n_train=8, n_val=8, n_test=8, n_pool=8)
    assert make_world(cfg) is make_world(WorldConfig(n_train=8, n_val=8, n_test=8, n_pool=8))
    assert make_world(cfg, cache=False) is not make_world(cfg)


# ---------------------------------------------------------------------------------------------- masks
def test_masks_are_exactly_the_drawn_pixels(world):
    """Re-draw the same objects on a constant black background without noise: the non-black pixels
    are the object mask, and the darkened pixels are the stripe mask."""
    s = world["val"]
    plain = render_batch(
        s.factors, s.geometry, 64, None, brightness_jitter=0.0, pixel_noise=0.0, background_rgb=(0, 0, 0)
    )
    drawn = plain.images.max(axis=-1) > 0
    assert np.array_equal(drawn, s.object_masks())
    colour = np.array([OBJECT_RGB[c] for c in FACTOR_VALUES["colour"]], np.float32)[s.factors["colour"]]
    colour = np.clip(colour + s.geometry["colour_jitter"], 0, 255)
    full = np.all(np.abs(plain.images - colour[:, None, None, :]) <= 0.5, axis=-1)
    assert np.array_equal(drawn & ~full, s.stripe_masks())
    assert not s.stripe_masks()[s.factors["texture"] == 0].any()


def test_mask_areas_match_the_geometry():
    """Hand-computed areas (in units of r^2): circle pi, square 1.6^2, rhombus with half-diagonals 0.78
    and 1.15, equilateral triangle of circumradius 1.15, plus of arm half-width 0.34 and half-length 1.
    At 256 px (nominal large radius 48 px) pixelisation changes areas by under 3%."""
    shapes = (
        ("circle", np.pi),
        ("square", 1.6**2),
        ("diamond", 2 * 0.78 * 1.15),
        ("triangle", 3 * np.sqrt(3) / 4 * 1.15**2),
        ("cross", 2 * (2 * 0.34 * 2) - (2 * 0.34) ** 2),
    )
    for shape, area in shapes:
        r = render_image(shape=shape, size="large", jitter=False, background_rgb=(0, 0, 0), image_size=256)
        assert r.object_masks.sum() == pytest.approx(area * 48**2, rel=0.03), shape
    small = render_image(size="small", jitter=False).object_masks.sum()
    large = render_image(size="large", jitter=False).object_masks.sum()
    assert large / small == pytest.approx((12 / 7) ** 2, rel=0.1)


def test_objects_are_in_their_half_and_have_their_colour(world):
    s = world["train"]
    obj = s.object_masks()
    xs = np.arange(64)
    cx = (obj.sum(1) * xs).sum(1) / obj.sum((1, 2))
    left = s.factors["position"] == 0
    assert np.all(cx[left] < 32) and np.all(cx[~left] > 32)
    # every pixel of every object lies in its half
    assert not obj[left][:, :, 32:].any() and not obj[~left][:, :, :32].any()
    # mean colour of the painted (non-stripe) pixels of red objects in the real, noisy images
    red = np.flatnonzero(s.factors["colour"] == FACTOR_VALUES["colour"].index("red"))
    px = s.images[red][s.concept_masks("red", red)[:, :, :]].astype(float)
    assert px[:, 0].mean() > 150 and px[:, 1].mean() < 80 and px[:, 2].mean() < 80


def test_concept_masks(world):
    s = world["test"]
    obj, stripes = s.object_masks(), s.stripe_masks()
    assert world.concepts == CONCEPTS
    for concept in world.concepts:
        m = s.concept_masks(concept)
        assert m.shape == (120, 64, 64) and m.dtype == bool
    snow = s.factors["background"] == FACTOR_VALUES["background"].index("snow")
    m = s.concept_masks("snow")
    assert np.array_equal(m[snow], ~obj[snow]) and not m[~snow].any()
    assert s.images[m].mean() > 200  # near-white pixels
    assert np.array_equal(s.concept_masks("stripes"), stripes)
    assert np.array_equal(s.concept_masks("circle"), obj & (s.labels == 0)[:, None, None])
    blue = s.concept_masks("blue")
    assert not (blue & stripes).any() and np.array_equal(
        blue | (stripes & (s.factors["colour"] == 2)[:, None, None]), obj & (s.factors["colour"] == 2)[:, None, None]
    )
    assert np.array_equal(s.concept_masks("large", [3, 4]), s.concept_masks("large")[[3, 4]])
    with pytest.raises(ValueError, match="concept: expected one of"):
        s.concept_masks("sky")


# ---------------------------------------------------------------------------------------------- captions
def test_every_caption_names_its_factors(world):
    pat = re.compile(r"^a (\w+) (\w+) (\w+) (\w+) on (\w+), on the (\w+)$")
    s = world["train"]
    order = ("size", "texture", "colour", "shape", "background", "position")
    for i, cap in enumerate(s.captions):
        words = pat.match(cap).groups()
        assert words == tuple(FACTOR_VALUES[f][s.factors[f][i]] for f in order), cap


def test_make_caption_with_some_factors():
    assert make_caption(shape="circle", background="sand") == "a circle on sand"
    assert make_caption(colour="red", prefix="a photo of a") == "a photo of a red shape"
    assert (
        make_caption("star", "blue", "small", "striped", "water", "right")
        == "a small striped blue star on water, on the right"
    )
    with pytest.raises(ValueError, match=r"colour \(a value of factor 'colour'\): expected one of"):
        make_caption(colour="purple")


def test_render_image_from_factor_values(world):
    r = render_image(shape="triangle", colour="yellow", position="right", background="water", seed=3)
    assert r.images.shape == (1, 64, 64, 3) and r.object_masks.shape == (1, 64, 64)
    xs = np.nonzero(r.object_masks[0])[1]
    assert xs.min() > 32
    assert world.render(shape="cross", jitter=False).images.shape == (1, 64, 64, 3)
    with pytest.raises(ValueError, match="shape.*expected one of"):
        render_image(shape="hexagon")


# ---------------------------------------------------------------------------------------------- attributes
def test_attributes_follow_the_factors(world):
    s = world["train"]
    a = dict(zip(world.attribute_names, s.attributes.T.astype(bool)))
    f = s.factors
    for group in ("shape", "colour", "background"):
        cols = np.stack([a[v] for v in FACTOR_VALUES[group]], 1)
        assert np.all(cols.sum(1) == 1) and np.array_equal(cols.argmax(1), f[group])
    assert np.array_equal(a["large"], f["size"] == 1) and np.array_equal(a["striped"], f["texture"] == 1)
    assert np.array_equal(a["left"], f["position"] == 0)
    assert np.array_equal(a["warm"], a["red"] | a["yellow"]) and np.array_equal(a["cool"], ~a["warm"])
    assert np.array_equal(a["pointy"], a["triangle"] | a["star"] | a["diamond"])


def test_ground_truth_relations(world):
    rel = world.attribute_relations()
    names = world.attribute_names
    assert len(rel) == len(names) * (len(names) - 1)
    expected = {
        ("circle", "square"): "exclusive",
        ("grass", "snow"): "exclusive",
        ("warm", "cool"): "exclusive",
        ("pointy", "circle"): "exclusive",
        ("green", "warm"): "exclusive",
        ("red", "warm"): "positive",
        ("star", "pointy"): "positive",
        ("striped", "large"): "independent",  # planted correlation in training does not change the truth
        ("circle", "grass"): "independent",
        ("red", "left"): "independent",
        ("pointy", "warm"): "independent",
    }
    for (x, y), r in expected.items():
        assert rel[(x, y)] == r and rel[(y, x)] == r, (x, y)
    assert set(rel.values()) == {"exclusive", "positive", "independent"}
    mat = world.attribute_relation_matrix()
    i, j = names.index("red"), names.index("warm")
    assert mat[i, j] == mat[j, i] == 1 and mat[names.index("warm"), names.index("cool")] == -1
    assert mat[names.index("striped"), names.index("large")] == 0 and np.all(np.diag(mat) == 1)
    imp = world.attribute_implications()
    assert ("red", "warm") in imp and ("warm", "red") not in imp and ("diamond", "pointy") in imp
    assert set(imp) == {
        *[(c, "warm") for c in ("red", "yellow")],
        *[(c, "cool") for c in ("green", "blue")],
        *[(s, "pointy") for s in ("triangle", "star", "diamond")],
    }
    assert world.attribute_groups["colour"] == FACTOR_VALUES["colour"]


def test_caption_candidates_for_a_class():
    from failwidgets.world import caption_candidates

    cands = caption_candidates("circle")
    # bare caption + 4 colours + 2 sizes + 2 textures + 4 backgrounds + 2 positions
    assert len(cands) == 1 + 4 + 2 + 2 + 4 + 2
    assert cands[0] == "a circle" and "a circle on sand" in cands and "a striped circle" in cands
    two = caption_candidates("star", factors=("colour", "background"), max_factors=2, prefix="a photo of a")
    assert len(two) == 1 + 4 + 4 + 4 * 4 and "a photo of a blue star on snow" in two
    with pytest.raises(ValueError, match="factors: expected one of"):
        caption_candidates("star", factors=("shape",))


def test_describe_names_every_plant_and_its_measured_level(world):
    text = world.describe()
    assert "background follows shape at tau=0.95" in text and "size follows texture at tau=1" in text
    p = world.planted[0]["measured"]["train"]["p"]
    assert f"P(background = mapping[shape]) = {p:.3f}" in text


def test_find_plant_by_factors(world):
    plant = world.find_plant(("shape", "background"))
    assert plant["kind"] == "correlation" and tuple(plant["factors"]) == ("shape", "background")
    assert world.find_plant(["shape", "background"], kind="correlation") is plant
    minority = world.minority_mask(plant, "train")
    assert minority.dtype == bool and 0 < minority.sum() < len(minority)
    with pytest.raises(ValueError, match=r"factors: no plant over \('background', 'shape'\)"):
        world.find_plant(("background", "shape"))
    with pytest.raises(ValueError, match="factors: no minority over"):
        world.find_plant(("shape", "background"), kind="minority")
    with pytest.raises(TypeError, match="factors: expected a sequence"):
        world.find_plant("shape")
    with pytest.raises(ValueError, match="kind: expected"):
        world.find_plant(("shape", "background"), kind="both")
