"""Attribute relation mining and diagnosis (Zhang, Wang, Zhu, AAAI 2018).

"Examining CNN Representations with respect to Dataset Bias": for a CNN with n attribute outputs,
the inference pattern of attribute i on image I is the masked gradient v_i^I = rho_i o nu_i^I of the
output at a conv layer (Eqs. 1-3); the relation of a pair on an image is r_ij^I = cos(v_i^I, v_j^I);
its distribution Q over the images where either attribute is present is compared with a Gaussian P
fitted to the pairs a person labelled with the same relation level (Eq. 4-5). Pairs with a high
KL(P || Q) are blind spots (|E r| < 0.2, far from the level's mean) or failure modes (|E r| > 0.2,
far from the level's mean).

Typical use::

    miner = RelationMiner().fit_model(model, images, "features.0", attributes, names)
    graph = RelationGraph(names); graph.set("smiling", "black hair", "not related"); ...
    diag = miner.diagnose(graph)
    diag.pairs.head()            # pairs sorted by KL, with blind spot / failure mode and its cell
    diag.failure_modes           # the failure modes, each with its rare cell (a, b)

The formulas live in ``_relations_kl`` (relations, histogram Q, Gaussian P, KL), the mask selection
in ``_relations_masks`` (exact procedure documented there), annotation files in
``_relations_annotations`` and the evaluation and entropy baseline in ``_relations_eval``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator
from tqdm.auto import tqdm

from failwidgets._validation import check_array, check_choice, check_in_range, check_index, check_positive_int
from failwidgets.compute.maps import overlay
from failwidgets.methods._base import check_fitted
from failwidgets.methods.relations.evaluation import (
    failure_mode_cell,
    mode_counts,
    to_signs,
)
from failwidgets.methods.relations.graph import RelationGraph
from failwidgets.methods.relations.kl import (
    attribute_kl,
    density_from_counts,
    histogram_counts,
    kl_gaussian_histogram,
    relation_matrices,
)
from failwidgets.methods.relations.masks import SELECTIONS, contributions, select_mask
from failwidgets.methods.results import Result

__all__ = ["RelationMiner", "RelationDiagnosis", "inference_map", "heatmap_rgb"]


@dataclass(frozen=True)
class RelationDiagnosis(Result):
    """Result of :meth:`RelationMiner.diagnose` for one ground-truth graph.

    Attributes
    ----------
    pairs : DataFrame
        One row per labelled pair, sorted by decreasing ``kl``: ``i``, ``j``, ``attr_i``, ``attr_j``,
        ``level``, ``mean`` (E r_ij over Q's images), ``spread`` (std), ``n_images``, ``mu_level``,
        ``sigma_level``, ``kl``, ``kind`` ("blind spot", "failure mode" or ""), and for failure modes
        the cell ``a``, ``b`` (Y*_i = a, Y*_j = b; 0 elsewhere).
    attribute_kl : Series (n,)
        KL_i (Eq. 5) indexed by attribute name, NaN without labelled neighbours.
    level_stats : DataFrame
        Per level: ``mu``, ``sigma``, ``n_pairs``.
    warnings : tuple of str
        What :meth:`RelationMiner.diagnose` warned about (single-pair levels, empty Q).
    """

    pairs: pd.DataFrame
    attribute_kl: pd.Series
    level_stats: pd.DataFrame
    warnings: tuple = ()

    def to_frame(self) -> pd.DataFrame:
        """The labelled pairs sorted by decreasing KL (a copy of ``pairs``)."""
        return self.pairs.copy()

    @property
    def blind_spots(self) -> pd.DataFrame:
        return self.pairs[self.pairs["kind"] == "blind spot"].reset_index(drop=True)

    @property
    def failure_modes(self) -> pd.DataFrame:
        return self.pairs[self.pairs["kind"] == "failure mode"].reset_index(drop=True)


class RelationMiner(BaseEstimator):
    """Mine attribute relations inside a CNN and diagnose them against a labelled relation graph.

    Parameters
    ----------
    selection : {"lars", "greedy"}
        How the masks rho_i are selected (see ``failwidgets.methods.relations.masks``): scikit-learn's
        positive Lasso path on the per-unit contributions (default), or greedy forward selection of
        binary units on the paper's objective.
    l1_penalty : float
        lambda of Eq. (3), relative to the mean squared error of the empty mask (a unit is added only
        if it lowers that error by more than ``l1_penalty`` times the empty mask's error).
    max_units : int or None
        L1 budget: at most this many units per mask.
    mask_images : int or None
        The masks are shared over images (Eq. 3); they are selected on a random subset of this many
        images (None: all). The relations are then computed on every image.
    bins : int
        Histogram bins of Q over [-1, 1]. Odd by default so that one bin is centred on r = 0 (a pair
        whose patterns are exactly orthogonal would otherwise sit on a bin edge, and a narrow P
        centred there would see half of Q's mass missing).
    smoothing : float
        Pseudo-count per histogram bin (keeps KL(P || Q) finite).
    grid_size : int
        Integration points for the KL.
    min_sigma : float
        Lower bound of a level's sigma (a level whose pairs all share one mean would give a Dirac P).
    relation_threshold, deviation_threshold : float
        The paper's 0.2 thresholds on |E r_ij| and |E r_ij - mu_level|.
    batch_size : int
        Images per batch for the relation matrices and for :meth:`fit_model`'s gradients (which are
        streamed in chunks of ``4 * batch_size`` images).
    progress : bool
        Show tqdm progress bars.
    device : str or torch.device, optional
        Passed to the compute layer in :meth:`fit_model`.
    random_state : int or None
        Seed of the mask-selection subset.

    Attributes
    ----------
    masks_ : bool ndarray (n, N)
        rho_i for each attribute over the N flattened units of the layer.
    unit_shape_ : tuple
        Shape of one image's layer output (e.g. (C, H, W)); N = prod(unit_shape_).
    relations_ : float32 ndarray (M, n, n)
        r_ij^I on every training image (NaN where an inference pattern is all zero).
    in_q_ : bool ndarray (M, n, n)
        Whether image I enters Q of pair (i, j) (Y*_i = +1 or Y*_j = +1, and r_ij^I defined).
    means_, spreads_ : float ndarray (n, n)
        E and std of r_ij over Q's images (NaN for an empty Q).
    n_images_ : int ndarray (n, n)
    histograms_ : float ndarray (n, n, bins)
        Counts of r_ij over Q's images.
    mode_counts_ : int ndarray (n, n, 2, 2)
        Training counts of the four modes of each pair (index 0: -1, 1: +1).
    attribute_names_ : list of str
    """

    def __init__(
        self,
        selection: str = "lars",
        l1_penalty: float = 1e-3,
        max_units: int | None = 256,
        mask_images: int | None = 512,
        bins: int = 41,
        smoothing: float = 1.0,
        grid_size: int = 2000,
        min_sigma: float = 0.02,
        relation_threshold: float = 0.2,
        deviation_threshold: float = 0.2,
        batch_size: int = 64,
        progress: bool = True,
        device=None,
        random_state=0,
    ):
        self.selection = selection
        self.l1_penalty = l1_penalty
        self.max_units = max_units
        self.mask_images = mask_images
        self.bins = bins
        self.smoothing = smoothing
        self.grid_size = grid_size
        self.min_sigma = min_sigma
        self.relation_threshold = relation_threshold
        self.deviation_threshold = deviation_threshold
        self.batch_size = batch_size
        self.progress = progress
        self.device = device
        self.random_state = random_state

    # -- fitting -----------------------------------------------------------------------------
    def fit_model(
        self,
        model,
        images,
        layer: str,
        attributes,
        attribute_names=None,
        outputs=None,
        *,
        cache=None,
        data_id: str | None = None,
    ):
        """Mine relations of a model's attribute outputs at ``layer`` on ``images``, memory-bounded.

        Two passes through ``failwidgets.compute.output_gradients``: the gradients of the
        ``mask_images`` mask-selection images are computed and the masks selected; then the other
        images are streamed in chunks of ``4 * batch_size`` and only their relation matrices (M, n, n)
        are kept, so the (M, n, *S) gradients of all images never sit in memory at once. Each image's
        gradients are computed once.

        With ``cache`` the masks and relation matrices (the slow part) are stored in an
        :class:`~failwidgets.compute.EmbeddingCache` under a key made of ``fingerprint(model)``, the
        layer, the images (``data_id`` or a hash of the image bytes) and the mask-selection parameters
        (``selection``, ``l1_penalty``, ``max_units``, ``mask_images``, ``random_state``); a second
        identical call computes no gradient. Q, the histograms and the diagnosis parameters (``bins``,
        ``smoothing``, thresholds ...) are recomputed from the cached relations, so changing them does not
        invalidate the entry.

        Parameters
        ----------
        model : torch.nn.Module
            The CNN under diagnosis.
        images : Tensor (M, 3, H, W) in [0, 1] or uint8 ndarray (M, H, W, 3)
        layer : str
            Name of the conv layer in ``model.named_modules()``.
        attributes : ndarray (M, n)
            Ground-truth binary attributes Y* ({0, 1} or {-1, +1}).
        attribute_names : list of str, optional
        outputs : callable, optional
            Maps the model's output to the (B, n) attribute scores Y_1..Y_n (default: the model output,
            which must then be 2-D); passed to ``failwidgets.compute.output_gradients``. Cannot be
            combined with ``cache`` (a callable has no stable identity for the key).
        cache : EmbeddingCache, optional
            Store / reuse the masks and relations (see above).
        data_id : str, optional
            Identity of ``images`` for the cache key (e.g. the world's fingerprint, split and count);
            default: a hash of the image bytes.

        Returns
        -------
        self
        """
        from failwidgets.compute import as_cache, as_image_tensor, cached

        x = as_image_tensor(images)
        m = x.shape[0]
        signs, names = self._check_attributes(attributes, m, None, attribute_names)
        if cache is None:
            masks, unit_shape, rel = self._mine_model(model, x, layer, outputs, attributes, attribute_names)
        else:
            if outputs is not None:
                raise ValueError(
                    "outputs: cannot be combined with cache (a callable has no stable identity for "
                    "the cache key); wrap the model so that its forward gives the (B, n) outputs"
                )

            def compute():
                mk, shape, rl = self._mine_model(model, x, layer, outputs, attributes, attribute_names)
                return {"masks": mk, "unit_shape": np.asarray(shape, dtype=np.int64), "relations": rl}

            hit = cached(
                as_cache(cache),
                compute,
                what="zhang2018_relations",
                model=model,
                layer=str(layer),
                data=str(data_id) if data_id is not None else x,
                n_images=int(m),
                selection=self.selection,
                l1_penalty=float(self.l1_penalty),
                max_units=self.max_units,
                mask_images=self.mask_images,
                random_state=self.random_state,
            )
            masks, unit_shape, rel = hit["masks"], tuple(int(v) for v in hit["unit_shape"]), hit["relations"]
        if rel.shape != (m, signs.shape[1], signs.shape[1]):
            raise ValueError(
                f"attributes: expected shape ({m}, {rel.shape[1]}) (images x attribute outputs), got {signs.shape}"
            )
        self.masks_ = np.asarray(masks, dtype=bool)
        self.unit_shape_ = unit_shape
        return self._finish(np.asarray(rel, dtype=np.float32), signs, names)

    def _mine_model(self, model, x, layer, outputs, attributes, attribute_names):
        """Masks (n, N), unit shape and relations (M, n, n) of ``model`` at ``layer`` on images ``x``."""
        from failwidgets.compute import output_gradients

        m = x.shape[0]
        sub = self._mask_subset(m)

        def grads_of(idx, progress=False):
            return output_gradients(
                model, x[idx], layer, outputs=outputs, batch_size=self.batch_size, device=self.device, progress=progress
            )

        acts, grads = grads_of(torch.as_tensor(sub), progress=self.progress)  # the mask-selection images
        n = grads.shape[1]
        signs, names = self._check_attributes(attributes, m, n, attribute_names)
        self._select_masks(acts.numpy(), grads.numpy(), names)
        rel = np.empty((m, n, n), dtype=np.float32)
        for start in range(0, len(sub), self.batch_size):  # the subset's gradients are already here
            rel[sub[start : start + self.batch_size]] = self._relations(grads[start : start + self.batch_size].numpy())
        del acts, grads
        rest = np.setdiff1d(np.arange(m), sub)
        chunk = 4 * self.batch_size
        for start in tqdm(range(0, len(rest), chunk), desc="gradients and relations", disable=not self.progress):
            idx = rest[start : start + chunk]
            _, g = grads_of(torch.as_tensor(idx))
            rel[idx] = self._relations(g.numpy())
        return self.masks_, self.unit_shape_, rel

    def fit(self, activations, gradients, attributes, attribute_names=None):
        """Select the masks and mine the relations from precomputed activations and gradients.

        Parameters
        ----------
        activations : ndarray or Tensor (M, *S)
            Layer outputs x^I.
        gradients : ndarray or Tensor (M, n, *S)
            nu_i^I = dY_i / dx at x^I for the n attribute outputs.
        attributes : ndarray (M, n)
            Ground-truth binary attributes Y* ({0, 1} or {-1, +1}, +1 = present).
        attribute_names : list of str, optional
            Default ``["attr0", ...]``.

        Returns
        -------
        self
        """
        acts = check_array(activations, "activations", ndim=range(2, 8), dtype="float", min_len=1)
        grads = check_array(gradients, "gradients", ndim=acts.ndim + 1, dtype="float")
        m, n = grads.shape[:2]
        if acts.shape[0] != m or grads.shape[2:] != acts.shape[1:]:
            raise ValueError(
                f"gradients: expected shape ({acts.shape[0]}, n, {', '.join(map(str, acts.shape[1:]))}) to match "
                f"activations {acts.shape}, got {grads.shape}"
            )
        signs, names = self._check_attributes(attributes, m, n, attribute_names)
        sub = self._mask_subset(m)
        self._select_masks(acts[sub], grads[sub], names)
        rel = np.empty((m, n, n), dtype=np.float32)
        for start in tqdm(range(0, m, self.batch_size), desc="relations r_ij", disable=not self.progress):
            stop = min(start + self.batch_size, m)
            rel[start:stop] = self._relations(grads[start:stop])
        return self._finish(rel, signs, names)

    # -- fitting steps -----------------------------------------------------------------------------
    def _check_attributes(self, attributes, m, n, attribute_names):
        check_choice(self.selection, "selection", SELECTIONS)
        check_positive_int(self.bins, "bins", minimum=2)
        check_positive_int(self.batch_size, "batch_size")
        signs = to_signs(attributes, "attributes")
        if signs.shape[0] != m or (n is not None and signs.shape[1] != n):
            want = f"({m}, {n})" if n is not None else f"({m}, n)"
            raise ValueError(f"attributes: expected shape {want} (images x attribute outputs), got {signs.shape}")
        n = signs.shape[1]
        if n < 2:
            raise ValueError(f"attributes: expected at least 2 attributes, got {n}")
        names = [f"attr{k}" for k in range(n)] if attribute_names is None else [str(a) for a in attribute_names]
        if len(names) != n:
            raise ValueError(f"attribute_names: expected {n} names (one per attribute output), got {len(names)}")
        dup = sorted({a for a in names if names.count(a) > 1})
        if dup:
            raise ValueError(f"attribute_names: expected unique names, got duplicates {dup}")
        return signs, names

    def _mask_subset(self, m: int) -> np.ndarray:
        """Indices (sorted) of the images the masks are selected on."""
        if self.mask_images is None or self.mask_images >= m:
            return np.arange(m)
        k = check_positive_int(self.mask_images, "mask_images", minimum=2)
        rng = np.random.default_rng(self.random_state)
        return np.sort(rng.choice(m, size=k, replace=False))

    def _select_masks(self, acts, grads, names) -> None:
        m, n = grads.shape[:2]
        self.unit_shape_ = tuple(acts.shape[1:])
        flat_x = acts.reshape(m, -1)
        flat_g = grads.reshape(m, n, -1)
        masks = np.zeros((n, flat_x.shape[1]), dtype=bool)
        for i in tqdm(range(n), desc="masks rho_i", disable=not self.progress):
            masks[i] = select_mask(
                contributions(flat_x, flat_g[:, i]),
                selection=self.selection,
                l1_penalty=self.l1_penalty,
                max_units=self.max_units,
            )
        empty = [names[k] for k in range(n) if not masks[k].any()]
        if empty:
            warnings.warn(
                f"masks: no unit selected for {empty} (zero gradients?); their relations are undefined",
                UserWarning,
                stacklevel=3,
            )
        self.masks_ = masks

    def _relations(self, grads) -> np.ndarray:
        """r_ij^I (B, n, n) of a batch of gradients (B, n, *S) with the selected masks."""
        g = torch.as_tensor(np.asarray(grads, dtype=np.float32))
        v = g.reshape(g.shape[0], g.shape[1], -1) * torch.from_numpy(self.masks_)  # v_i^I = rho_i o nu_i^I
        return relation_matrices(v)

    def _finish(self, rel, signs, names):
        absent = [names[k] for k in range(signs.shape[1]) if not (signs[:, k] > 0).any()]
        if absent:
            warnings.warn(
                f"attributes: {absent} have no positive images; their relations rely on the other "
                "attribute's positive images only",
                UserWarning,
                stacklevel=3,
            )
        pos = signs > 0
        self.relations_ = rel
        self.in_q_ = (pos[:, :, None] | pos[:, None, :]) & np.isfinite(rel)
        self.attribute_names_ = names
        self.mode_counts_ = mode_counts(signs)
        self._summarise()
        return self

    def _summarise(self) -> None:
        rel, in_q = self.relations_, self.in_q_
        n = rel.shape[1]
        vals = np.where(in_q, rel, np.nan).astype(np.float64)
        count = in_q.sum(axis=0)
        with warnings.catch_warnings(), np.errstate(invalid="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)
            self.means_ = np.nanmean(vals, axis=0)
            self.spreads_ = np.nanstd(vals, axis=0)
        self.n_images_ = count.astype(np.int64)
        hist = np.zeros((n, n, self.bins))
        for i in range(n):
            for j in range(i, n):
                hist[i, j] = hist[j, i] = histogram_counts(vals[:, i, j], self.bins)
        self.histograms_ = hist

    def check_fitted(self) -> None:
        """Raise ``NotFittedError`` unless :meth:`fit` or :meth:`fit_model` has run."""
        check_fitted(self, "relations_")

    # -- diagnosis ---------------------------------------------------------------------------
    def q_density(self, i: int, j: int) -> np.ndarray:
        """Smoothed density (bins,) of Q(r_ij) over [-1, 1]."""
        self.check_fitted()
        n = len(self.attribute_names_)
        i, j = check_index(i, "i", n, what="an attribute index"), check_index(j, "j", n, what="an attribute index")
        return density_from_counts(self.histograms_[i, j], self.smoothing)

    def level_stats(self, graph: RelationGraph) -> tuple[pd.DataFrame, list]:
        """mu_L, sigma_L of each level over its labelled pairs' mean relations (paper, Eq. 4 context).

        sigma_L is the standard deviation (ddof = 1) of E r_ij over the pairs labelled L. A level with a
        single labelled pair has no such spread: a warning is issued and sigma falls back to the
        spread of r_ij over that pair's images. sigma is bounded below by ``min_sigma``.

        Returns
        -------
        DataFrame indexed by level with ``mu``, ``sigma``, ``n_pairs``; list of warning messages.
        """
        self.check_fitted()
        graph = self._check_graph(graph)
        msgs = []
        rows = {}
        for lv, level in enumerate(graph.levels):
            pairs = [(i, j) for i, j, lvl in graph.edges() if lvl == lv and np.isfinite(self.means_[i, j])]
            if not pairs:
                rows[level] = {"mu": np.nan, "sigma": np.nan, "n_pairs": 0}
                continue
            means = np.array([self.means_[i, j] for i, j in pairs])
            if len(pairs) == 1:
                i, j = pairs[0]
                sigma = float(self.spreads_[i, j])
                msgs.append(
                    f"level {level!r}: a single labelled pair ({graph.attribute_names[i]!r}, "
                    f"{graph.attribute_names[j]!r}), so sigma over pairs is undefined; using the spread of "
                    f"r over its images ({sigma:.3f}). Label more pairs with this level."
                )
            else:
                sigma = float(np.std(means, ddof=1))
            rows[level] = {"mu": float(means.mean()), "sigma": max(sigma, float(self.min_sigma)), "n_pairs": len(pairs)}
        for msg in msgs:
            warnings.warn(msg, UserWarning, stacklevel=3)
        return pd.DataFrame.from_dict(rows, orient="index")[["mu", "sigma", "n_pairs"]], msgs

    def _check_graph(self, graph) -> RelationGraph:
        if not isinstance(graph, RelationGraph):
            raise TypeError(f"graph: expected a RelationGraph, got {type(graph).__name__}")
        if graph.attribute_names != self.attribute_names_:
            unknown = sorted(set(graph.attribute_names) - set(self.attribute_names_))
            raise ValueError(
                f"graph: attribute names must be the model's {self.attribute_names_} in that order"
                + (f"; unknown: {unknown}" if unknown else "")
            )
        return graph

    def diagnose(self, graph: RelationGraph) -> RelationDiagnosis:
        """KL(P || Q) of every labelled pair, KL per attribute, blind spots and failure modes.

        Parameters
        ----------
        graph : RelationGraph
            Labelled pairs (a partial graph over ``attribute_names_``).

        Returns
        -------
        RelationDiagnosis
        """
        self.check_fitted()
        rt = check_in_range(self.relation_threshold, "relation_threshold", 0.0, 2.0)
        dt = check_in_range(self.deviation_threshold, "deviation_threshold", 0.0, 2.0)
        stats, msgs = self.level_stats(graph)
        names = self.attribute_names_
        n = len(names)
        kl = np.full((n, n), np.nan)
        rows = []
        empty = []
        for i, j, lv in graph.edges():
            level = graph.levels[lv]
            mu, sigma = stats.loc[level, "mu"], stats.loc[level, "sigma"]
            mean = float(self.means_[i, j])
            if self.n_images_[i, j] == 0 or not np.isfinite(mu):
                empty.append((names[i], names[j]))
                value = np.nan
            else:
                value = kl_gaussian_histogram(mu, sigma, self.q_density(i, j), self.grid_size)
            kl[i, j] = kl[j, i] = value
            kind, a, b = "", 0, 0
            if np.isfinite(mean) and np.isfinite(mu) and abs(mean - mu) > dt:
                if abs(mean) < rt:
                    kind = "blind spot"
                elif abs(mean) > rt:
                    kind = "failure mode"
                    a, b = failure_mode_cell(mean, self.mode_counts_[i, j])
            rows.append(
                {
                    "i": i,
                    "j": j,
                    "attr_i": names[i],
                    "attr_j": names[j],
                    "level": level,
                    "mean": mean,
                    "spread": float(self.spreads_[i, j]),
                    "n_images": int(self.n_images_[i, j]),
                    "mu_level": mu,
                    "sigma_level": sigma,
                    "kl": value,
                    "kind": kind,
                    "a": a,
                    "b": b,
                }
            )
        if empty:
            msg = (
                f"pairs {empty}: no image has either attribute (or no defined relation), so Q and the KL are undefined"
            )
            warnings.warn(msg, UserWarning, stacklevel=2)
            msgs.append(msg)
        cols = [
            "i",
            "j",
            "attr_i",
            "attr_j",
            "level",
            "mean",
            "spread",
            "n_images",
            "mu_level",
            "sigma_level",
            "kl",
            "kind",
            "a",
            "b",
        ]
        pairs = pd.DataFrame(rows, columns=cols)
        pairs = pairs.sort_values("kl", ascending=False, kind="stable", na_position="last").reset_index(drop=True)
        labelled = graph.level_matrix() >= 0
        per_attr = pd.Series(attribute_kl(kl, labelled), index=names, name="kl")
        return RelationDiagnosis(pairs=pairs, attribute_kl=per_attr, level_stats=stats, warnings=tuple(msgs))

    # -- inference patterns ------------------------------------------------------------------
    def inference_patterns(self, gradients) -> np.ndarray:
        """Masked gradients v_i^I = rho_i o nu_i^I for some images.

        Parameters
        ----------
        gradients : ndarray (K, n, *S)

        Returns
        -------
        float32 ndarray (K, n, *S)
        """
        self.check_fitted()
        g = check_array(gradients, "gradients", ndim=len(self.unit_shape_) + 2, dtype="float")
        if g.shape[1:] != (len(self.attribute_names_), *self.unit_shape_):
            raise ValueError(
                f"gradients: expected shape (K, {len(self.attribute_names_)}, "
                f"{', '.join(map(str, self.unit_shape_))}), got {g.shape}"
            )
        k = g.shape[0]
        flat = g.reshape(k, g.shape[1], -1) * self.masks_[None]
        return flat.reshape(g.shape).astype(np.float32, copy=False)


def inference_map(pattern) -> np.ndarray:
    """Heat map of an inference pattern: v_i^I summed over channels (the paper's visualisation of a mined relation).

    Parameters
    ----------
    pattern : ndarray (C, H, W)

    Returns
    -------
    float32 ndarray (H, W); positive values raise the attribute score, negative lower it.
    """
    v = check_array(pattern, "pattern", ndim=3, dtype="float")
    return v.sum(axis=0).astype(np.float32)


def heatmap_rgb(heat, image=None, size: tuple[int, int] | None = None, alpha: float = 0.6) -> np.ndarray:
    """Colour a signed heat map red (positive) / blue (negative), optionally over a grey image.

    Parameters
    ----------
    heat : ndarray (h, w)
        Signed map, scaled by its maximum |value| (an all-zero map is left uncoloured).
    image : uint8 ndarray (H, W, 3), optional
        The image to draw on; the heat map is resized (bilinear) to its size.
    size : (H, W), optional
        Output size when no image is given (default: the map's size).
    alpha : float
        Opacity of the colour at |heat| = max.

    Returns
    -------
    uint8 ndarray (H, W, 3)
    """
    return overlay(image, heat, signed=True, alpha=alpha, base="grey", size=size)
