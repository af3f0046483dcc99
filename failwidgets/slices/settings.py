"""Slice-discovery settings on the planted world, with exact truth.

A setting is one classification problem on a subset of the world's shapes (2 to 6 classes) with one
planted slice inside a *target class*, of one of dcbench's three kinds:

* ``"rare"``: in the training split the slice (target class with ``factor = value``) keeps only a few
  percent of the class (:class:`~failwidgets.world.Minority`, ``strength`` = its training share);
* ``"correlation"``: in the training split ``factor`` follows the class at ``tau = strength``
  (:class:`~failwidgets.world.Correlation`, ``mapping`` class -> value); the slice is the target class
  with ``factor != mapping[target]`` (the images the shortcut gets wrong);
* ``"noisy"``: the slice (target class with ``factor = value``) is drawn normally, but in the training
  split its labels are flipped to ``flip_to`` with probability ``strength``.

The model is the project's :class:`~failwidgets.demo.TargetCNN` trained by
:func:`failwidgets.demo.training.targets.train_target` on the setting's training images (a plain
classifier: ``attribute_weight=0``). Validation and test hold images of the target class only, drawn from
the balanced world conditioned on slice membership so that the slice is ``share`` of them (down to 2%)
and the test split holds at least ``min_test_slice`` slice images; the truth masks are exact. Methods see
the images through the demo vision-language encoder (``embeddings``; 32 px images upsampled to its 64 px)
and the model's penultimate features (``features``).

Everything is deterministic from the :class:`SettingSpec`; the trained weights and every derived array
are cached in an :class:`~failwidgets.compute.EmbeddingCache` keyed by the spec.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch.nn import functional as F

from failwidgets._validation import check_choice, check_in_range, check_positive_int
from failwidgets.compute import EmbeddingCache, fingerprint
from failwidgets.slices.interface import ClassData
from failwidgets.world import (
    CLASS_FACTOR,
    FACTOR_NAMES,
    FACTOR_VALUES,
    GENERATOR_VERSION,
    Correlation,
    Minority,
    WorldConfig,
    make_world,
)
from failwidgets.world.render import draw_geometry, render_batch

__all__ = [
    "KINDS",
    "SLICE_FACTORS",
    "BENCH_VERSION",
    "SettingSpec",
    "Setting",
    "draw_settings",
    "build_setting",
]

KINDS = ("rare", "correlation", "noisy")
SLICE_FACTORS = tuple(f for f in FACTOR_NAMES if f != CLASS_FACTOR)
#: bump when the construction of settings changes (part of every cache key)
BENCH_VERSION = "slicebench-1"
_N_REFERENCE = 512  # training images embedded for whitening statistics
_VL_SIZE = 64  # input size of the demo vision-language encoder


@dataclass(frozen=True)
class SettingSpec:
    """Everything that determines a setting.

    Parameters
    ----------
    kind : {"rare", "correlation", "noisy"}
    seed : int
        Seed of the world, the eval images, the label flips and the training.
    classes : tuple of str
        The shapes in the problem (2 to 6), in the world's order; class ``i`` is ``classes[i]``.
    target : str
        The class holding the slice.
    factor : str
        The slice's factor (not ``"shape"``).
    value : str
        ``rare`` / ``noisy``: the slice's value; ``correlation``: ``mapping[target]`` (the majority value;
        the slice is every other value).
    strength : float
        ``rare``: training share of the slice within the target class; ``correlation``: tau;
        ``noisy``: probability that a slice image's training label is flipped.
    share : float in (0, 0.5]
        Share of the slice within the target class in validation and test.
    mapping : tuple of (class, value) pairs
        ``correlation`` only: the value each class's images get in training (with probability tau).
    flip_to : str or None
        ``noisy`` only: the class the flipped labels name.
    n_train_per_class : int
        Training images per class (the world renders ``6 x`` this and keeps the setting's classes).
    n_val : int
        Validation images (all of the target class).
    min_test_slice : int
        Slice images in the test split at least (so that precision-at-25 can reach 1).
    image_size, epochs : int
        Image side in pixels and training epochs.
    """

    kind: str
    seed: int
    classes: tuple[str, ...]
    target: str
    factor: str
    value: str
    strength: float
    share: float
    mapping: tuple[tuple[str, str], ...] = ()
    flip_to: str | None = None
    n_train_per_class: int = 800
    n_val: int = 500
    min_test_slice: int = 30
    image_size: int = 32
    epochs: int = 6

    def __post_init__(self):
        check_choice(self.kind, "kind", KINDS)
        check_positive_int(self.seed, "seed", minimum=0)
        classes = tuple(self.classes)
        for c in classes:
            check_choice(c, "classes item", FACTOR_VALUES[CLASS_FACTOR])
        if len(set(classes)) != len(classes) or len(classes) < 2:
            raise ValueError(f"classes: expected at least 2 distinct shapes, got {classes!r}")
        object.__setattr__(self, "classes", classes)
        check_choice(self.target, "target", classes)
        check_choice(self.factor, "factor", SLICE_FACTORS)
        check_choice(self.value, f"value (a value of {self.factor!r})", FACTOR_VALUES[self.factor])
        object.__setattr__(self, "strength", check_in_range(self.strength, "strength", 0.0, 1.0))
        share = check_in_range(self.share, "share", 0.0, 0.5)
        if share <= 0:
            raise ValueError(f"share: expected a value in (0, 0.5], got {self.share!r}")
        object.__setattr__(self, "share", share)
        mapping = tuple(tuple(p) for p in self.mapping)
        object.__setattr__(self, "mapping", mapping)
        if self.kind == "correlation":
            m = dict(mapping)
            if set(m) != set(classes) or m.get(self.target) != self.value:
                raise ValueError(
                    f"mapping: expected a value for every class with mapping[target] = value "
                    f"({self.target!r} -> {self.value!r}), got {m!r}"
                )
        elif mapping:
            raise ValueError(f"mapping: only for kind 'correlation', got {mapping!r} for kind {self.kind!r}")
        if self.kind == "noisy":
            check_choice(self.flip_to, "flip_to", [c for c in classes if c != self.target])
        elif self.flip_to is not None:
            raise ValueError(f"flip_to: only for kind 'noisy', got {self.flip_to!r}")
        for name in ("n_train_per_class", "n_val", "min_test_slice", "epochs"):
            check_positive_int(getattr(self, name), name)
        check_positive_int(self.image_size, "image_size", minimum=32)

    # ----------------------------------------------------------------------------------------------
    @property
    def class_index(self) -> int:
        return self.classes.index(self.target)

    @property
    def group(self) -> str:
        """The row group of the benchmark tables (the kind)."""
        return self.kind

    def to_dict(self) -> dict:
        d = asdict(self)
        d["classes"] = list(self.classes)
        d["mapping"] = [list(p) for p in self.mapping]
        return d

    @property
    def fingerprint(self) -> str:
        """Stable hash of the spec and the benchmark / world generator versions."""
        return fingerprint(
            json.dumps({"spec": self.to_dict(), "bench": BENCH_VERSION, "world": GENERATOR_VERSION}, sort_keys=True)
        )[:32]

    def describe(self) -> str:
        """One line: what was planted and how rare the slice is in evaluation."""
        where = f"{self.target} with {self.factor}"
        if self.kind == "rare":
            what = f"rare: {where}={self.value} at {self.strength:.1%} of the class in training"
        elif self.kind == "correlation":
            what = (
                f"correlation: {self.factor} follows the class at tau={self.strength:.2f}; slice {where}!={self.value}"
            )
        else:
            what = f"noisy: {where}={self.value}, training labels flipped to {self.flip_to} with p={self.strength:.2f}"
        return f"{what}; {len(self.classes)} classes; slice share {self.share:.1%} in val/test; seed {self.seed}"

    def world_config(self) -> WorldConfig:
        """The world whose training split the model learns from (6 shapes; the setting keeps its classes)."""
        plants: dict[str, tuple] = {"correlations": (), "minorities": ()}
        k = len(FACTOR_VALUES[self.factor])
        if self.kind == "rare":
            fraction = min(1.0, self.strength * k)  # the value's normal share within the class is 1 / k
            plants["minorities"] = (Minority(self.factor, {self.target: self.value}, fraction),)
        elif self.kind == "correlation":
            plants["correlations"] = (Correlation(CLASS_FACTOR, self.factor, self.strength, dict(self.mapping)),)
        return WorldConfig(
            seed=self.seed,
            image_size=self.image_size,
            n_train=6 * self.n_train_per_class,
            n_val=0,
            n_test=0,
            n_pool=0,
            **plants,
        )

    def split_sizes(self) -> dict[str, tuple[int, int]]:
        """``{"val": (n_slice, n_rest), "test": (n_slice, n_rest)}`` images of the target class."""
        s = self.share
        n_slice_val = max(3, int(round(s * self.n_val)))
        n_slice_test = max(self.min_test_slice, int(np.ceil(s * 600)))
        return {
            "val": (n_slice_val, self.n_val - n_slice_val),
            "test": (n_slice_test, int(round(n_slice_test * (1 - s) / s))),
        }


@dataclass(frozen=True, eq=False)
class Setting:
    """A built setting: what methods see (validation and test of the target class) and the truth.

    Attributes
    ----------
    spec : SettingSpec
    val, test : ClassData
    val_truth, test_truth : bool ndarray (N_val,), (N_test,)
        The planted slice.
    info : dict
        Model accuracy on the test images in and outside the slice, validation error counts, build
        seconds and whether the arrays came from the cache.
    """

    spec: SettingSpec
    val: ClassData
    test: ClassData
    val_truth: np.ndarray = field(repr=False)
    test_truth: np.ndarray = field(repr=False)
    info: dict = field(default_factory=dict)

    @property
    def kind(self) -> str:
        """The group the setting is reported in (``spec.group``: the kind, prefixed by the data set)."""
        return self.spec.group


# --------------------------------------------------------------------------------------------------
def _loguniform(rng, low, high):
    return float(np.exp(rng.uniform(np.log(low), np.log(high))))


def draw_settings(n: int, seed: int = 0, *, kinds=KINDS, share_range=(0.02, 0.25), **spec_kwargs) -> list[SettingSpec]:
    """``n`` settings, kinds in turn, everything else drawn from ``seed``.

    Drawn per setting: the world seed; 2 to 6 classes; the target class; the slice factor and value;
    ``rare``: training share log-uniform in [1%, 5%]; ``correlation``: tau uniform in [0.5, 0.99] and a
    mapping from a random cycle of the factor's values; ``noisy``: flip probability uniform in [0.5, 0.95]
    and the class the labels flip to; the validation / test share log-uniform in ``share_range``.

    Parameters
    ----------
    n : int
    seed : int
    kinds : sequence of str
    share_range : (low, high)
    **spec_kwargs : sizes passed to every :class:`SettingSpec` (``n_train_per_class``, ``epochs``, ...).
    """
    n = check_positive_int(n, "n")
    kinds = tuple(check_choice(k, "kinds item", KINDS) for k in kinds)
    lo, hi = share_range
    check_in_range(lo, "share_range[0]", 0.0, 0.5, inclusive=False)
    check_in_range(hi, "share_range[1]", lo, 0.5)
    rng = np.random.default_rng(seed)
    shapes = FACTOR_VALUES[CLASS_FACTOR]
    out = []
    for i in range(n):
        kind = kinds[i % len(kinds)]
        n_classes = int(rng.integers(2, len(shapes) + 1))
        classes = tuple(shapes[j] for j in sorted(rng.choice(len(shapes), n_classes, replace=False)))
        target = classes[int(rng.integers(n_classes))]
        factor = SLICE_FACTORS[int(rng.integers(len(SLICE_FACTORS)))]
        values = FACTOR_VALUES[factor]
        value = values[int(rng.integers(len(values)))]
        extra: dict = {}
        if kind == "rare":
            strength = _loguniform(rng, 0.01, 0.05)
        elif kind == "correlation":
            strength = float(rng.uniform(0.5, 0.99))
            cycle = [v for v in rng.permutation(values) if v != value]
            others = [c for c in classes if c != target]
            cyc = [value] + cycle
            m = {target: value}
            for j, c in enumerate(others):
                m[c] = cyc[(j + 1) % len(cyc)]
            extra["mapping"] = tuple((c, m[c]) for c in classes)
        else:
            strength = float(rng.uniform(0.5, 0.95))
            others = [c for c in classes if c != target]
            extra["flip_to"] = others[int(rng.integers(len(others)))]
        share = _loguniform(rng, lo, hi)
        world_seed = int(rng.integers(0, 2**31 - 1))
        out.append(
            SettingSpec(
                kind=kind,
                seed=world_seed,
                classes=classes,
                target=target,
                factor=factor,
                value=value,
                strength=strength,
                share=share,
                **extra,
                **spec_kwargs,
            )
        )
    return out


# --------------------------------------------------------------------------------------------------
class _TrainSplit:
    """The training images of a setting in the shape :func:`train_target` reads."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, n_attributes: int):
        self.images = images
        self.labels = labels
        self.attributes = np.zeros((len(labels), n_attributes), np.float32)  # unused: attribute_weight=0

    def as_tensor(self) -> torch.Tensor:
        return torch.from_numpy(np.array(self.images)).permute(0, 3, 1, 2).float().div_(255.0)


class _TrainWorld:
    def __init__(self, split: _TrainSplit, class_names, attribute_names):
        self._split = split
        self.class_names = list(class_names)
        self.attribute_names = list(attribute_names)

    def __getitem__(self, name: str) -> _TrainSplit:
        check_choice(name, "split", ["train"])
        return self._split


def _training_data(spec: SettingSpec):
    """(images uint8 (N, S, S, 3), labels (N,) in setting class indices, factors dict, n_flipped, world)."""
    world = make_world(spec.world_config(), cache=False)
    train = world["train"]
    shape_codes = [FACTOR_VALUES[CLASS_FACTOR].index(c) for c in spec.classes]
    keep = np.isin(train.labels, shape_codes)
    remap = np.full(len(FACTOR_VALUES[CLASS_FACTOR]), -1, np.int64)
    remap[shape_codes] = np.arange(len(shape_codes))
    labels = remap[train.labels[keep]]
    factors = {k: np.asarray(v)[keep] for k, v in train.factors.items()}
    n_flipped = 0
    if spec.kind == "noisy":
        rng = np.random.default_rng([spec.seed, 3])
        group = (labels == spec.class_index) & (factors[spec.factor] == FACTOR_VALUES[spec.factor].index(spec.value))
        flip = group & (rng.random(len(labels)) < spec.strength)
        labels = np.where(flip, spec.classes.index(spec.flip_to), labels)
        n_flipped = int(flip.sum())
    return np.asarray(train.images)[keep], labels, factors, n_flipped, world


def _eval_images(spec: SettingSpec, split: str, world) -> tuple[np.ndarray, np.ndarray]:
    """Images of the target class for ``split`` with the slice at ``share``; (images, truth bool)."""
    n_slice, n_rest = spec.split_sizes()[split]
    n = n_slice + n_rest
    rng = np.random.default_rng([spec.seed, 1 if split == "val" else 2])
    factors = {f: rng.integers(0, len(FACTOR_VALUES[f]), n).astype(np.int64) for f in FACTOR_NAMES}
    factors[CLASS_FACTOR][:] = FACTOR_VALUES[CLASS_FACTOR].index(spec.target)
    k = len(FACTOR_VALUES[spec.factor])
    v = FACTOR_VALUES[spec.factor].index(spec.value)
    truth = np.zeros(n, bool)
    truth[:n_slice] = True
    other = (v + rng.integers(1, k, n)) % k  # a uniform value other than v
    if spec.kind == "correlation":  # slice: any value but the mapped one; rest: the mapped one
        factors[spec.factor] = np.where(truth, other, v)
    else:  # slice: the value; rest: any other value
        factors[spec.factor] = np.where(truth, v, other)
    order = rng.permutation(n)
    factors = {f: a[order] for f, a in factors.items()}
    truth = truth[order]
    cfg = world.config
    geometry = draw_geometry(factors, cfg.image_size, rng)
    r = render_batch(
        factors, geometry, cfg.image_size, rng, brightness_jitter=cfg.brightness_jitter, pixel_noise=cfg.pixel_noise
    )
    return r.images, truth


def _as_tensor(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(images)).permute(0, 3, 1, 2).float().div_(255.0)


@torch.no_grad()
def _model_outputs(model, images: np.ndarray, batch_size: int = 256):
    """(probs (N, C), features (N, F)) float32 of the target model."""
    model.eval()
    dev = next(model.parameters()).device
    probs, feats = [], []
    for i in range(0, len(images), batch_size):
        x = _as_tensor(images[i : i + batch_size]).to(dev)
        f = model.features(x)
        probs.append(F.softmax(model.class_head(f), dim=1).float().cpu())
        feats.append(f.float().cpu())
    return torch.cat(probs).numpy(), torch.cat(feats).numpy()


def _vl_embeddings(vl, images: np.ndarray) -> np.ndarray:
    x = _as_tensor(images)
    if x.shape[-1] != _VL_SIZE:
        x = F.interpolate(x, size=_VL_SIZE, mode="bilinear", align_corners=False)
    return vl.encode_images(x, progress=False)


_VL = None


def _default_vl():
    global _VL
    if _VL is None:
        from failwidgets.demo import load_model

        _VL = load_model("vl")
    return _VL


def _train(spec: SettingSpec, images, labels, attribute_names, device):
    from failwidgets.demo.training.targets import train_target

    split = _TrainSplit(images, labels, len(attribute_names))
    world = _TrainWorld(split, spec.classes, attribute_names)
    return train_target(
        world, epochs=spec.epochs, attribute_weight=0.0, seed=spec.seed % (2**31), device=device, progress=False
    )


def _target_model(spec, images, labels, attribute_names, cache: EmbeddingCache, device):
    """The trained TargetCNN, from the cache when its weights are there (keyed by the spec)."""
    from failwidgets.demo import TargetCNN

    parts = {"kind": "slicebench-target", "spec": spec.fingerprint, "trainer": "train_target", "attribute_weight": 0.0}
    key = cache.key(parts)
    state = cache.get(key)
    model = TargetCNN(len(spec.classes), len(attribute_names))
    if state is not None and isinstance(state, dict):
        model.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in state.items()})
        return model.eval(), True
    model = _train(spec, images, labels, attribute_names, device)
    cache.put(key, {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()}, parts)
    return model.cpu().eval(), False


def build_setting(spec: SettingSpec, *, cache: EmbeddingCache | None = None, vl=None, device=None) -> Setting:
    """Train the setting's model (or load it from the cache) and compute what methods see.

    Parameters
    ----------
    spec : SettingSpec
    cache : EmbeddingCache, optional
        Default: ``EmbeddingCache()`` (``FAILWIDGETS_CACHE`` or the user cache directory).
    vl : encoder with ``encode_images`` and ``identity()``, optional
        Default: the demo vision-language encoder (``failwidgets.demo.load_model("vl")``).
    device : optional, where the model trains (``get_device`` rules).

    Returns
    -------
    Setting
    """
    if not isinstance(spec, SettingSpec):
        raise TypeError(f"spec: expected a SettingSpec, got {type(spec).__name__}")
    cache = EmbeddingCache() if cache is None else cache
    vl = _default_vl() if vl is None else vl
    t0, c0 = time.perf_counter(), time.process_time()
    encoder_id = fingerprint(vl) if isinstance(vl, torch.nn.Module) else fingerprint(vl.identity())
    parts = {"kind": "slicebench-setting", "spec": spec.fingerprint, "encoder": encoder_id}
    key = cache.key(parts)
    arrays = cache.get(key)
    cached = arrays is not None
    if not cached:
        images, labels, _factors, n_flipped, world = _training_data(spec)
        t_render = time.perf_counter() - t0
        model, model_cached = _target_model(spec, images, labels, world.attribute_names, cache, device)
        t_train = time.perf_counter() - t0 - t_render
        rng = np.random.default_rng([spec.seed, 4])
        ref = rng.choice(len(images), min(_N_REFERENCE, len(images)), replace=False)
        arrays = {
            "reference_embeddings": _vl_embeddings(vl, images[ref]),
            "n_train": np.array([len(labels)]),
            "n_flipped": np.array([n_flipped]),
        }
        for split in ("val", "test"):
            imgs, truth = _eval_images(spec, split, world)
            probs, feats = _model_outputs(model, imgs)
            arrays.update(
                {
                    f"{split}_embeddings": _vl_embeddings(vl, imgs),
                    f"{split}_features": feats,
                    f"{split}_probs": probs,
                    f"{split}_truth": truth,
                }
            )
        arrays["seconds"] = np.array(
            [time.perf_counter() - t0, t_render, t_train, float(model_cached), time.process_time() - c0]
        )
        cache.put(key, arrays, parts)
    return _as_setting(spec, arrays, cached, t0, c0)


def _as_setting(spec, arrays: dict, cached: bool, t0: float, c0: float) -> Setting:
    """The Setting of a spec from its (cached or fresh) arrays."""
    data = {}
    for split in ("val", "test"):
        probs = arrays[f"{split}_probs"]
        n = len(probs)
        data[split] = ClassData(
            class_index=spec.class_index,
            class_names=spec.classes,
            embeddings=arrays[f"{split}_embeddings"],
            features=arrays[f"{split}_features"],
            labels=np.full(n, spec.class_index, np.int64),
            preds=probs.argmax(axis=1),
            probs=probs,
            reference_embeddings=arrays["reference_embeddings"],
        )
    truth = {s: np.asarray(arrays[f"{s}_truth"], bool) for s in ("val", "test")}
    seconds = arrays["seconds"]
    info = {
        "cached": cached,
        "build_seconds": float(seconds[0]) if not cached else float(time.perf_counter() - t0),
        "build_cpu_seconds": float(seconds[4]) if not cached and len(seconds) > 4 else float(time.process_time() - c0),
        "train_seconds": float(seconds[2]),
        "n_train": int(arrays["n_train"][0]),
        "n_flipped": int(arrays["n_flipped"][0]),
    }
    for s in ("val", "test"):
        err, t = data[s].errors, truth[s]
        info[f"{s}_n"] = int(len(t))
        info[f"{s}_n_slice"] = int(t.sum())
        info[f"{s}_slice_error_rate"] = float(err[t].mean())
        info[f"{s}_rest_error_rate"] = float(err[~t].mean())
        info[f"{s}_n_errors"] = int(err.sum())
    return Setting(spec, data["val"], data["test"], truth["val"], truth["test"], info)
