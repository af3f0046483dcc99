"""Barlow features named in words: a rule reads ``feature[17] "snow, green" <= 0.36``.

A split feature of a Barlow tree is an index into a robust model's feature vector; its meaning is in its
top activating images (Singla et al. 2021 show them to annotators). Where a vision-language encoder is
given, the top images can be named in words: each vocabulary word scores

    score(w) = mean_{i in top(f)} cos(e_i, t_w) - mean_{i in all} cos(e_i, t_w)

with ``e_i`` the encoder's image embedding of image ``i``, ``t_w`` its text embedding of word ``w`` and
``top(f)`` the ``n_top`` images with the largest value of feature ``f``: how much more similar the
feature's top images are to the word than the images in general (the specificity correction of the
LaViSE word scoring, for similarities instead of counts; a word similar to every image scores ~ 0).
Up to ``max_words`` words with a positive score of at least ``min_ratio`` times the best are kept.

The confidence of a name is the AUROC with which the best word's similarity separates the top images
from the others (0.5: no better than chance; 1: every top image is more similar to the word than
every other image).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from failwidgets._validation import check_array, check_positive_int, check_same_length

__all__ = [
    "FeatureName",
    "name_features",
    "name_features_with_encoder",
    "split_features",
    "named_rule",
    "named_rules_frame",
]

_FEATURE = re.compile(r"feature\[(\d+)\]")


@dataclass(frozen=True)
class FeatureName:
    """Words for one feature.

    Attributes
    ----------
    feature : int, original feature index
    words : tuple of up to ``max_words`` str, best first
    scores : tuple of float, their scores (see the module docstring)
    confidence : float in [0, 1], AUROC of the best word's similarity, top images vs the rest
    top_images : ndarray (n_top,) int, the images the name was read from, most activating first
    """

    feature: int
    words: tuple
    scores: tuple
    confidence: float
    top_images: np.ndarray

    @property
    def label(self) -> str:
        """The words in quotes, e.g. ``'"snow, green"'`` (empty when no word scored above 0)."""
        return f'"{", ".join(self.words)}"' if self.words else ""


def _auroc(pos: np.ndarray, neg: np.ndarray) -> float:
    if not len(pos) or not len(neg):
        return float("nan")
    from scipy.stats import rankdata

    ranks = rankdata(np.concatenate([pos, neg]))
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def name_features(
    features: Any,
    image_embeddings: Any,
    word_embeddings: Any,
    vocabulary: Sequence[str],
    *,
    feature_indices: Sequence[int] | None = None,
    n_top: int = 25,
    max_words: int = 3,
    min_ratio: float = 0.5,
) -> dict[int, FeatureName]:
    """Name features by the words their top activating images are specifically similar to.

    Parameters
    ----------
    features : array (N, D), the feature values (e.g. the robust model's penultimate features)
    image_embeddings : array (N, E), a vision-language encoder's embeddings of the same N images
    word_embeddings : array (W, E), the encoder's text embeddings of ``vocabulary``
    vocabulary : the W candidate words
    feature_indices : which features to name (default: all D)
    n_top : top activating images per feature
    max_words : at most this many words per feature
    min_ratio : keep a word whose score is at least this fraction of the best word's

    Returns
    -------
    dict original feature index -> FeatureName
    """
    x = check_array(features, "features", ndim=2, dtype="float")
    img = check_array(image_embeddings, "image_embeddings", ndim=2, dtype="float")
    txt = check_array(word_embeddings, "word_embeddings", ndim=2, dtype="float", shape=(len(vocabulary), img.shape[1]))
    check_same_length(features=x, image_embeddings=img)
    n_top = min(check_positive_int(n_top, "n_top"), x.shape[0])
    max_words = check_positive_int(max_words, "max_words")
    if not (0.0 <= float(min_ratio) <= 1.0):
        raise ValueError(f"min_ratio: expected a fraction in [0, 1], got {min_ratio!r}")
    idx = (
        np.arange(x.shape[1])
        if feature_indices is None
        else check_array(feature_indices, "feature_indices", ndim=1, dtype="int")
    )
    if idx.size and (idx.min() < 0 or idx.max() >= x.shape[1]):
        raise ValueError(f"feature_indices: expected indices in [0, {x.shape[1]}), got {idx.min()}..{idx.max()}")

    def unit(a):
        return a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)

    sims = unit(img.astype(np.float64)) @ unit(txt.astype(np.float64)).T  # (N, W)
    base = sims.mean(0)
    out = {}
    for f in idx.tolist():
        top = np.argsort(-x[:, f], kind="stable")[:n_top]
        score = sims[top].mean(0) - base
        order = np.argsort(-score, kind="stable")
        best = score[order[0]]
        keep = [i for i in order[:max_words] if score[i] > 0 and score[i] >= min_ratio * best]
        rest = np.ones(x.shape[0], dtype=bool)
        rest[top] = False
        conf = _auroc(sims[top, order[0]], sims[rest, order[0]]) if keep else float("nan")
        out[int(f)] = FeatureName(
            int(f), tuple(vocabulary[i] for i in keep), tuple(float(score[i]) for i in keep), conf, top.astype(np.int64)
        )
    return out


def name_features_with_encoder(
    features: Any,
    image_embeddings: Any,
    encoder: Any,
    vocabulary: Sequence[str],
    *,
    template: str = "{}",
    **kwargs: Any,
) -> dict[int, FeatureName]:
    """:func:`name_features` with the word embeddings from ``encoder.encode_texts`` (the ``Encoder``
    protocol of :mod:`failwidgets.compute`); ``template`` wraps each word (e.g. ``"a photo of {}"``)."""
    words = [str(w) for w in vocabulary]
    txt = np.asarray(encoder.encode_texts([template.format(w) for w in words]), dtype=np.float32)
    return name_features(features, image_embeddings, txt, words, **kwargs)


def split_features(tree: Any) -> list[int]:
    """The original feature indices a tree splits on, in node order (a BarlowTree or a ClassTree)."""
    tree = getattr(tree, "tree", tree)
    feats = tree.node_structure()["feature"].to_numpy()
    return list(dict.fromkeys(int(f) for f in feats if f >= 0))


def named_rule(rule: str, names: Mapping[int, FeatureName] | None) -> str:
    """``rule`` with each ``feature[i]`` followed by its words: ``feature[17] "snow, green" <= 0.36``."""
    if not names:
        return rule

    def sub(m: re.Match) -> str:
        name = names.get(int(m.group(1)))
        return m.group(0) + (f" {name.label}" if name is not None and name.words else "")

    return _FEATURE.sub(sub, rule)


def named_rules_frame(frame: pd.DataFrame, names: Mapping[int, FeatureName] | None) -> pd.DataFrame:
    """A copy of a rules / nodes frame with its ``rule`` column named (:func:`named_rule`)."""
    out = frame.copy()
    out["rule"] = [named_rule(r, names) for r in out["rule"]]
    return out
