"""2-D layouts of embeddings for the failure map: UMAP (umap-learn, optional extra ``[map]``) or PCA.

A layout is computed once and kept in the :class:`~failwidgets.compute.EmbeddingCache` like embeddings,
keyed by the method, its parameters and the fingerprint of the embeddings.

>>> xy = layout_2d(embeddings)                    # (N, 2) float32; UMAP when installed, else PCA  # doctest: +SKIP
>>> xy = layout_2d(embeddings, method="pca", cache=False)                                       # doctest: +SKIP
"""

from __future__ import annotations

import importlib.util
from typing import Any

import numpy as np

from failwidgets._validation import check_array, check_choice, check_positive_int

__all__ = ["layout_2d", "umap_available"]

_VERSION = 1  # bump when the computation of a layout changes, so old cache entries are not reused


def umap_available() -> bool:
    """Whether umap-learn is installed (``pip install failwidgets[map]``)."""
    return importlib.util.find_spec("umap") is not None


def layout_2d(
    embeddings: Any,
    method: str = "auto",
    cache: Any = None,
    *,
    n_neighbors: int = 15,
    min_dist: float = 0.1,
    metric: str = "cosine",
    random_state: int = 0,
    data_id: str | None = None,
    progress: bool = False,
) -> np.ndarray:
    """A 2-D layout of embeddings, cached.

    Parameters
    ----------
    embeddings : ndarray or tensor (N, D)
    method : ``"auto"`` (UMAP when umap-learn is installed, else PCA), ``"umap"`` or ``"pca"``.
    cache : EmbeddingCache, directory path, None (the default cache, see
        :class:`~failwidgets.compute.EmbeddingCache`) or False (no caching).
    n_neighbors, min_dist, metric : UMAP parameters (ignored by PCA).
    random_state : int, seed of UMAP's and PCA's randomness.
    data_id : str, optional
        Identity of the embeddings for the cache key; default: their fingerprint (hashes all bytes,
        about a second per GB).
    progress : bool, UMAP's verbose output.

    Returns
    -------
    ndarray float32 (N, 2)

    Raises
    ------
    ImportError
        ``method="umap"`` without umap-learn installed.
    """
    from failwidgets.compute.cache import as_cache, cached

    check_choice(method, "method", ["auto", "umap", "pca"])
    emb = check_array(embeddings, "embeddings", ndim=2, dtype="float", min_len=1)
    check_positive_int(n_neighbors, "n_neighbors", minimum=2)
    if method == "auto":
        method = "umap" if umap_available() else "pca"
    if method == "umap" and not umap_available():
        raise ImportError("method='umap' needs umap-learn: pip install 'failwidgets[map]' (or use method='pca')")
    params: dict[str, Any] = {"random_state": int(random_state)}
    if method == "umap":
        params.update(n_neighbors=int(n_neighbors), min_dist=float(min_dist), metric=str(metric))

    def compute() -> np.ndarray:
        return _umap(emb, progress=progress, **params) if method == "umap" else _pca(emb, **params)

    if cache is False:
        return compute()
    return np.asarray(
        cached(
            as_cache(cache, allow_none=False),
            compute,
            what="layout_2d",
            version=_VERSION,
            method=method,
            params=params,
            data=data_id if data_id is not None else emb,
            shape=list(emb.shape),
        ),
        dtype=np.float32,
    )


def _pca(emb: np.ndarray, random_state: int) -> np.ndarray:
    from sklearn.decomposition import PCA

    n, d = emb.shape
    out = np.zeros((n, 2), np.float32)
    k = min(2, n, d)
    if n >= 2 and k >= 1:
        out[:, :k] = PCA(n_components=k, random_state=random_state).fit_transform(emb)
    return out


def _umap(
    emb: np.ndarray, *, n_neighbors: int, min_dist: float, metric: str, random_state: int, progress: bool
) -> np.ndarray:
    n = emb.shape[0]
    if n <= 3:  # UMAP needs a few points; the PCA layout of so few is as good
        return _pca(emb, random_state)
    import umap

    reducer = umap.UMAP(
        n_components=2,
        n_neighbors=min(n_neighbors, n - 1),
        min_dist=min_dist,
        metric=metric,
        random_state=random_state,
        verbose=progress,
    )
    return np.asarray(reducer.fit_transform(emb), dtype=np.float32)
