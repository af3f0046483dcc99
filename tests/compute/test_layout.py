"""layout_2d: PCA / UMAP layouts, cached by method, parameters and the embeddings' fingerprint."""

import numpy as np
import pytest
from sklearn.decomposition import PCA

from failwidgets.compute import EmbeddingCache
from failwidgets.compute.layout import layout_2d, umap_available


def _emb(n=120, d=10, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=6, size=(3, d))
    return (centres[rng.integers(0, 3, n)] + rng.normal(size=(n, d))).astype(np.float32)


def test_pca_layout_is_sklearns_pca_and_float32():
    emb = _emb()
    xy = layout_2d(emb, method="pca", cache=False)
    assert xy.shape == (120, 2) and xy.dtype == np.float32
    ref = PCA(n_components=2, random_state=0).fit_transform(emb)
    assert np.allclose(np.abs(xy), np.abs(ref), atol=1e-4)


def test_layout_is_cached_and_keyed_by_data_and_params(tmp_path, monkeypatch):
    cache = EmbeddingCache(tmp_path)
    emb = _emb()
    calls = []
    import failwidgets.compute.layout as mod

    real = mod._pca
    monkeypatch.setattr(mod, "_pca", lambda e, **kw: calls.append(1) or real(e, **kw))
    a = layout_2d(emb, method="pca", cache=cache)
    b = layout_2d(emb, method="pca", cache=cache)
    assert len(calls) == 1 and np.array_equal(a, b)
    layout_2d(emb + 1.0, method="pca", cache=cache)  # other data: computed again
    layout_2d(emb, method="pca", cache=cache, random_state=1)  # other params: again
    assert len(calls) == 3
    layout_2d(emb, method="pca", cache=cache, data_id="mine")
    layout_2d(emb * 5, method="pca", cache=cache, data_id="mine")  # same data_id: reused
    assert len(calls) == 4


def test_bad_inputs_and_tiny_inputs():
    with pytest.raises(ValueError, match="method"):
        layout_2d(_emb(), method="tsne", cache=False)
    with pytest.raises(ValueError, match="embeddings"):
        layout_2d(np.zeros(5), cache=False)
    with pytest.raises(ValueError, match="embeddings"):
        layout_2d(np.full((4, 3), np.nan), cache=False)
    assert layout_2d(np.ones((1, 4)), method="pca", cache=False).shape == (1, 2)
    assert layout_2d(np.arange(6.0)[:, None], method="pca", cache=False).shape == (6, 2)


@pytest.mark.slow
@pytest.mark.skipif(not umap_available(), reason="umap-learn not installed (extra [map])")
def test_umap_layout_separates_clusters(tmp_path):
    rng = np.random.default_rng(0)
    centres = rng.normal(scale=8, size=(3, 10))
    k = rng.integers(0, 3, 300)
    emb = (centres[k] + rng.normal(size=(300, 10))).astype(np.float32)
    xy = layout_2d(emb, method="umap", cache=EmbeddingCache(tmp_path), n_neighbors=10)
    assert xy.shape == (300, 2) and np.all(np.isfinite(xy))
    # every point's nearest layout neighbour is from its own cluster
    d = ((xy[:, None] - xy[None]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    assert np.mean(k[d.argmin(1)] == k) > 0.98
    assert layout_2d(emb, method="auto", cache=EmbeddingCache(tmp_path), n_neighbors=10) is not None
