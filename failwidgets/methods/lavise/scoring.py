"""How the words of a filter are ranked: the paper's count, or a specificity-corrected PMI score.

LaViSE (Yang et al. 2022, Sec. 3.2) names filter ``u`` by counting, over its top ``p`` images, how often
each word is among the ``s`` words nearest to the explainer's output. A word that is near *every*
explainer output (a hub word of the word space, e.g. "large" / "small" when the vocabulary is a few
concept words) then tops the list of filter after filter: the count measures how likely the word is for
the filter's images, not how much more likely it is for them than for any image.

The corrected score (``scoring="pmi"``) subtracts that base rate, as CLIP-Dissect's concept scores do
(Oikarinen & Weng, ICLR 2023: ``log p(word | filter) - lambda log p(word)``). With

* ``c(u, w)`` -- the number of the filter's ``p`` top images whose ``s`` nearest words contain ``w``
  (the paper's count),
* ``n(w)`` -- the same number over ``M`` reference explainer outputs: random (image, filter) pairs of the
  explained data and layer (the outputs the explainer gives "for any image"),

the smoothed probabilities and the score are::

    p(w | u) = (c(u, w) + a) / (p + 2 a)
    p(w)     = (n(w) + a) / (M + 2 a)
    pmi(u, w) = p(w | u) * log(p(w | u) / p(w))          (a = 1: Laplace smoothing of two outcomes)

i.e. the word's pointwise mutual information with the filter, weighted by how often the filter's images
carry it (the word's term of the KL divergence between the filter's and the base word distributions).
Why this and not plain PMI or SoftWPMI: plain PMI (and CLIP-Dissect's SoftWPMI with ``lambda = 1``)
ranks a word seen on one of the 25 images above a word seen on 23 of them whenever the first word is
rare enough -- one lucky hit wins; the weight ``p(w | u)`` keeps the ranking on words the filter's
images actually share while a hub word (``p(w) ~ p(w | u) ~ 1``) scores ~ 0. It is TF-IDF-like:
``tf = p(w | u)``, ``idf = log(p(w | u) / p(w))``. CLIP-Dissect's soft ``p(word | filter)`` needs
per-image probabilities over the whole vocabulary; LaViSE gives a ranked list of ``s`` words per image,
so the counts are the statistic at hand.

Words the filter's images never carry (``c(u, w) = 0``) are not listed, under either scoring. Ties are
broken by the count, then by the summed cosine.
"""

from __future__ import annotations

import collections
from typing import Sequence

import numpy as np

from failwidgets._validation import check_array, check_choice, check_in_range

__all__ = ["WORD_SCORINGS", "word_hit_counts", "pmi_scores", "score_words", "top_word_share"]

#: The word scorings: the paper's count and the specificity-corrected PMI.
WORD_SCORINGS = ("count", "pmi")


def word_hit_counts(word_indices: np.ndarray, n_words: int) -> np.ndarray:
    """How many rows (images) carry each word among their nearest words.

    Parameters
    ----------
    word_indices : int array (..., p, s), vocabulary indices of each image's ``s`` nearest words
    n_words : int, the vocabulary size W

    Returns
    -------
    ndarray (..., W) int64: per leading index, the number of the ``p`` rows containing each word (a word
    repeated within one row counts once).
    """
    idx = check_array(word_indices, "word_indices", ndim=(2, 3), dtype="int")
    if idx.size and (idx.min() < 0 or idx.max() >= n_words):
        raise ValueError(f"word_indices: expected indices in [0, {n_words}), got {idx.min()}..{idx.max()}")
    lead = idx.shape[:-2]
    flat = idx.reshape(-1, idx.shape[-2], idx.shape[-1])
    present = np.zeros((flat.shape[0], flat.shape[1], n_words), dtype=bool)
    g, r = np.meshgrid(np.arange(flat.shape[0]), np.arange(flat.shape[1]), indexing="ij")
    present[g[..., None], r[..., None], flat] = True
    return present.sum(1).reshape(*lead, n_words).astype(np.int64)


def pmi_scores(
    counts: np.ndarray, p: int, prior_counts: np.ndarray, n_prior: int, *, smoothing: float = 1.0
) -> np.ndarray:
    """The specificity-corrected word score of every (filter, word) pair (see the module docstring).

    Parameters
    ----------
    counts : int array (U, W), ``c(u, w)``: of the filter's ``p`` top images, how many carry the word
    p : int, the number of top images per filter
    prior_counts : int array (W,), ``n(w)``: of ``n_prior`` reference explainer outputs, how many carry it
    n_prior : int, M
    smoothing : float > 0, ``a`` (Laplace: 1)

    Returns
    -------
    ndarray (U, W) float64: ``p(w|u) log(p(w|u) / p(w))`` with ``p(w|u) = (c + a) / (p + 2a)`` and
    ``p(w) = (n + a) / (M + 2a)``.
    """
    c = check_array(counts, "counts", ndim=2, dtype="int")
    n = check_array(prior_counts, "prior_counts", ndim=1, dtype="int", shape=(c.shape[1],))
    check_in_range(smoothing, "smoothing", 0.0, np.inf, inclusive=False)
    if int(p) < 1 or int(n_prior) < 1:
        raise ValueError(f"p, n_prior: expected positive counts of images, got p={p}, n_prior={n_prior}")
    if c.size and (c.min() < 0 or c.max() > p):
        raise ValueError(f"counts: expected counts in [0, p={p}], got {c.min()}..{c.max()}")
    if n.size and (n.min() < 0 or n.max() > n_prior):
        raise ValueError(f"prior_counts: expected counts in [0, n_prior={n_prior}], got {n.min()}..{n.max()}")
    a = float(smoothing)
    p_wu = (c + a) / (int(p) + 2 * a)
    p_w = (n + a) / (int(n_prior) + 2 * a)
    return p_wu * np.log(p_wu / p_w[None, :])


def score_words(
    word_indices: np.ndarray,
    word_cosines: np.ndarray,
    vocabulary: Sequence[str],
    *,
    scoring: str = "count",
    prior_indices: np.ndarray | None = None,
    smoothing: float = 1.0,
) -> list[list[tuple[str, float]]]:
    """Rank the words of every filter.

    Parameters
    ----------
    word_indices : int array (U, p, s), the ``s`` nearest vocabulary words of each of the filter's ``p``
        top images
    word_cosines : float array (U, p, s), their cosines (tie-break)
    vocabulary : the W words the indices point into
    scoring : ``"count"`` (the paper) or ``"pmi"`` (see the module docstring)
    prior_indices : int array (M, s), the nearest words of M reference explainer outputs (``"pmi"`` only)
    smoothing : float, ``a`` of :func:`pmi_scores`

    Returns
    -------
    list (U) of [(word, score), ...], best first; ``score`` is the count (int) for ``"count"`` and the
    PMI score (float) for ``"pmi"``. Only words that at least one of the filter's images carries.
    """
    check_choice(scoring, "scoring", WORD_SCORINGS)
    idx = check_array(word_indices, "word_indices", ndim=3, dtype="int")
    cos = check_array(word_cosines, "word_cosines", ndim=3, dtype="float", shape=idx.shape)
    w = len(vocabulary)
    counts = word_hit_counts(idx, w)  # (U, W)
    summed = np.zeros((idx.shape[0], w), dtype=np.float64)
    np.add.at(summed, (np.arange(idx.shape[0])[:, None, None], idx), cos)
    if scoring == "count":
        scores = counts.astype(np.float64)
    else:
        if prior_indices is None:
            raise ValueError("prior_indices: scoring='pmi' needs the nearest words of reference outputs, got None")
        prior = check_array(prior_indices, "prior_indices", ndim=2, dtype="int")
        scores = pmi_scores(
            counts, idx.shape[1], word_hit_counts(prior[None], w)[0], prior.shape[0], smoothing=smoothing
        )
    out = []
    for r in range(idx.shape[0]):
        seen = np.flatnonzero(counts[r])
        order = seen[np.lexsort((-summed[r, seen], -counts[r, seen], -scores[r, seen]))]
        if scoring == "count":
            out.append([(vocabulary[i], int(counts[r, i])) for i in order])
        else:
            out.append([(vocabulary[i], float(scores[r, i])) for i in order])
    return out


def top_word_share(top_words: Sequence[str | None]) -> tuple[float, str | None]:
    """The share of filters whose top word is the single most frequent top word, and that word.

    Parameters
    ----------
    top_words : per filter, its top word (None for a filter without words; counted in the total)

    Returns
    -------
    (share, word): ``share`` in [0, 1] (NaN for no filters); ties between most frequent words go to the
    word seen first.
    """
    words = list(top_words)
    if not words:
        return float("nan"), None
    counter = collections.Counter(w for w in words if w is not None)
    if not counter:
        return 0.0, None
    word, n = counter.most_common(1)[0]
    return n / len(words), word
