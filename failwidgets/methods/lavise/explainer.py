"""LaViSE: explaining the filters of a CNN layer with words (Yang, Kim, Joo, CVPR 2022).

Pipeline
--------
1. :meth:`LaViSE.fit` trains an explainer head that maps masked features of one layer of a frozen target
   model into a word-embedding space (:mod:`failwidgets.compute.words`), with the hinge rank loss (Eq. 1)
   against the other training concepts. A fraction of the concepts can be held out to test discovery.
2. :meth:`LaViSE.explain` explains every filter ``u``: the top ``p`` images by the filter's maximum
   activation, the explainer applied to the filter-attended features (Sec. 3.2) -- or to one of the
   baselines: ``"original"`` image, ``"image_masking"``, ``"activation_masking"`` -- the ``s`` nearest
   words per image, counted over the images.
3. :meth:`LaViSE.evaluate` scores explanations against concept masks (IoU of activation masks above
   ``T_u``; a concept matches a filter when IoU > 0.04; recall@k), :func:`compare_groups` ranks filters
   by the difference in the share of qualified images between groups (bias analysis).

Unlike the authors' scripts: layer names are matched by equality, masks keep (H, W) order, thresholds
are computed from the data at hand, and any feature-map size works.

Example
-------
>>> lav = LaViSE(word_space=glove_space(alphabetic=True, max_words=50000))
>>> lav.fit_model(model, train_images, "trunk.3", {"grass": grass_masks})      # doctest: +SKIP
>>> ex = lav.explain(test_images, methods=("attention", "original"))           # doctest: +SKIP
>>> ex.to_frame()                                                               # doctest: +SKIP
>>> lav.save("explainer.json"); LaViSE.load("explainer.json", model=model)     # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator
from tqdm.auto import tqdm

from failwidgets._validation import (
    check_array,
    check_choice,
    check_in_range,
    check_positive_int,
    check_probability,
)
from failwidgets.methods._base import check_fitted
from failwidgets.methods.lavise.attention import (
    POOLINGS,
    _naive_attended_pooled,
    activation_masked_pooled,
    attended_pooled,
    masked_pooled,
    resize_masks,
    upsampled_maps,
)
from failwidgets.methods.lavise.evaluation import (
    activation_thresholds,
    filter_concept_iou,
    qualified_share,
    recall_at_k,
)
from failwidgets.methods.lavise.head import ExplainerHead, train_head
from failwidgets.methods.lavise.scoring import WORD_SCORINGS, score_words
from failwidgets.methods.results import Result

__all__ = ["LaViSE", "FilterExplanations", "FilterEvaluation", "METHODS", "compare_groups", "whole_image_masks"]

#: Layer name of explanations fitted on precomputed features without ``layer=``.
FEATURES_LAYER = "features"

#: Inference methods: filter attention and the paper's three baselines.
METHODS = ("attention", "original", "image_masking", "activation_masking")


def _check_feature_map(t: torch.Tensor, layer: str) -> torch.Tensor:
    if t.ndim != 4:
        raise ValueError(f"layer: {layer!r} must output a conv feature map (N, C, H, W), got shape {tuple(t.shape)}")
    return t.float()


def whole_image_masks(labels: Any, class_names: Sequence[str], image_size: tuple[int, int]) -> dict[str, np.ndarray]:
    """Concept masks for a classification dataset: the whole image is the mask of its class.

    Parameters
    ----------
    labels : int array (N,)
    class_names : the C concept words, one per class
    image_size : (H, W)

    Returns
    -------
    dict word -> bool ndarray (N, H, W)
    """
    from failwidgets._validation import check_labels

    labels = check_labels(labels, "labels", n_classes=len(class_names))
    if not isinstance(image_size, (tuple, list)) or len(image_size) != 2:
        raise ValueError(f"image_size: expected a pair (H, W) of integers >= 1, got {image_size!r}")
    h, w = (check_positive_int(v, "image_size") for v in image_size)
    return {
        str(name): np.broadcast_to((labels == c)[:, None, None], (len(labels), h, w)).copy()
        for c, name in enumerate(class_names)
    }


@dataclass(frozen=True)
class FilterExplanations(Result):
    """Words that explain the filters of one layer, per inference method.

    Immutable: :meth:`LaViSE.evaluate` returns a copy with ``iou`` filled in (inside a
    :class:`FilterEvaluation`). ``features`` stays in memory only (left out of :meth:`to_dict`).

    Attributes
    ----------
    layer : str
    filters : ndarray (U,) int, original filter indices
    methods : tuple of method names
    words : dict method -> list (U) of [(word, score), ...], best first; the score is the count of the
        paper (``scoring="count"``) or the specificity-corrected score (``"pmi"``, see
        :mod:`failwidgets.methods.lavise.scoring`)
    top_images : ndarray (U, p) int, indices into the explained dataset, most activating first
    top_activations : ndarray (U, p) float, their maximum activations
    activation_maps : ndarray (U, p, h, w) float, the filter's map on each top image
    thresholds : ndarray (d,) float, T_u for every filter of the layer
    max_activations : ndarray (N, d) float
    image_size : (H, W)
    train_concepts, heldout_concepts : list[str]
    p, s : top-p images per filter, s words per image
    iou : DataFrame (d, C) or None; set on the copy :meth:`LaViSE.evaluate` returns
    iou_threshold : a concept matches a filter when IoU > this
    features : Tensor (N, d, h, w) or None, the explained features (needed by :meth:`LaViSE.evaluate`)
    scoring : str, the scoring of ``words``
    word_hits : dict method -> (indices int (U, p, s), cosines float (U, p, s)), each top image's ``s``
        nearest vocabulary words (what both scorings rank; :meth:`rescore` re-ranks without the model)
    prior_hits : dict method -> int (M, s), the nearest words of M random (image, filter) pairs (the base
        rate of the ``"pmi"`` scoring)
    vocabulary : list[str], the words the indices point into
    """

    _transient = ("features",)

    layer: str
    filters: np.ndarray
    methods: tuple
    words: dict
    top_images: np.ndarray
    top_activations: np.ndarray
    activation_maps: np.ndarray
    thresholds: np.ndarray
    max_activations: np.ndarray
    image_size: tuple
    train_concepts: list
    heldout_concepts: list
    p: int
    s: int
    iou: pd.DataFrame | None = None
    iou_threshold: float = 0.04
    features: torch.Tensor | None = field(default=None, repr=False, compare=False)
    scoring: str = "count"
    word_hits: dict | None = field(default=None, repr=False, compare=False)
    prior_hits: dict | None = field(default=None, repr=False, compare=False)
    vocabulary: list | None = field(default=None, repr=False, compare=False)

    def rescore(self, scoring: str) -> FilterExplanations:
        """The same explanations with ``words`` ranked by ``scoring`` (``"count"`` or ``"pmi"``).

        Re-ranks the stored nearest-word hits; no model is run. Returns ``self`` when ``scoring`` is the
        current one.
        """
        check_choice(scoring, "scoring", WORD_SCORINGS)
        if scoring == self.scoring:
            return self
        if self.word_hits is None or self.vocabulary is None:
            raise ValueError("explanations: expected explanations that keep their word hits (from explain())")
        words = {
            m: score_words(
                *self.word_hits[m],
                self.vocabulary,
                scoring=scoring,
                prior_indices=None if self.prior_hits is None else self.prior_hits.get(m),
            )
            for m in self.methods
        }
        return replace(self, words=words, scoring=scoring)

    # -- lookups --------------------------------------------------------------------------------------
    def row(self, u: int) -> int:
        """Position of filter ``u`` (original index) in ``filters`` and the per-filter arrays."""
        hits = np.flatnonzero(self.filters == int(u))
        if not len(hits):
            raise ValueError(f"filter: {u} was not explained; explained filters: {self.filters[:10].tolist()} ...")
        return int(hits[0])

    def _method(self, method: str) -> str:
        return check_choice(method, "method", list(self.methods))

    def is_novel(self, word: str) -> bool:
        """True when ``word`` was not a training concept (discovered, not taught)."""
        return word not in set(self.train_concepts)

    def word_counts(self, u: int, method: str = "attention") -> list[tuple[str, int]]:
        """All (word, score) of filter ``u`` (original index), best first (the score: see ``scoring``)."""
        return list(self.words[self._method(method)][self.row(u)])

    def top_words(self, method: str = "attention", k: int = 5) -> list[list[str]]:
        """Per explained filter, its ``k`` top words."""
        return [[w for w, _ in ws[:k]] for ws in self.words[self._method(method)]]

    def filters_with_word(self, word: str, method: str = "attention", k: int = 5) -> list[int]:
        """Filters (original indices) whose top-``k`` words contain ``word``, best rank first."""
        hits = []
        for u, ws in zip(self.filters, self.top_words(method, k)):
            if word in ws:
                hits.append((ws.index(word), int(u)))
        return [u for _, u in sorted(hits)]

    def matches(self, u: int) -> list[tuple[str, float]]:
        """Concepts whose masks match filter ``u`` (IoU > threshold), best first; needs :meth:`LaViSE.evaluate`."""
        if self.iou is None:
            return []
        row = self.iou.loc[int(u)]
        row = row[row > self.iou_threshold].sort_values(ascending=False)
        return [(str(c), float(v)) for c, v in row.items()]

    def to_frame(self, method: str = "attention", k: int = 5) -> pd.DataFrame:
        """One row per filter: its top words, the novel ones among them, the top word's score."""
        rows = []
        for u, ws in zip(self.filters, self.words[self._method(method)]):
            top = [w for w, _ in ws[:k]]
            rows.append(
                {
                    "filter": int(u),
                    "words": ", ".join(top),
                    "novel": ", ".join(w for w in top if self.is_novel(w)),
                    "top_count": (int(ws[0][1]) if self.scoring == "count" else float(ws[0][1])) if ws else 0,
                    "threshold": float(self.thresholds[u]),
                }
            )
        return pd.DataFrame(rows)


class LaViSE(BaseEstimator):
    """Filter explanations in words (Yang et al. 2022), a scikit-learn estimator.

    The target model is a fit input, not a parameter (the library's rule, see DEVELOPERS.md):
    :meth:`fit_model` computes the layer's features and trains the explainer head; :meth:`fit` trains it
    on precomputed features. The model and layer given to :meth:`fit_model` (or :meth:`load`) are kept as
    ``model_`` and ``layer_`` so that :meth:`explain` can compute features of new images.

    Parameters
    ----------
    word_space : WordSpace, optional
        The semantic space and candidate vocabulary. Default: GloVe 6B 50-d with the vocabulary
        restricted to the 50 000 most frequent alphabetic words (the space keeps all 400k words),
        loaded by ``fit`` into ``word_space_`` (the parameter stays None).
    holdout_fraction : float
        Fraction of the concepts held out of training (paper: 0.3), drawn with ``random_state``.
    holdout : sequence of str, optional
        Explicit held-out concepts (overrides ``holdout_fraction``).
    margin, lr, epochs, batch_size, hidden_dim, dropout :
        Explainer training (Eq. 1 margin 1, Adam lr 1e-4 in the paper).
    p, s : int
        Top-p images per filter, s words per image (paper 25 and 5).
    word_scoring : {"count", "pmi"}
        How a filter's words are ranked: ``"count"`` (default) is the paper's (how many of the top-p
        images have the word among their s nearest); ``"pmi"`` corrects the count for how likely the word
        is for any explainer output (:mod:`failwidgets.methods.lavise.scoring`). The count stays the
        default: the corrected score did not beat its recall on every split measured
        (``benchmarks/bench_word_scoring.py``). Both are kept: :meth:`FilterExplanations.rescore` switches.
    prior_pairs : int
        M, the random (image, filter) pairs whose nearest words give the base rate of ``"pmi"``.
    quantile : float
        T_u is the top ``quantile`` of the filter's activations (0.005).
    iou_threshold : float
        A concept matches a filter when IoU > this (0.04).
    attention_pooling : {"reweight", "spatial"}
        How filter attention pools the attended maps for the explainer: ``"reweight"`` is the paper's
        ``a(F_u, F_k) F_k`` averaged over the map; ``"spatial"`` is the authors' released code, u's
        normalised map as a spatial attention. See :mod:`failwidgets.methods.lavise.attention`.
    feature_batch_size : int
    device : str or torch.device, optional
    random_state : int
    progress : bool

    Attributes
    ----------
    head_ : ExplainerHead
    word_space_ : WordSpace, the space the head was trained against
    model_ : torch.nn.Module or None, the target model (None when fitted on features only)
    layer_ : str, the explained layer (``"features"`` when fitted on features without ``layer=``)
    concepts_ : list[str], all concepts given to fit
    train_concepts_, heldout_concepts_ : list[str]
    n_filters_ : int, d
    feature_size_ : (h, w) of the training features
    n_pairs_ : int, number of (image, concept) training pairs
    loss_history_ : list[float], mean loss per epoch
    """

    def __init__(
        self,
        word_space: Any = None,
        *,
        holdout_fraction: float = 0.0,
        holdout: Sequence[str] | None = None,
        margin: float = 1.0,
        lr: float = 1e-4,
        epochs: int = 30,
        batch_size: int = 64,
        hidden_dim: int | None = None,
        dropout: float = 0.1,
        p: int = 25,
        s: int = 5,
        word_scoring: str = "count",
        prior_pairs: int = 2048,
        quantile: float = 0.005,
        iou_threshold: float = 0.04,
        attention_pooling: str = "reweight",
        feature_batch_size: int = 64,
        device: Any = None,
        random_state: int = 0,
        progress: bool = True,
    ) -> None:
        self.word_space = word_space
        self.holdout_fraction = holdout_fraction
        self.holdout = holdout
        self.margin = margin
        self.lr = lr
        self.epochs = epochs
        self.batch_size = batch_size
        self.hidden_dim = hidden_dim
        self.dropout = dropout
        self.p = p
        self.s = s
        self.word_scoring = word_scoring
        self.prior_pairs = prior_pairs
        self.quantile = quantile
        self.iou_threshold = iou_threshold
        self.attention_pooling = attention_pooling
        self.feature_batch_size = feature_batch_size
        self.device = device
        self.random_state = random_state
        self.progress = progress

    # -- helpers --------------------------------------------------------------------------------------
    def _resolve_space(self):
        """The word space to train against: the parameter, or the default GloVe space (parameter untouched)."""
        if self.word_space is not None:
            return self.word_space
        from failwidgets.compute.words import glove_space

        return glove_space(alphabetic=True, max_words=50000)

    def features(self, images: Any, *, cache: Any = None, data_id: str | None = None) -> torch.Tensor:
        """The explained layer's feature maps for ``images``: Tensor (N, d, h, w) float32 on the CPU.

        Needs ``model_`` (set by :meth:`fit_model` or :meth:`load`). With ``cache`` (an
        :class:`~failwidgets.compute.EmbeddingCache`) the maps are stored under the model's weights,
        the layer and ``data_id`` (default: a hash of the images).
        """
        if getattr(self, "model_", None) is None:
            self.check_fitted()
            raise ValueError(
                "images: this LaViSE has no model (it was fitted on features); pass features= "
                "instead, or use fit_model() / LaViSE.load(..., model=)"
            )
        return compute_features(
            self.model_,
            images,
            self.layer_,
            cache=cache,
            data_id=data_id,
            batch_size=self.feature_batch_size,
            device=self.device,
            progress=self.progress,
        )

    def _given_features(self, features: Any, images: Any, layer: str) -> torch.Tensor:
        if features is None:
            if images is None:
                raise ValueError("images: expected images (or features=) to explain, got None")
            return self.features(images)
        t = torch.as_tensor(check_array(features, "features", ndim=(2, 3, 4, 5), dtype="float"))
        return _check_feature_map(t, layer)

    def check_fitted(self) -> None:
        """Raise ``NotFittedError`` unless :meth:`fit`, :meth:`fit_model` or :meth:`load` has run."""
        check_fitted(self, "head_")

    def _check_masks(
        self, concept_masks: Mapping[str, Any], n: int, size: tuple[int, int] | None, name: str = "concept_masks"
    ) -> dict[str, np.ndarray]:
        if not isinstance(concept_masks, Mapping) or not concept_masks:
            raise TypeError(f"{name}: expected a non-empty dict concept word -> bool masks (N, H, W)")
        out = {}
        for c, m in concept_masks.items():
            arr = check_array(m, f"{name}[{c!r}]", ndim=3, dtype="bool")
            if arr.shape[0] != n:
                raise ValueError(f"{name}[{c!r}]: expected {n} masks (one per image), got {arr.shape[0]}")
            if size is not None and tuple(arr.shape[1:]) != tuple(size):
                raise ValueError(
                    f"{name}[{c!r}]: expected masks of the image size (H, W) = {tuple(size)}, "
                    f"got {tuple(arr.shape[1:])}"
                )
            out[str(c)] = arr
        return out

    @staticmethod
    def _image_size(images: Any) -> tuple[int, int] | None:
        if images is None:
            return None
        from failwidgets.compute import as_image_tensor

        if hasattr(images, "identity") and hasattr(images, "image"):  # an image source: read one image
            h, w = images.image(0).shape[:2]
            return int(h), int(w)
        t = as_image_tensor(images)
        return int(t.shape[2]), int(t.shape[3])

    # -- training -------------------------------------------------------------------------------------
    def fit_model(
        self,
        model: torch.nn.Module,
        images: Any,
        layer: str,
        concept_masks: Mapping[str, Any],
        *,
        cache: Any = None,
        data_id: str | None = None,
    ) -> LaViSE:
        """Compute ``layer``'s features of ``model`` on ``images`` and train the explainer head (:meth:`fit`).

        Parameters
        ----------
        model : torch.nn.Module
            The frozen target model (never trained here); kept as ``model_``.
        images : float tensor (N, 3, H, W) in [0, 1] or uint8 (N, H, W, 3), the reference dataset
        layer : str
            Exact name of a module in ``model.named_modules()`` whose output is a conv map (N, d, h, w).
        concept_masks : dict concept word -> bool array (N, H, W)
            The pixels of each concept in each image (all False where absent). For a classification
            dataset use :func:`whole_image_masks`.
        cache : EmbeddingCache, optional
            Store / reuse the layer's features (key: the model's weights, the layer, ``data_id``).
        data_id : str, optional
            Identity of ``images`` for the cache key (default: a hash of the images).

        Returns
        -------
        self
        """
        feats = compute_features(
            model,
            images,
            layer,
            cache=cache,
            data_id=data_id,
            batch_size=self.feature_batch_size,
            device=self.device,
            progress=self.progress,
        )
        self.fit(feats, concept_masks, layer=layer, image_size=self._image_size(images))
        self.model_ = model
        return self

    def fit(
        self,
        features: Any,
        concept_masks: Mapping[str, Any],
        *,
        layer: str | None = None,
        image_size: tuple[int, int] | None = None,
    ) -> LaViSE:
        """Train the explainer head on precomputed features of (image, concept, mask) triples.

        Parameters
        ----------
        features : array (N, d, h, w)
            Feature maps of the explained layer on the reference dataset.
        concept_masks : dict concept word -> bool array (N, H, W)
            The pixels of each concept in each image (all False where absent).
        layer : str, optional
            Name of the layer the features come from (labels the explanations; default ``"features"``).
        image_size : (H, W), optional
            When given, every mask must have this size.

        Returns
        -------
        self
        """
        check_probability(self.holdout_fraction, "holdout_fraction")
        check_positive_int(self.epochs, "epochs")
        check_positive_int(self.batch_size, "batch_size", minimum=2)
        check_in_range(self.margin, "margin", 0.0, np.inf)
        layer = FEATURES_LAYER if layer is None else str(layer)
        if features is None:
            raise ValueError(
                "features: expected the layer's feature maps (N, d, h, w), got None; "
                "use fit_model(model, images, layer, concept_masks) to compute them"
            )
        feats = self._given_features(features, None, layer)
        space = self._resolve_space()
        n = feats.shape[0]
        masks = self._check_masks(concept_masks, n, image_size)
        concepts = list(masks)
        space.rows(concepts, name="concept_masks")  # every concept must be in the word space

        rng = np.random.default_rng(self.random_state)
        if self.holdout is not None:
            unknown = [c for c in self.holdout if c not in masks]
            if unknown:
                raise ValueError(f"holdout: concepts {unknown} are not keys of concept_masks")
            held = [c for c in concepts if c in set(self.holdout)]
        else:
            n_held = int(round(self.holdout_fraction * len(concepts)))
            held = sorted(rng.choice(concepts, size=n_held, replace=False).tolist()) if n_held else []
        train = [c for c in concepts if c not in set(held)]
        if len(train) < 2:
            raise ValueError(
                f"concept_masks: expected at least 2 training concepts after the holdout, got {len(train)}"
            )

        h, w = feats.shape[2:]
        inputs, targets = [], []
        for j, c in enumerate(train):
            m = torch.from_numpy(masks[c])
            present = m.flatten(1).any(1)
            if not present.any():
                continue
            small = resize_masks(m[present], (h, w))
            inputs.append(masked_pooled(feats[present], small))
            targets.append(torch.full((int(present.sum()),), j, dtype=torch.long))
        if not inputs:
            raise ValueError("concept_masks: every training mask is empty; expected some concept pixels")
        x = torch.cat(inputs)
        y = torch.cat(targets)
        vecs = torch.from_numpy(space.embed(train))

        torch.manual_seed(self.random_state)
        self.head_ = ExplainerHead(feats.shape[1], space.dim, self.hidden_dim, self.dropout)
        self.loss_history_ = train_head(
            self.head_,
            x,
            y,
            vecs,
            margin=self.margin,
            lr=self.lr,
            epochs=self.epochs,
            batch_size=self.batch_size,
            seed=self.random_state,
            progress=self.progress,
        )
        self.word_space_ = space
        self.model_ = None
        self.layer_ = layer
        self.concepts_ = concepts
        self.train_concepts_ = train
        self.heldout_concepts_ = held
        self.n_filters_ = int(feats.shape[1])
        self.feature_size_ = (int(h), int(w))
        self.n_pairs_ = int(len(x))
        return self

    @torch.no_grad()
    def embed(self, pooled: Any) -> np.ndarray:
        """Explainer outputs (unit vectors) for pooled features: (M, d) -> ndarray (M, D)."""
        self.check_fitted()
        x = torch.as_tensor(check_array(pooled, "pooled", ndim=2, dtype="float", shape=(None, self.n_filters_)))
        self.head_.eval()
        out = torch.cat([self.head_(x[i : i + 8192]) for i in range(0, len(x), 8192)]) if len(x) else x
        return torch.nn.functional.normalize(out, dim=1).numpy()

    # -- inference ------------------------------------------------------------------------------------
    def _method_inputs(
        self, method: str, feats: torch.Tensor, img: torch.Tensor, flt: torch.Tensor, thr: torch.Tensor, images: Any
    ) -> torch.Tensor:
        if method == "attention":
            return attended_pooled(feats, img, flt, pooling=self.attention_pooling)
        if method == "original":
            return feats[img].mean(dim=(2, 3))
        if method == "activation_masking":
            return activation_masked_pooled(feats, img, flt, thr)
        # image masking: zero the pixels where the upsampled activation map is below T_u, then re-run
        from failwidgets.compute import as_image_tensor

        if images is None:
            raise ValueError("images: the 'image_masking' baseline needs the images, got None")
        x = as_image_tensor(images)
        size = (x.shape[2], x.shape[3])
        out = []
        for start in range(0, len(img), 512):
            i, u = img[start : start + 512], flt[start : start + 512]
            maps = upsampled_maps(feats[i, u], size)
            keep = (maps > thr[u][:, None, None]).float()[:, None]
            masked = x[i] * keep
            out.append(self.features(masked).mean(dim=(2, 3)))
        return torch.cat(out)

    def explain(
        self,
        images: Any = None,
        *,
        features: Any = None,
        filters: Sequence[int] | None = None,
        methods: Sequence[str] = ("attention",),
        p: int | None = None,
        s: int | None = None,
        naive: bool = False,
    ) -> FilterExplanations:
        """Explain the filters of the layer with words.

        Parameters
        ----------
        images : images (N, ...) of the dataset to explain on (target dataset)
        features : array (N, d, h, w), optional, precomputed features of ``images``
        filters : original filter indices to explain (default: all d)
        methods : subset of :data:`METHODS`
        p, s : override the estimator's top-p images / s words per image
        naive : use the per-filter reference loop for filter attention (slow; for checks/benchmarks)

        Returns
        -------
        FilterExplanations
        """
        self.check_fitted()
        methods = (methods,) if isinstance(methods, str) else tuple(methods)  # one method may be given as a str
        for m in methods:
            check_choice(m, "methods", METHODS)
        p = check_positive_int(self.p if p is None else p, "p")
        s = check_positive_int(self.s if s is None else s, "s")
        check_in_range(self.quantile, "quantile", 0.0, 1.0, inclusive=False)
        check_choice(self.attention_pooling, "attention_pooling", list(POOLINGS))
        check_choice(self.word_scoring, "word_scoring", WORD_SCORINGS)
        n_prior = check_positive_int(self.prior_pairs, "prior_pairs")
        feats = self._given_features(features, images, self.layer_)
        if feats.shape[1] != self.n_filters_:
            raise ValueError(f"features: expected {self.n_filters_} filters (as in fit), got {feats.shape[1]}")
        size = self._image_size(images)
        n, d = feats.shape[:2]
        if filters is None:
            flt_idx = np.arange(d)
        else:
            flt_idx = check_array(filters, "filters", ndim=1, dtype="int", min_len=1)
            if flt_idx.size and (flt_idx.min() < 0 or flt_idx.max() >= d):
                raise ValueError(f"filters: expected indices in [0, {d}), got {flt_idx.min()}..{flt_idx.max()}")
        p = min(p, n)
        thresholds = activation_thresholds(feats, self.quantile)
        max_act = feats.amax(dim=(2, 3))  # (N, d)
        top_val, top_img = torch.topk(max_act[:, torch.as_tensor(flt_idx)].T, p, dim=1)  # (U, p)
        img = top_img.reshape(-1)
        flt = torch.as_tensor(flt_idx).repeat_interleave(p)
        thr = torch.from_numpy(thresholds)
        space = self.word_space_
        # reference outputs for the base rate of a word: random (image, filter) pairs of the whole layer
        rng = np.random.default_rng(self.random_state)
        prior_img = torch.as_tensor(rng.integers(0, n, n_prior))
        prior_flt = torch.as_tensor(rng.integers(0, d, n_prior))

        words: dict[str, list] = {}
        hits: dict[str, tuple] = {}
        prior_hits: dict[str, np.ndarray] = {}
        for method in tqdm(methods, desc="LaViSE methods", disable=not self.progress or len(methods) < 2, leave=False):
            if method == "original":  # same input for every filter: embed each distinct image once
                uniq, inv = torch.unique(img, return_inverse=True)
                emb = self.embed(feats[uniq].mean(dim=(2, 3)))
                idx, val = space.nearest(emb, s)
                idx, val = idx[inv.numpy()], val[inv.numpy()]
            else:
                if method == "attention" and naive:
                    x = _naive_attended_pooled(feats, img, flt, self.attention_pooling)
                else:
                    x = self._method_inputs(method, feats, img, flt, thr, images)
                idx, val = space.nearest(self.embed(x), s)
            idx = idx.reshape(len(flt_idx), p, -1)
            val = val.reshape(len(flt_idx), p, -1)
            if method == "original":
                prior_x = feats[prior_img].mean(dim=(2, 3))
            else:
                prior_x = self._method_inputs(method, feats, prior_img, prior_flt, thr, images)
            prior_hits[method] = space.nearest(self.embed(prior_x), s)[0]
            hits[method] = (idx, val)
            words[method] = score_words(
                idx, val, space.vocabulary, scoring=self.word_scoring, prior_indices=prior_hits[method]
            )

        return FilterExplanations(
            layer=self.layer_,
            filters=flt_idx.astype(np.int64),
            methods=methods,
            words=words,
            top_images=top_img.numpy().astype(np.int64),
            top_activations=top_val.numpy().astype(np.float32),
            activation_maps=feats[top_img.reshape(-1), flt].reshape(len(flt_idx), p, *feats.shape[2:]).numpy(),
            thresholds=thresholds,
            max_activations=max_act.numpy(),
            image_size=size if size is not None else tuple(feats.shape[2:]),
            train_concepts=list(self.train_concepts_),
            heldout_concepts=list(self.heldout_concepts_),
            p=p,
            s=s,
            iou_threshold=self.iou_threshold,
            features=feats,
            scoring=self.word_scoring,
            word_hits=hits,
            prior_hits=prior_hits,
            vocabulary=list(space.vocabulary),
        )

    # -- evaluation -----------------------------------------------------------------------------------
    def evaluate(
        self, explanations: FilterExplanations, concept_masks: Mapping[str, Any], ks: Sequence[int] = (5, 10, 20)
    ) -> FilterEvaluation:
        """Score explanations against concept masks of the explained dataset (Table 2 protocol).

        ``explanations`` is not changed: the result holds a copy with ``iou`` (DataFrame (d, C)) filled in.

        Returns
        -------
        FilterEvaluation
            ``explanations`` (the copy with IoU), ``recall`` (DataFrame methods x k),
            ``n_matched_filters`` (filters with >= 1 matching concept), ``novel_hits`` (tuple of
            (filter, word): a held-out concept among the filter's top-``ks[0]`` attention words that
            matches the filter by IoU) and ``n_novel_filters``.
        """
        self.check_fitted()
        if not isinstance(explanations, FilterExplanations):
            raise TypeError(f"explanations: expected FilterExplanations, got {type(explanations).__name__}")
        threshold = check_in_range(self.iou_threshold, "iou_threshold", 0.0, 1.0)
        ks = tuple(check_positive_int(k, "ks") for k in ks)
        if not ks:
            raise ValueError("ks: expected at least one k, got none")
        feats = explanations.features
        if feats is None:
            raise ValueError("explanations: expected explanations that keep their features (from explain())")
        masks = self._check_masks(concept_masks, feats.shape[0], explanations.image_size)
        self.word_space_.rows(list(masks), name="concept_masks")
        cm = torch.from_numpy(np.stack(list(masks.values())))
        iou = filter_concept_iou(feats, explanations.thresholds, cm)
        scored = replace(explanations, iou=pd.DataFrame(iou, columns=list(masks)), iou_threshold=threshold)
        matches = [set(c for c, _ in scored.matches(u)) for u in scored.filters]
        recall = pd.DataFrame(
            {f"recall@{k}": [recall_at_k(scored.top_words(m, k), matches, k) for m in scored.methods] for k in ks},
            index=list(scored.methods),
        )
        held = set(scored.heldout_concepts)
        novel = []
        if "attention" in scored.methods:
            for u, ws, ms in zip(scored.filters, scored.top_words("attention", ks[0]), matches):
                novel += [(int(u), w) for w in ws if w in held and w in ms]
        return FilterEvaluation(
            explanations=scored,
            recall=recall,
            n_matched_filters=int(sum(bool(m) for m in matches)),
            novel_hits=tuple(novel),
            n_novel_filters=len({u for u, _ in novel}),
        )

    # -- persistence ----------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike, *, metadata: Mapping[str, Any] | None = None) -> Path:
        """Write the fitted explainer: ``<stem>.json`` (parameters, fitted attributes) and
        ``<stem>.safetensors`` (the head's weights). No pickle; the model and the word space are not stored
        (their identities are: the word space's fingerprint is checked by :meth:`load`).

        Parameters
        ----------
        path : the JSON file to write (its ``.safetensors`` sibling is written next to it)
        metadata : extra JSON-serialisable entries (provenance, fingerprints of the data) stored at the top
            level; ``metadata["fingerprints"]`` is merged with the word space's fingerprint

        Returns
        -------
        Path of the JSON file.
        """
        from safetensors.torch import save as safetensors_bytes

        from failwidgets.methods.results import fitted_paths, write_fitted

        self.check_fitted()
        path, weights = fitted_paths(path)
        params = {k: v for k, v in self.get_params().items() if k != "word_space"}
        params["device"] = None if params["device"] is None else str(params["device"])
        if params["holdout"] is not None:
            params["holdout"] = [str(c) for c in params["holdout"]]
        extra = dict(metadata or {})
        fingerprints = {**dict(extra.pop("fingerprints", {}) or {}), "word_space": self.word_space_.fingerprint}
        info = {
            "format": "failwidgets.LaViSE/1",
            "layer": self.layer_,
            "file": weights.name,
            "params": params,
            "hidden_dim": self.hidden_dim,
            "in_dim": self.n_filters_,
            "word_dim": int(self.word_space_.dim),
            "feature_size": list(self.feature_size_),
            "concepts": list(self.concepts_),
            "train_concepts": list(self.train_concepts_),
            "heldout_concepts": list(self.heldout_concepts_),
            "n_pairs": int(self.n_pairs_),
            "loss_history": [float(x) for x in self.loss_history_],
            **extra,
            "fingerprints": fingerprints,
        }
        head = {k: v.detach().cpu().contiguous() for k, v in self.head_.state_dict().items()}
        return write_fitted(path, safetensors_bytes(head), info)

    @classmethod
    def load(
        cls, path: str | os.PathLike, *, model: torch.nn.Module | None = None, word_space: Any = None, **params: Any
    ) -> LaViSE:
        """A fitted LaViSE from :meth:`save`'s files (no training).

        Parameters
        ----------
        path : the JSON file (or its stem); the weights file is the one it names
        model : the target model the head was trained on (kept as ``model_``; needed to explain images
            without ``features=``)
        word_space : the word space it was trained against (default: GloVe as in :class:`LaViSE`); refused
            when its fingerprint differs from the stored one
        **params : parameters to override (e.g. inference ``p``, ``s``, ``quantile``, ``device``, ``progress``)

        Raises
        ------
        FileNotFoundError
            No such file.
        ValueError
            The word space is not the one the head was trained against.
        """
        from safetensors.torch import load_file

        path = Path(path)
        meta = path if path.suffix == ".json" else path.with_suffix(".json")
        if not meta.is_file():
            raise FileNotFoundError(f"path: no LaViSE file {os.fspath(meta)!r}")
        info = json.loads(meta.read_text())
        stored = dict(info.get("params", {}))
        stored.setdefault("hidden_dim", info.get("hidden_dim"))
        unknown = sorted(set(params) - set(cls().get_params()))
        if unknown:
            raise TypeError(f"params: unknown LaViSE parameters {unknown}")
        lav = cls(word_space=word_space, **{**stored, **params})
        space = lav._resolve_space()
        want = info.get("fingerprints", {}).get("word_space")
        if want is not None and space.fingerprint != want:
            raise ValueError(
                f"word_space: {os.fspath(meta)!r} was trained against another word space (fingerprint {want}, "
                f"given {space.fingerprint}); pass the word space it was saved with"
            )
        head = ExplainerHead(
            int(info["in_dim"]), int(info["word_dim"]), stored["hidden_dim"], stored.get("dropout", 0.1)
        )
        head.load_state_dict(
            load_file(os.fspath(meta.with_name(info.get("file") or meta.with_suffix(".safetensors").name)))
        )
        head.eval()
        lav.head_ = head
        lav.word_space_ = space
        lav.model_ = model
        lav.layer_ = str(info["layer"])
        lav.concepts_ = list(info["concepts"])
        lav.train_concepts_ = list(info["train_concepts"])
        lav.heldout_concepts_ = list(info["heldout_concepts"])
        lav.n_filters_ = int(info["in_dim"])
        lav.feature_size_ = tuple(int(v) for v in info["feature_size"])
        lav.n_pairs_ = int(info["n_pairs"])
        lav.loss_history_ = [float(x) for x in info["loss_history"]]
        return lav


@dataclass(frozen=True)
class FilterEvaluation(Result):
    """What :meth:`LaViSE.evaluate` measured (Table 2 protocol).

    Attributes
    ----------
    explanations : FilterExplanations, a copy of the evaluated explanations with ``iou`` filled in
    recall : DataFrame (methods x ``recall@k``)
    n_matched_filters : int, filters with at least one concept matching by IoU
    novel_hits : tuple of (filter, word), held-out concepts among a filter's top attention words that match it
    n_novel_filters : int, filters with a novel hit
    """

    explanations: FilterExplanations
    recall: pd.DataFrame
    n_matched_filters: int
    novel_hits: tuple
    n_novel_filters: int

    def to_frame(self) -> pd.DataFrame:
        """The recall table (methods x ``recall@k``)."""
        return self.recall.copy()


def compute_features(
    model: torch.nn.Module,
    images: Any,
    layer: str,
    *,
    cache: Any = None,
    data_id: str | None = None,
    batch_size: int = 64,
    device: Any = None,
    progress: bool = True,
) -> torch.Tensor:
    """The conv feature maps of ``model`` at ``layer``: Tensor (N, d, h, w) float32 on the CPU.

    With ``cache`` (an :class:`~failwidgets.compute.EmbeddingCache`) the maps are stored under the model's
    weights, the layer and ``data_id`` (default: a hash of the images).
    """
    from failwidgets.compute import as_image_tensor, get_module, layer_activations

    get_module(model, layer)  # exact-name lookup with close matches in the error

    def compute() -> np.ndarray:
        return layer_activations(model, images, layer, batch_size=batch_size, device=device, progress=progress).numpy()

    from failwidgets.compute.cache import as_cache, cached

    cache = as_cache(cache)
    data = None
    if cache is not None:  # a source is keyed by its identity, never by its pixels
        data = data_id if data_id is not None else (images if hasattr(images, "identity") else as_image_tensor(images))
    arr = cached(cache, compute, what="lavise_features", model=model, layer=layer, data=data)
    return _check_feature_map(torch.from_numpy(np.asarray(arr, dtype=np.float32)), layer)


def compare_groups(
    explanations: FilterExplanations, groups: Any, *, method: str = "attention", k: int = 5, top: int | None = None
) -> pd.DataFrame:
    """Bias analysis: per filter, the share of qualified images (max activation > T_u) in each group.

    Parameters
    ----------
    explanations : FilterExplanations of the dataset the groups index
    groups : array (N,), a group value per image (two or more distinct values); None / NaN entries
        belong to no group and are left out
    method : whose words to attach
    k : number of words to attach
    top : keep only the ``top`` filters by difference

    Returns
    -------
    DataFrame, one row per explained filter sorted by ``difference`` (largest first), with columns
    ``filter``, ``share[<group>]`` per group, ``difference`` (max share - min share; for two groups the
    signed ``share[g1] - share[g0]`` is in ``signed_difference``) and ``words``.
    """
    k = check_positive_int(k, "k")
    n = explanations.max_activations.shape[0]
    groups = np.asarray(groups)
    if groups.ndim != 1 or len(groups) != n:
        raise ValueError(f"groups: expected a 1-D array with one group per image ({n}), got shape {groups.shape}")
    keep = np.array([g is not None and g == g for g in groups.tolist()], dtype=bool)  # None / NaN: no group
    values = sorted(set(groups[keep].tolist()), key=str)
    if len(values) < 2:
        raise ValueError(f"groups: expected at least 2 distinct groups, got {values}")
    share = qualified_share(
        explanations.max_activations[keep][:, explanations.filters],
        explanations.thresholds[explanations.filters],
        groups[keep],
        values,
    )
    df = pd.DataFrame({"filter": explanations.filters.astype(int)})
    for g, row in zip(values, share):
        df[f"share[{g}]"] = row
    df["difference"] = share.max(0) - share.min(0)
    if len(values) == 2:
        df["signed_difference"] = share[1] - share[0]
    df["words"] = [", ".join(w) for w in explanations.top_words(method, k)]
    df = df.sort_values("difference", ascending=False, kind="stable").reset_index(drop=True)
    return df.head(top) if top is not None else df
