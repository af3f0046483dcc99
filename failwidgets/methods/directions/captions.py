"""Caption candidates and caption scores for failure directions (Jain et al. 2023, section 2.2, A.5).

Candidates follow "a photo of a {adjective} {noun} {phrase}" with optional adjective and phrase; the
reference caption of a class is "a photo of a {noun}". The score of caption ``c`` for a class's SVM is the
decision value of the preprocessed difference ``d(preprocess(emb(c) - emb(reference)))``: the most negative
captions describe the failure mode, the most positive the easy side.
"""

from __future__ import annotations

import itertools
from typing import Iterable, Sequence

import numpy as np

from failwidgets._validation import check_array
from failwidgets.methods.directions.geometry import preprocess

TEMPLATE = "a photo of a {adjective} {noun} {phrase}"


def _fill(template: str, **parts: str | None) -> str:
    return " ".join(template.format(**{k: v or "" for k, v in parts.items()}).split())


def reference_caption(noun: str, template: str = TEMPLATE) -> str:
    """The generic caption of a class, e.g. ``"a photo of a square"``."""
    return _fill(template, adjective=None, noun=noun, phrase=None)


def generate_captions(
    nouns: str | Sequence[str],
    adjectives: Iterable[str | None] = (None,),
    phrases: Iterable[str | None] = (None,),
    template: str = TEMPLATE,
    include_reference: bool = False,
) -> list[str]:
    """Every combination of adjective, noun and phrase (``None`` = part left out), without duplicates.

    Parameters
    ----------
    nouns : str or list of str
    adjectives, phrases : iterables of str or None
        Add ``None`` to keep captions without that part.
    include_reference : bool
        Keep the bare reference caption (adjective and phrase both absent) among the candidates.

    Returns
    -------
    list of str, in generation order.
    """
    nouns = [nouns] if isinstance(nouns, str) else list(nouns)
    out, seen = [], set()
    for noun, adj, phrase in itertools.product(nouns, list(adjectives), list(phrases)):
        if not include_reference and adj is None and phrase is None:
            continue
        cap = _fill(template, adjective=adj, noun=noun, phrase=phrase)
        if cap not in seen:
            seen.add(cap)
            out.append(cap)
    return out


def caption_scores(caption_embeddings, reference_embedding, mean, std, coef, intercept) -> np.ndarray:
    """Decision values of caption directions: ``w . preprocess(emb(c) - emb(ref)) + b``.

    Parameters
    ----------
    caption_embeddings : ndarray (M, D)
    reference_embedding : ndarray (D,)
    mean, std : ndarray (D,)
        Whitening statistics of the training split.
    coef : ndarray (D,), intercept : float
        The class's SVM.

    Returns
    -------
    ndarray (M,) float32; negative = failure-aligned.
    """
    caps = check_array(caption_embeddings, "caption_embeddings", ndim=2, dtype="float")
    ref = check_array(reference_embedding, "reference_embedding", shape=(caps.shape[1],), dtype="float")
    return (preprocess(caps - ref, mean, std) @ np.asarray(coef, np.float64) + intercept).astype(np.float32)


def caption_members(image_embeddings, caption_embedding, reference_embedding) -> np.ndarray:
    """The images a caption describes: more similar (cosine) to the caption than to the class's
    reference caption.

    Parameters
    ----------
    image_embeddings : ndarray (N, D), vision-language image embeddings (e.g. of one class's images)
    caption_embedding : ndarray (D,), the caption's text embedding
    reference_embedding : ndarray (D,), the text embedding of ``reference_caption(noun)``

    Returns
    -------
    bool ndarray (N,)
    """
    img = check_array(image_embeddings, "image_embeddings", ndim=2, dtype="float")
    cap = check_array(caption_embedding, "caption_embedding", shape=(img.shape[1],), dtype="float")
    ref = check_array(reference_embedding, "reference_embedding", shape=(img.shape[1],), dtype="float")
    unit = img / np.maximum(np.linalg.norm(img, axis=1, keepdims=True), 1e-12)
    cos = lambda v: unit @ (v / max(float(np.linalg.norm(v)), 1e-12))  # noqa: E731
    return cos(cap) > cos(ref)
