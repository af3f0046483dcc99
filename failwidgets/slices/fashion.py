"""The same slice kinds on real images: Fashion-MNIST from Debian's ``dataset-fashion-mnist`` package.

Fashion-MNIST's ten classes are grouped into four superclasses (``top``: T-shirt, pullover, coat, shirt;
``bottom``: trouser, dress; ``footwear``: sandal, sneaker, ankle boot; ``bag``); a setting is a
superclass classification problem (2 to 4 superclasses) whose slice is one fine class inside the target
superclass, as dcbench builds rare subclasses from a class hierarchy:

* ``"rare"``: in training the slice keeps ``strength`` (1-5%) of its superclass;
* ``"noisy"``: in training the slice's labels are flipped to ``flip_to`` with probability ``strength``.

(No correlation kind: Fashion-MNIST has no second factor to correlate with.) Images are 28 px greyscale,
padded to 32 px and repeated over three channels; validation and test come from the images not used for
training (test split first). Nothing is downloaded: where the package is not installed,
:func:`fashion_mnist_available` is False and the benchmark prints why it skips these settings.
"""

from __future__ import annotations

import gzip
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from failwidgets._validation import check_choice, check_in_range, check_positive_int
from failwidgets.compute import EmbeddingCache, fingerprint
from failwidgets.slices.settings import BENCH_VERSION, Setting, _TrainSplit, _TrainWorld

__all__ = [
    "FASHION_DIR",
    "FINE_CLASSES",
    "SUPERCLASSES",
    "FashionSpec",
    "fashion_mnist_available",
    "load_fashion_mnist",
    "draw_fashion_settings",
    "build_fashion_setting",
    "skip_message",
]

#: where Debian's dataset-fashion-mnist installs the files (override with FAILWIDGETS_FASHION_MNIST)
FASHION_DIR = "/usr/share/datasets/fashion-mnist"
FINE_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
SUPERCLASSES: dict[str, tuple[int, ...]] = {"top": (0, 2, 4, 6), "bottom": (1, 3), "footwear": (5, 7, 9), "bag": (8,)}
_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}


def _root(root=None) -> Path:
    return Path(root or os.environ.get("FAILWIDGETS_FASHION_MNIST") or FASHION_DIR)


def fashion_mnist_available(root=None) -> bool:
    """Whether the four Fashion-MNIST files are in ``root`` (default :data:`FASHION_DIR`)."""
    r = _root(root)
    return all((r / f).is_file() for pair in _FILES.values() for f in pair)


def skip_message(root=None) -> str:
    return (
        f"Fashion-MNIST settings skipped: no Fashion-MNIST files in {_root(root)} (install Debian's "
        "dataset-fashion-mnist package, or set FAILWIDGETS_FASHION_MNIST to a folder with the four .gz files)"
    )


def _read_idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(shape)


_DATA: dict = {}


def load_fashion_mnist(root=None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{"train": (images uint8 (60000, 28, 28), labels (60000,)), "test": (... (10000, ...))}``."""
    r = _root(root)
    if not fashion_mnist_available(r):
        raise FileNotFoundError(skip_message(r))
    if str(r) not in _DATA:
        _DATA[str(r)] = {s: (_read_idx(r / im), _read_idx(r / lb).astype(np.int64)) for s, (im, lb) in _FILES.items()}
    return _DATA[str(r)]


@dataclass(frozen=True)
class FashionSpec:
    """A Fashion-MNIST setting (see the module docstring).

    Parameters
    ----------
    kind : {"rare", "noisy"}
    seed : int
    classes : tuple of superclass names (2 to 4)
    target : str, the superclass holding the slice (one with at least two fine classes)
    fine : str, the slice's fine class (a member of ``target``)
    strength : float, training share of the slice in its superclass (rare) or flip probability (noisy)
    share : float in (0, 0.5], the slice's share of the target superclass in validation and test
    flip_to : str or None (noisy only)
    n_train_per_class, n_val, min_test_slice, epochs : int
    """

    kind: str
    seed: int
    classes: tuple[str, ...]
    target: str
    fine: str
    strength: float
    share: float
    flip_to: str | None = None
    n_train_per_class: int = 800
    n_val: int = 500
    min_test_slice: int = 30
    epochs: int = 6

    def __post_init__(self):
        check_choice(self.kind, "kind", ("rare", "noisy"))
        check_positive_int(self.seed, "seed", minimum=0)
        classes = tuple(self.classes)
        for c in classes:
            check_choice(c, "classes item", list(SUPERCLASSES))
        if len(set(classes)) != len(classes) or len(classes) < 2:
            raise ValueError(f"classes: expected at least 2 distinct superclasses, got {classes!r}")
        object.__setattr__(self, "classes", classes)
        check_choice(self.target, "target", [c for c in classes if len(SUPERCLASSES[c]) > 1])
        check_choice(self.fine, "fine", [FINE_CLASSES[i] for i in SUPERCLASSES[self.target]])
        check_in_range(self.strength, "strength", 0.0, 1.0)
        if not 0 < float(self.share) <= 0.5:
            raise ValueError(f"share: expected a value in (0, 0.5], got {self.share!r}")
        if self.kind == "noisy":
            check_choice(self.flip_to, "flip_to", [c for c in classes if c != self.target])
        elif self.flip_to is not None:
            raise ValueError(f"flip_to: only for kind 'noisy', got {self.flip_to!r}")
        for name in ("n_train_per_class", "n_val", "min_test_slice", "epochs"):
            check_positive_int(getattr(self, name), name)

    @property
    def class_index(self) -> int:
        return self.classes.index(self.target)

    @property
    def group(self) -> str:
        return f"fashion {self.kind}"

    def to_dict(self) -> dict:
        d = asdict(self)
        d["classes"] = list(self.classes)
        d["dataset"] = "fashion-mnist"
        return d

    @property
    def fingerprint(self) -> str:
        return fingerprint({"spec": self.to_dict(), "bench": BENCH_VERSION})[:32]

    def describe(self) -> str:
        where = f"{self.target} that are {self.fine}"
        what = (
            f"fashion-mnist rare: {where} at {self.strength:.1%} of the superclass in training"
            if self.kind == "rare"
            else f"fashion-mnist noisy: {where}, training labels flipped to {self.flip_to} with p={self.strength:.2f}"
        )
        return f"{what}; {len(self.classes)} classes; slice share {self.share:.1%} in val/test; seed {self.seed}"

    def split_sizes(self) -> dict[str, tuple[int, int]]:
        s = self.share
        n_slice_val = max(3, int(round(s * self.n_val)))
        n_slice_test = max(self.min_test_slice, int(np.ceil(s * 600)))
        return {
            "val": (n_slice_val, self.n_val - n_slice_val),
            "test": (n_slice_test, int(round(n_slice_test * (1 - s) / s))),
        }


def draw_fashion_settings(n: int, seed: int = 0, *, share_range=(0.02, 0.25), **spec_kwargs) -> list[FashionSpec]:
    """``n`` Fashion-MNIST settings, ``rare`` and ``noisy`` in turn (draws as :func:`draw_settings`)."""
    n = check_positive_int(n, "n")
    rng = np.random.default_rng([seed, 77])
    names = list(SUPERCLASSES)
    out = []
    for i in range(n):
        kind = ("rare", "noisy")[i % 2]
        k = int(rng.integers(2, len(names) + 1))
        while True:
            classes = tuple(names[j] for j in sorted(rng.choice(len(names), k, replace=False)))
            targets = [c for c in classes if len(SUPERCLASSES[c]) > 1]
            if targets:
                break
        target = targets[int(rng.integers(len(targets)))]
        members = SUPERCLASSES[target]
        fine = FINE_CLASSES[members[int(rng.integers(len(members)))]]
        extra = {}
        if kind == "rare":
            strength = float(np.exp(rng.uniform(np.log(0.01), np.log(0.05))))
        else:
            strength = float(rng.uniform(0.5, 0.95))
            others = [c for c in classes if c != target]
            extra["flip_to"] = others[int(rng.integers(len(others)))]
        share = float(np.exp(rng.uniform(np.log(share_range[0]), np.log(share_range[1]))))
        out.append(
            FashionSpec(
                kind=kind,
                seed=int(rng.integers(0, 2**31 - 1)),
                classes=classes,
                target=target,
                fine=fine,
                strength=strength,
                share=share,
                **extra,
                **spec_kwargs,
            )
        )
    return out


def _as_rgb32(images: np.ndarray) -> np.ndarray:
    """uint8 (N, 28, 28) -> (N, 32, 32, 3): 2 px black border, grey repeated over the channels."""
    padded = np.pad(images, ((0, 0), (2, 2), (2, 2)))
    return np.repeat(padded[..., None], 3, axis=-1)


def _take(rng, pool: np.ndarray, n: int) -> np.ndarray:
    if n > len(pool):
        raise ValueError(f"not enough Fashion-MNIST images: {n} requested from a pool of {len(pool)}")
    return rng.choice(pool, n, replace=False)


def build_fashion_setting(
    spec: FashionSpec, *, cache: EmbeddingCache | None = None, vl=None, device=None, root=None
) -> Setting:
    """Train the setting's model (or load it from the cache) and compute what methods see (as
    :func:`~failwidgets.slices.settings.build_setting`)."""
    from failwidgets.slices import settings as _s

    if not isinstance(spec, FashionSpec):
        raise TypeError(f"spec: expected a FashionSpec, got {type(spec).__name__}")
    data = load_fashion_mnist(root)
    cache = EmbeddingCache() if cache is None else cache
    vl = _s._default_vl() if vl is None else vl
    t0, c0 = time.perf_counter(), time.process_time()
    parts = {
        "kind": "slicebench-fashion-setting",
        "spec": spec.fingerprint,
        "encoder": fingerprint(vl),
        "data": fingerprint(data["train"][1]),
    }
    key = cache.key(parts)
    arrays = cache.get(key)
    cached = arrays is not None
    if not cached:
        rng = np.random.default_rng([spec.seed, 5])
        tr_img, tr_lab = data["train"]
        slice_code = FINE_CLASSES.index(spec.fine)
        idx, labels = [], []
        for ci, c in enumerate(spec.classes):
            pool = np.flatnonzero(np.isin(tr_lab, SUPERCLASSES[c]))
            if c == spec.target and spec.kind == "rare":
                n_slice = int(round(spec.strength * spec.n_train_per_class))
                a = _take(rng, pool[tr_lab[pool] == slice_code], n_slice)
                b = _take(rng, pool[tr_lab[pool] != slice_code], spec.n_train_per_class - n_slice)
                chosen = np.concatenate([a, b])
            else:
                chosen = _take(rng, pool, spec.n_train_per_class)
            idx.append(chosen)
            labels.append(np.full(len(chosen), ci, np.int64))
        idx, labels = np.concatenate(idx), np.concatenate(labels)
        n_flipped = 0
        if spec.kind == "noisy":
            flip = (labels == spec.class_index) & (tr_lab[idx] == slice_code) & (rng.random(len(idx)) < spec.strength)
            labels = np.where(flip, spec.classes.index(spec.flip_to), labels)
            n_flipped = int(flip.sum())
        images = _as_rgb32(tr_img[idx])
        order = rng.permutation(len(idx))
        images, labels = images[order], labels[order]
        model = _fashion_model(spec, images, labels, cache, device)
        t_train = time.perf_counter() - t0
        ref = rng.choice(len(images), min(_s._N_REFERENCE, len(images)), replace=False)
        arrays = {
            "reference_embeddings": _s._vl_embeddings(vl, images[ref]),
            "n_train": np.array([len(labels)]),
            "n_flipped": np.array([n_flipped]),
        }
        # eval pool: the test split, then the training images not used for training
        unused = np.setdiff1d(np.arange(len(tr_lab)), idx)
        ev_img = np.concatenate([data["test"][0], tr_img[unused]])
        ev_lab = np.concatenate([data["test"][1], tr_lab[unused]])
        in_target = np.isin(ev_lab, SUPERCLASSES[spec.target])
        slice_pool = np.flatnonzero(in_target & (ev_lab == slice_code))
        rest_pool = np.flatnonzero(in_target & (ev_lab != slice_code))
        erng = np.random.default_rng([spec.seed, 6])
        for split in ("val", "test"):
            n_slice, n_rest = spec.split_sizes()[split]
            a, b = _take(erng, slice_pool, n_slice), _take(erng, rest_pool, n_rest)
            slice_pool, rest_pool = np.setdiff1d(slice_pool, a), np.setdiff1d(rest_pool, b)
            sel = np.concatenate([a, b])
            truth = np.concatenate([np.ones(len(a), bool), np.zeros(len(b), bool)])
            perm = erng.permutation(len(sel))
            imgs, truth = _as_rgb32(ev_img[sel[perm]]), truth[perm]
            probs, feats = _s._model_outputs(model, imgs)
            arrays.update(
                {
                    f"{split}_embeddings": _s._vl_embeddings(vl, imgs),
                    f"{split}_features": feats,
                    f"{split}_probs": probs,
                    f"{split}_truth": truth,
                }
            )
        arrays["seconds"] = np.array([time.perf_counter() - t0, 0.0, t_train, 0.0, time.process_time() - c0])
        cache.put(key, arrays, parts)
    return _s._as_setting(spec, arrays, cached, t0, c0)


def _fashion_model(spec: FashionSpec, images, labels, cache: EmbeddingCache, device):
    import torch

    from failwidgets.demo import TargetCNN
    from failwidgets.demo.training.targets import train_target

    parts = {"kind": "slicebench-fashion-target", "spec": spec.fingerprint, "trainer": "train_target"}
    key = cache.key(parts)
    state = cache.get(key)
    if isinstance(state, dict):
        model = TargetCNN(len(spec.classes), 1)
        model.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in state.items()})
        return model.eval()
    world = _TrainWorld(_TrainSplit(images, labels, 1), spec.classes, ["unused"])
    model = train_target(world, epochs=spec.epochs, attribute_weight=0.0, seed=spec.seed, device=device, progress=False)
    cache.put(key, {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()}, parts)
    return model.cpu().eval()
