"""Fashion-MNIST settings: read from idx files (here a small fake set written in the same format), with the
slice a fine class inside its superclass; without the files, a clear message instead."""

import gzip

import numpy as np
import pytest

from failwidgets.compute import EmbeddingCache
from failwidgets.slices.fashion import (
    FINE_CLASSES,
    SUPERCLASSES,
    FashionSpec,
    build_fashion_setting,
    draw_fashion_settings,
    fashion_mnist_available,
    load_fashion_mnist,
)


def _write_idx(path, array):
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


@pytest.fixture
def fake_fashion(tmp_path):
    """Fine class c drawn as a bright square whose size grows with c, plus noise (learnable, tiny)."""
    rng = np.random.default_rng(0)

    def images(labels):
        x = rng.integers(0, 40, (len(labels), 28, 28))
        for i, c in enumerate(labels):
            r = 3 + int(c)
            x[i, 14 - r : 14 + r, 14 - r : 14 + r] = 200
        return x

    for prefix, n in (("train", 3000), ("t10k", 1000)):
        labels = np.arange(n) % 10
        _write_idx(tmp_path / f"{prefix}-images-idx3-ubyte.gz", images(labels))
        _write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte.gz", labels)
    return tmp_path


def test_missing_files_give_a_message(tmp_path):
    assert not fashion_mnist_available(tmp_path)
    with pytest.raises(FileNotFoundError, match="dataset-fashion-mnist"):
        load_fashion_mnist(tmp_path)


def test_reads_idx_files(fake_fashion):
    data = load_fashion_mnist(fake_fashion)
    assert data["train"][0].shape == (3000, 28, 28) and data["test"][1].shape == (1000,)
    assert data["train"][1][:12].tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]


def test_drawn_specs_put_the_slice_inside_its_superclass():
    for spec in draw_fashion_settings(12, seed=1):
        assert FINE_CLASSES.index(spec.fine) in SUPERCLASSES[spec.target]
        assert spec.group == f"fashion {spec.kind}"
    with pytest.raises(ValueError, match="fine"):
        FashionSpec(kind="rare", seed=0, classes=("top", "bag"), target="top", fine="Sandal", strength=0.03, share=0.1)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["rare", "noisy"])
def test_tiny_setting_on_idx_files(fake_fashion, tmp_path, kind):
    extra = {"flip_to": "footwear"} if kind == "noisy" else {}
    spec = FashionSpec(
        kind=kind,
        seed=3,
        classes=("top", "footwear"),
        target="top",
        fine="Coat",
        strength=0.04 if kind == "rare" else 0.9,
        share=0.2,
        n_train_per_class=80,
        n_val=40,
        min_test_slice=8,
        epochs=1,
        **extra,
    )
    s = build_fashion_setting(spec, cache=EmbeddingCache(tmp_path / "cache"), root=fake_fashion)
    assert s.kind == f"fashion {kind}"
    assert len(s.val) == 40 and s.val_truth.sum() == 8
    assert s.test_truth.sum() == 120 and len(s.test) == 600  # max(min_test_slice, 20% of 600) slice images
    assert s.val.probs.shape == (40, 2) and s.val.embeddings.shape[1] == 50
    assert s.info["n_train"] == 160
    assert (s.info["n_flipped"] > 0) == (kind == "noisy")
