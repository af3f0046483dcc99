"""Hypotheses about where a model fails, checked on held-out data (widget-free).

A *slice* is a set of images; its evidence (:func:`~failwidgets.methods.slice_evidence`) is the error
rate inside versus outside it, each with a 95% Wilson confidence interval, and a two-sided Fisher exact
p-value.

A *hypothesis* is a phrase ("on snow") for one class: the phrase is embedded with the text side of a
vision-language encoder (``encoder.encode_texts``), the class's images are ranked by cosine similarity
to it, and the top fraction forms the slice. For encoders without a text side a hypothesis is a
metadata filter: a boolean ``pandas.DataFrame.eval`` expression over a metadata table
(``"background == 'snow'"``).

>>> ev = slice_evidence(inside, errors)                                          # doctest: +SKIP
>>> res = test_hypothesis("on snow", demo.vl, emb, labels, preds, class_index=0)  # doctest: +SKIP
>>> res.evidence.rate_inside, res.evidence.ci_inside, res.evidence.p_value       # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from failwidgets._validation import check_choice, check_in_range, check_labels, check_same_length, to_numpy
from failwidgets.methods._evidence import SliceEvidence, _as_mask, slice_evidence

__all__ = ["HypothesisResult", "test_hypothesis", "phrase_similarity", "phrase_similarity_rows", "embedding_norms"]


@dataclass(frozen=True)
class HypothesisResult:
    """What :func:`test_hypothesis` found.

    Attributes
    ----------
    phrase : str, the hypothesis (a phrase, or a metadata expression when ``kind == "metadata"``).
    kind : ``"text"`` or ``"metadata"``.
    class_index : int
    top_fraction : float (nan for a metadata hypothesis)
    threshold : float, similarity at or above which an image is in the slice (nan for metadata).
    evidence : SliceEvidence, on the held-out images of the class.
    slice_indices : int ndarray (K,), held-out images of the class inside the slice (most similar first).
    heldout_indices : int ndarray (M,), all held-out images of the class.
    n_matching : int, images of the class (all rows, not only held-out) in the slice.
    """

    phrase: str
    kind: str
    class_index: int
    top_fraction: float
    threshold: float
    evidence: SliceEvidence
    slice_indices: np.ndarray
    heldout_indices: np.ndarray
    n_matching: int

    def summary(self) -> str:
        what = f"{self.phrase!r}" + (
            f" (top {100 * self.top_fraction:.0f}% by similarity)" if self.kind == "text" else " (metadata filter)"
        )
        return f"{what}, class {self.class_index}, held-out: {self.evidence.summary()}"

    def to_dict(self) -> dict:
        return {
            "phrase": self.phrase,
            "kind": self.kind,
            "class_index": self.class_index,
            "top_fraction": self.top_fraction,
            "threshold": self.threshold,
            "evidence": self.evidence.to_dict(),
            "slice_indices": self.slice_indices.tolist(),
            "heldout_indices": self.heldout_indices.tolist(),
            "n_matching": self.n_matching,
        }


def phrase_similarity(
    phrase: str, encoder: Any, image_embeddings: Any, rows: Any = None, row_norms: Any = None
) -> np.ndarray:
    """Cosine similarity of image embeddings to a phrase embedded by ``encoder.encode_texts``.

    Parameters
    ----------
    phrase : str
    encoder : object with ``encode_texts(list[str]) -> ndarray (1, D)``.
    image_embeddings : ndarray (N, D), any float dtype (not copied as a whole).
    rows : int ndarray (K,), optional: only these rows.
    row_norms : ndarray (N,), optional: the L2 norms of all rows of ``image_embeddings``, computed once
        (e.g. by :func:`embedding_norms`) when many phrases are tested on the same embeddings.

    Returns
    -------
    ndarray float32 (K,) (or (N,))

    Raises
    ------
    NotImplementedError
        When the encoder has no text side.
    """
    if not isinstance(phrase, str) or not phrase.strip():
        raise ValueError(f"phrase: expected a non-empty string, got {phrase!r}")
    if encoder is None or not hasattr(encoder, "encode_texts"):
        raise NotImplementedError("encoder: has no text side (no encode_texts)")
    emb = to_numpy(image_embeddings, "image_embeddings")
    if emb.ndim != 2:
        raise ValueError(f"image_embeddings: expected an (N, D) array, got shape {emb.shape}")
    t = np.asarray(encoder.encode_texts([phrase]), dtype=np.float32).reshape(-1)
    if t.shape[0] != emb.shape[1]:
        raise ValueError(
            f"image_embeddings: expected dimension {t.shape[0]} (the encoder's text side), got {emb.shape[1]}"
        )
    t = (t / max(float(np.linalg.norm(t)), 1e-12)).astype(emb.dtype if emb.dtype.kind == "f" else np.float32)
    n = emb.shape[0]
    rows = None if rows is None else np.asarray(rows, dtype=np.int64)
    norms = None
    if row_norms is not None:
        norms = np.asarray(row_norms, dtype=np.float32)
        if norms.shape != (n,):
            raise ValueError(f"row_norms: expected shape ({n},) (one norm per embedding), got {norms.shape}")
    if rows is not None and rows.size > n // 4:  # most rows: one blocked pass over all, then pick
        sim = phrase_similarity_rows(emb, t, None, norms=norms)[rows]
    else:
        sim = phrase_similarity_rows(emb, t, rows, norms=None if norms is None else norms[rows])
    if not np.all(np.isfinite(sim)):
        bad = int(np.flatnonzero(~np.isfinite(sim))[0])
        raise ValueError(
            f"image_embeddings: non-finite values in row {bad if rows is None else int(np.asarray(rows)[bad])}"
        )
    return sim


def embedding_norms(embeddings: Any, block: int = 4096) -> np.ndarray:
    """L2 norm of every row of ``embeddings`` (N, D), float32 (N,), in blocks of rows (no full copy)."""
    emb = to_numpy(embeddings, "embeddings")
    if emb.ndim != 2:
        raise ValueError(f"embeddings: expected an (N, D) array, got shape {emb.shape}")
    out = np.empty(emb.shape[0], np.float32)
    for start in range(0, emb.shape[0], block):
        sub = emb[start : start + block].astype(np.float32, copy=False)
        out[start : start + block] = np.sqrt(np.einsum("ij,ij->i", sub, sub))
    return out


def phrase_similarity_rows(
    emb: np.ndarray, t: np.ndarray, rows: np.ndarray | None, block: int = 4096, norms: np.ndarray | None = None
) -> np.ndarray:
    """Cosine similarity (K,) of rows of ``emb`` (N, D) to the unit vector ``t`` (D,), in blocks of rows.

    Blocks keep each slice of ``emb`` in cache for both the dot products and the norms, and never copy
    more than one block (an (N, D) array may be gigabytes). ``norms`` (K,): precomputed row norms of
    the selected rows (then only the dot products are computed).
    """
    k = emb.shape[0] if rows is None else rows.size
    out = np.empty(k, np.float32)
    for start in range(0, k, block):
        stop = min(start + block, k)
        sub = emb[start:stop] if rows is None else emb[rows[start:stop]]
        if sub.dtype.kind != "f":
            sub = sub.astype(np.float32)
        nrm = np.sqrt(np.einsum("ij,ij->i", sub, sub)) if norms is None else norms[start:stop]
        out[start:stop] = (sub @ t) / np.maximum(nrm, 1e-12)
    return out


def test_hypothesis(
    phrase: str,
    encoder: Any,
    image_embeddings: Any,
    labels: Any,
    preds: Any,
    class_index: int,
    *,
    top_fraction: float = 0.2,
    heldout: Any = None,
    metadata: Any = None,
    grouping: str = "label",
    confidence: float = 0.95,
    random_state: int = 0,
    row_norms: Any = None,
) -> HypothesisResult:
    """Check a hypothesis ("the model fails on circles on snow") on held-out data.

    Parameters
    ----------
    phrase : str
        Embedded with ``encoder.encode_texts``; the class's images most similar to it (the top
        ``top_fraction``) are the slice. With an encoder without a text side (None, no
        ``encode_texts`` or one raising ``NotImplementedError``), ``phrase`` is a boolean
        ``DataFrame.eval`` expression over ``metadata``.
    encoder : vision-language encoder (``Encoder`` protocol) or None.
    image_embeddings : ndarray (N, D), the encoder's image embeddings (ignored for metadata hypotheses;
        may be None then).
    labels, preds : int ndarray (N,)
    class_index : int, the class whose images are ranked.
    top_fraction : float in (0, 1], share of the class's images in the slice.
    heldout : None, bool ndarray (N,) or float in (0, 1)
        Which rows the evidence is measured on. None: all rows (pass a held-out split, e.g. test data,
        when the phrase came from looking at the fitting data). A mask: the similarity threshold is the
        top-fraction quantile of the *other* rows of the class and the evidence is measured on the
        masked rows. A float: that share of the class's rows, drawn with ``random_state``, is held out.
    metadata : pandas.DataFrame with N rows, optional (needed for metadata hypotheses).
    grouping : ``"label"`` (images of the class) or ``"prediction"`` (images predicted as the class).
    confidence : float, level of the Wilson intervals.
    random_state : int, seed of the held-out draw when ``heldout`` is a float.
    row_norms : ndarray (N,), optional: precomputed norms of the image embeddings
        (:func:`embedding_norms`), so that testing many phrases costs one dot product per image each.

    Returns
    -------
    HypothesisResult
    """
    labels = check_labels(labels, "labels")
    preds = check_labels(preds, "preds")
    n = check_same_length(labels=labels, preds=preds)
    check_choice(grouping, "grouping", ["label", "prediction"])
    if isinstance(class_index, bool) or not isinstance(class_index, (int, np.integer)):
        raise TypeError(f"class_index: expected an integer class index, got {class_index!r}")
    group = np.flatnonzero((labels if grouping == "label" else preds) == int(class_index))
    if group.size == 0:
        raise ValueError(f"class_index: no images with {grouping} {int(class_index)}")
    errors = labels != preds

    # which rows of the group are held out, which set the threshold
    if heldout is None:
        held = np.ones(group.size, bool)
    elif isinstance(heldout, (float, np.floating)) and not isinstance(heldout, bool):
        frac = check_in_range(heldout, "heldout", 0.0, 1.0, inclusive=False)
        rng = np.random.default_rng(random_state)
        held = np.zeros(group.size, bool)
        held[rng.permutation(group.size)[: max(1, int(round(frac * group.size)))]] = True
    else:
        arr = to_numpy(heldout, "heldout")
        if arr.dtype != bool:
            raise TypeError(f"heldout: expected None, a float fraction or a boolean mask (N,), got dtype {arr.dtype}")
        held = _as_mask(arr, n, "heldout")[group]
        if not held.any():
            raise ValueError(f"heldout: no held-out images of class {int(class_index)}")
    ranking = ~held if (~held).any() else held

    text = encoder is not None and hasattr(encoder, "encode_texts")
    if text:
        check_in_range(top_fraction, "top_fraction", 0.0, 1.0)
        if top_fraction <= 0:
            raise ValueError(f"top_fraction: expected a value in (0, 1], got {top_fraction!r}")
        if image_embeddings is None:
            raise ValueError("image_embeddings: expected an (N, D) array for a text hypothesis, got None")
        emb = to_numpy(image_embeddings, "image_embeddings")
        if emb.ndim != 2 or emb.shape[0] != n:
            raise ValueError(f"image_embeddings: expected shape ({n}, D) (one row per label), got {emb.shape}")
        try:
            sim = phrase_similarity(phrase, encoder, emb, rows=group, row_norms=row_norms)
        except NotImplementedError:
            text = False
    if text:
        threshold = float(np.quantile(sim[ranking], 1.0 - float(top_fraction), method="higher"))
        in_slice = sim >= threshold
        kind, frac_out = "text", float(top_fraction)
        members = np.flatnonzero(in_slice & held)
        ordered = members[np.argsort(-sim[members], kind="stable")]  # most similar first
    else:
        in_slice = _metadata_slice(phrase, metadata, n)[group]
        kind, threshold, frac_out = "metadata", float("nan"), float("nan")
        ordered = np.flatnonzero(in_slice & held)
    ev = slice_evidence(in_slice[held], errors[group][held], confidence=confidence)
    return HypothesisResult(
        phrase=str(phrase),
        kind=kind,
        class_index=int(class_index),
        top_fraction=frac_out,
        threshold=threshold,
        evidence=ev,
        slice_indices=group[ordered].astype(np.int64),
        heldout_indices=group[held].astype(np.int64),
        n_matching=int(in_slice.sum()),
    )


test_hypothesis.__test__ = False  # not a pytest test when imported into a test module


def _metadata_slice(expression: str, metadata: Any, n: int) -> np.ndarray:
    import pandas as pd

    if not isinstance(expression, str) or not expression.strip():
        raise ValueError(f"phrase: expected a non-empty metadata expression, got {expression!r}")
    if metadata is None:
        raise ValueError(
            "metadata: the encoder has no text side, so the hypothesis is a metadata filter; "
            "expected a DataFrame with one row per image, got None"
        )
    if not isinstance(metadata, pd.DataFrame):
        raise TypeError(f"metadata: expected a pandas DataFrame, got {type(metadata).__name__}")
    if len(metadata) != n:
        raise ValueError(f"metadata: expected {n} rows (one per image), got {len(metadata)}")
    try:
        out = metadata.reset_index(drop=True).eval(expression)
    except Exception as exc:  # noqa: BLE001 -- pandas raises many kinds for a bad expression
        raise ValueError(
            f"phrase: could not evaluate {expression!r} on metadata columns {list(metadata.columns)}: {exc}"
        ) from exc
    out = np.asarray(out)
    if out.shape != (n,) or out.dtype != bool:
        raise ValueError(
            f"phrase: expected a boolean expression over metadata columns, got a result of "
            f"dtype {out.dtype} and shape {out.shape}"
        )
    return out
