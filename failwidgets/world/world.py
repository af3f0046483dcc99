"""The world object: four splits generated on first use, with planted biases and their ground truth.

>>> world = make_world(WorldConfig.demo(n_train=600, n_val=60, n_test=60, n_pool=60))
>>> split = world["train"]
>>> split.images.shape, split.labels.shape, split.attributes.shape
((600, 64, 64, 3), (600,), (600, 20))
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import Callable, Sequence

import numpy as np
import torch

from failwidgets._validation import check_array, check_choice
from failwidgets.world.attributes import (
    ATTRIBUTE_GROUPS,
    ATTRIBUTE_NAMES,
    attribute_implications,
    attribute_relation_matrix,
    attribute_relations,
    compute_attributes,
)
from failwidgets.world.captions import captions_from_factors, make_caption
from failwidgets.world.config import GENERATOR_VERSION, Correlation, Minority, WorldConfig
from failwidgets.world.factors import CLASS_FACTOR, FACTOR_NAMES, FACTOR_VALUES
from failwidgets.world.planted import cell_masks, describe_plants
from failwidgets.world.render import draw_geometry, render_batch, render_image
from failwidgets.world.sampling import sample_factors

__all__ = ["World", "Split", "SplitDataset", "make_world", "SPLITS", "CONCEPTS"]

SPLITS = ("train", "val", "test", "pool")

#: concept words with pixel masks (see :meth:`Split.concept_masks`)
CONCEPTS: list[str] = (
    FACTOR_VALUES["shape"] + FACTOR_VALUES["colour"] + ["stripes"] + FACTOR_VALUES["background"] + ["small", "large"]
)


def _readonly(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


class Split:
    """One split of the world. Arrays are read-only (the world is cached and shared).

    Attributes
    ----------
    name : str
    images : uint8 (N, H, W, 3)
    labels : int64 (N,), class index (= shape)
    attributes : float32 (N, A) in {0, 1}, columns ``attribute_names``
    factors : dict factor name -> int64 (N,), value index into ``factor_values[name]``
    geometry : dict of per-image jitter (``cx, cy, radius, rotation, stripe_phase`` float32 (N,),
        ``colour_jitter`` float32 (N, 3))
    captions : list of N str
    """

    def __init__(self, name: str, images, factors, geometry, object_masks, stripe_masks):
        self.name = name
        self.images = _readonly(images)
        self.factors = {k: _readonly(v) for k, v in factors.items()}
        self.geometry = {k: _readonly(v) for k, v in geometry.items()}
        self.labels = self.factors[CLASS_FACTOR]
        self.attributes = _readonly(compute_attributes(self.factors))
        self.attribute_names = list(ATTRIBUTE_NAMES)
        self.class_names = list(FACTOR_VALUES[CLASS_FACTOR])
        self._width = images.shape[2]
        # masks stored bit-packed along the width (1 bit per pixel), unpacked on demand
        self._object_bits = _readonly(np.packbits(object_masks, axis=-1))
        self._stripe_bits = _readonly(np.packbits(stripe_masks, axis=-1))
        self._captions: list[str] | None = None

    def __len__(self) -> int:
        return self.images.shape[0]

    def __repr__(self) -> str:
        return f"Split({self.name!r}, n={len(self)}, image_size={self._width})"

    @property
    def captions(self) -> list[str]:
        if self._captions is None:
            self._captions = captions_from_factors(self.factors)
        return self._captions

    def _unpack(self, bits: np.ndarray, indices) -> np.ndarray:
        sel = bits if indices is None else bits[np.asarray(indices)]
        return np.unpackbits(sel, axis=-1, count=self._width).view(bool)

    def object_masks(self, indices: Sequence[int] | None = None) -> np.ndarray:
        """bool (N, H, W): the object's pixels (stripes included). ``indices`` selects images."""
        return self._unpack(self._object_bits, indices)

    def stripe_masks(self, indices: Sequence[int] | None = None) -> np.ndarray:
        """bool (N, H, W): the stripe pixels (empty for plain objects)."""
        return self._unpack(self._stripe_bits, indices)

    def concept_masks(self, concept: str, indices: Sequence[int] | None = None) -> np.ndarray:
        """Exact pixels of a concept, all False in images where it is absent.

        Parameters
        ----------
        concept : str, one of :data:`CONCEPTS`:
            a shape name or "small"/"large" -> the object's pixels; a colour name -> the object's
            pixels painted in that colour (the object minus its stripes); "stripes" -> the stripe
            pixels; a background name -> every pixel that is not the object.
        indices : optional sequence of image indices (default: all)

        Returns
        -------
        bool (N, H, W)
        """
        check_choice(concept, "concept", CONCEPTS)
        if indices is not None:
            n = len(self.labels)
            idx = check_array(indices, "indices", ndim=1, dtype="int")
            if idx.size and (idx.min() < -n or idx.max() >= n):
                raise ValueError(
                    f"indices: expected image indices in [0, {n}), got values in [{idx.min()}, {idx.max()}]"
                )
            indices = idx
        sel = slice(None) if indices is None else np.asarray(indices)
        obj = self.object_masks(indices)
        present = None
        if concept == "stripes":
            return self.stripe_masks(indices)
        for factor in ("shape", "colour", "size", "background"):
            if concept in FACTOR_VALUES[factor]:
                present = self.factors[factor][sel] == FACTOR_VALUES[factor].index(concept)
                if factor == "background":
                    region = ~obj
                elif factor == "colour":
                    region = obj & ~self.stripe_masks(indices)
                else:
                    region = obj
                return region & present[:, None, None]
        raise AssertionError(concept)  # pragma: no cover - CONCEPTS and the branches above agree

    def as_tensor(self, indices: Sequence[int] | None = None) -> torch.Tensor:
        """float32 torch (N, 3, H, W) in [0, 1]."""
        imgs = self.images if indices is None else self.images[np.asarray(indices)]
        # copy: torch refuses to wrap the read-only array without a warning (uint8 copy is cheap)
        return torch.from_numpy(np.array(imgs)).permute(0, 3, 1, 2).float().div_(255.0)

    def dataset(self, transform: Callable | None = None) -> SplitDataset:
        """A torch ``Dataset`` view: items ``(image (3, H, W) float, label int64, attributes (A,) float)``."""
        return SplitDataset(self, transform=transform)

    def factor_value_names(self, factor: str) -> list[str]:
        """The value name of ``factor`` for every image (list of N str)."""
        check_choice(factor, "factor", FACTOR_NAMES)
        names = FACTOR_VALUES[factor]
        return [names[i] for i in self.factors[factor]]


class SplitDataset(torch.utils.data.Dataset):
    """Torch dataset over a :class:`Split`.

    Items are ``(image, label, attributes)``: float32 tensor (3, H, W) in [0, 1] (after ``transform`` if
    given), int64 scalar tensor, float32 tensor (A,).
    """

    def __init__(self, split: Split, transform: Callable | None = None):
        self.split = split
        self.transform = transform

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, i):
        img = torch.from_numpy(np.array(self.split.images[i])).permute(2, 0, 1).float().div_(255.0)
        if self.transform is not None:
            img = self.transform(img)
        return img, torch.tensor(int(self.split.labels[i])), torch.from_numpy(np.array(self.split.attributes[i]))


class World:
    """A deterministic procedural world with planted biases (see :func:`make_world`).

    Attributes
    ----------
    config : WorldConfig
    class_names : list of str (the shape names; class = shape)
    attribute_names : list of str (20 binary attributes)
    attribute_groups : dict group -> attribute names ("shape", "colour", "background" are one-hot)
    concepts : list of str, concept words with pixel masks
    factor_values : dict factor name -> list of value names
    fingerprint : str, hash of the config and the generator version (for cache keys)
    """

    def __init__(self, config: WorldConfig):
        if not isinstance(config, WorldConfig):
            raise TypeError(f"config: expected a WorldConfig, got {type(config).__name__}")
        self.config = config
        self.class_names = list(FACTOR_VALUES[CLASS_FACTOR])
        self.attribute_names = list(ATTRIBUTE_NAMES)
        self.attribute_groups = {k: list(v) for k, v in ATTRIBUTE_GROUPS.items()}
        self.concepts = list(CONCEPTS)
        self.factor_values = {k: list(v) for k, v in FACTOR_VALUES.items()}
        self.fingerprint = hashlib.sha256((GENERATOR_VERSION + "\n" + config.to_json()).encode()).hexdigest()[:32]
        self._splits: dict[str, Split] = {}
        self._factors: dict[str, dict[str, np.ndarray]] = {}
        self._planted: list[dict] | None = None

    def __repr__(self) -> str:
        sizes = ", ".join(f"{k}={v}" for k, v in self.config.split_sizes.items())
        return f"World({sizes}, plants={len(self.config.correlations) + len(self.config.minorities)}, fingerprint={self.fingerprint[:8]})"

    # ---------------------------------------------------------------------------------------------
    def __getitem__(self, name: str) -> Split:
        check_choice(name, "split", SPLITS)
        if name not in self._splits:
            self._splits[name] = self._generate(name)
        return self._splits[name]

    @property
    def splits(self) -> tuple[str, ...]:
        return SPLITS

    def _seeds(self, name: str) -> list[np.random.Generator]:
        ss = np.random.SeedSequence(self.config.seed, spawn_key=(SPLITS.index(name),))
        return [np.random.default_rng(s) for s in ss.spawn(3)]

    def factors(self, name: str) -> dict[str, np.ndarray]:
        """The factors of a split without rendering its images (cheap; same values as ``world[name].factors``)."""
        check_choice(name, "split", SPLITS)
        if name in self._splits:
            return self._splits[name].factors
        if name not in self._factors:
            cfg = self.config
            rng = self._seeds(name)[0]
            n = cfg.split_sizes[name]
            if name == "train":
                f = sample_factors(n, rng, cfg.correlations, cfg.minorities)
            else:
                f = sample_factors(n, rng)
            self._factors[name] = {k: _readonly(v) for k, v in f.items()}
        return self._factors[name]

    def _generate(self, name: str) -> Split:
        cfg = self.config
        _, rng_geometry, rng_pixels = self._seeds(name)
        factors = {k: np.array(v) for k, v in self.factors(name).items()}
        self._factors.pop(name, None)
        geometry = draw_geometry(factors, cfg.image_size, rng_geometry)
        r = render_batch(
            factors,
            geometry,
            cfg.image_size,
            rng_pixels,
            brightness_jitter=cfg.brightness_jitter,
            pixel_noise=cfg.pixel_noise,
        )
        return Split(name, r.images, factors, geometry, r.object_masks, r.stripe_masks)

    # ---------------------------------------------------------------------------------------------
    @property
    def planted(self) -> list[dict]:
        """Ground truth of every plant, with its level measured in every split (see
        :func:`failwidgets.world.planted.describe_plants`). Needs the factors only, not the images."""
        if self._planted is None:
            self._planted = describe_plants(self.config, {s: self.factors(s) for s in SPLITS})
        return self._planted

    def _plant(self, plant) -> Correlation | Minority:
        plants = list(self.config.correlations) + list(self.config.minorities)
        if isinstance(plant, dict):
            plant = plant["plant"]
        if isinstance(plant, (Correlation, Minority)):
            return plant
        if isinstance(plant, (int, np.integer)) and not isinstance(plant, bool) and 0 <= plant < len(plants):
            return plants[int(plant)]
        raise ValueError(
            f"plant: expected an index in [0, {len(plants)}), an entry of world.planted, or a "
            f"Correlation/Minority, got {plant!r}"
        )

    def describe(self) -> str:
        """A short human-readable account of the world and its plants with the measured levels."""
        sizes = ", ".join(f"{k} {v}" for k, v in self.config.split_sizes.items())
        lines = [
            f"failwidgets world (seed {self.config.seed}, {self.config.image_size}x{self.config.image_size} px; {sizes})",
            "factors: " + "; ".join(f"{k}: {', '.join(v)}" for k, v in self.factor_values.items()),
        ]
        if not self.planted:
            lines.append("no planted bias: every split is balanced")
        for p in self.planted:
            lines.append(f"[{p['index']}] {p['description']}")
            if p["kind"] == "correlation":
                for split, m in p["measured"].items():
                    lines.append(
                        f"    {split}: P({p['factor_b']} = mapping[{p['factor_a']}]) = {m['p']:.3f} "
                        f"(implied tau {m['tau']:.3f}, n={m['n']})"
                    )
            else:
                for g in p["groups"]:
                    m = g["measured"]["train"]
                    lines.append(
                        f"    {g['caption']}: train share {m['share']:.3f} (expected {g['expected_share']:.3f}, "
                        f"normal {g['normal_share']:.3f}, n_class={m['n_class']})"
                    )
        return "\n".join(lines)

    def find_plant(self, factors, kind: str | None = None) -> dict:
        """The entry of :attr:`planted` over ``factors``, e.g. ``("shape", "background")``.

        Parameters
        ----------
        factors : sequence of str, the plant's factors in order (``a -> b`` for a correlation,
            ``("shape", factor)`` for a minority)
        kind : ``"correlation"``, ``"minority"`` or None (either)

        Raises
        ------
        ValueError
            No such plant (the message lists the planted factors).
        """
        if isinstance(factors, str):
            raise TypeError(
                f"factors: expected a sequence of factor names such as ('shape', 'background'), got {factors!r}"
            )
        want = tuple(str(f) for f in factors)
        if kind is not None and kind not in ("correlation", "minority"):
            raise ValueError(f"kind: expected 'correlation', 'minority' or None, got {kind!r}")
        for p in self.planted:
            if tuple(p["factors"]) == want and (kind is None or p.get("kind") == kind):
                return p
        what = f"{kind} " if kind else "plant "
        raise ValueError(
            f"factors: no {what}over {want} in this world (planted: {[tuple(p['factors']) for p in self.planted]})"
        )

    def minority_mask(self, plant, split: str = "test") -> np.ndarray:
        """bool (N,): the images of ``split`` in the minority cells of ``plant``.

        Correlation a -> b: ``a`` mapped and ``b != mapping[a]``. Minority: images of a listed class
        with the rare value. ``plant`` is an index into :attr:`planted`, an entry of it, or the plant.
        """
        return cell_masks(self._plant(plant), self.factors(split))[0]

    def majority_mask(self, plant, split: str = "test") -> np.ndarray:
        """bool (N,): the complementary cells (``b == mapping[a]``; listed classes without the rare value)."""
        return cell_masks(self._plant(plant), self.factors(split))[1]

    # ---------------------------------------------------------------------------------------------
    def attribute_relations(self) -> dict[tuple[str, str], str]:
        """True relation of every attribute pair: "exclusive" | "positive" | "negative" | "independent"."""
        return attribute_relations()

    def attribute_relation_matrix(self) -> np.ndarray:
        """int8 (A, A): +1 positive, 0 independent, -1 exclusive/negative."""
        return attribute_relation_matrix()

    def attribute_implications(self) -> list[tuple[str, str]]:
        """Pairs ``(a, b)`` where attribute ``a`` implies ``b``."""
        return attribute_implications()

    def caption(self, **values) -> str:
        """Caption from factor values (omitted factors are not mentioned), see :func:`make_caption`."""
        return make_caption(**values)

    def render(self, seed: int = 0, jitter: bool = True, **values):
        """Render one image from explicit factor values at this world's image size (see :func:`render_image`)."""
        return render_image(image_size=self.config.image_size, seed=seed, jitter=jitter, **values)


_CACHE: OrderedDict[str, World] = OrderedDict()
_CACHE_SIZE = 2


def make_world(config: WorldConfig | None = None, *, cache: bool = True) -> World:
    """Build the world of a config (default ``WorldConfig()``: no plants, seed 0).

    Splits are generated on first access. With ``cache=True`` the same config returns the same
    :class:`World` object (the two most recent are kept; arrays are read-only so sharing is safe).
    """
    config = WorldConfig() if config is None else config
    if not isinstance(config, WorldConfig):
        raise TypeError(f"config: expected a WorldConfig, got {type(config).__name__}")
    if not cache:
        return World(config)
    world = World(config)
    key = world.fingerprint
    if key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key]
    _CACHE[key] = world
    while len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return world
