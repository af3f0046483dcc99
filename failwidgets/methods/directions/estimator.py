"""Failure directions in a vision-language latent space (Jain et al., ICLR 2023).

Per class, a linear SVM on whitened, L2-normalised embeddings of a validation split separates the
model's correct predictions (target 1) from its errors (target 0); its weight vector is the *failure
direction* and its cross-validated balanced accuracy the failure mode's *strength*. Negative decision
values mean failure-aligned ("hard"), as everywhere in failwidgets (``_failures.py``).

Beyond the paper, a class can have several failure modes: after a direction is found, the samples it
flags (d < 0) are set aside, the direction is projected out of the rest and the SVM refitted, until the
strength drops below ``min_mode_strength`` or, with ``n_permutations``, to chance.

Chance is not 0.5. The strength is the best of several noisy cross-validation scores, and a class with
few errors scores well above 0.5 on random targets (about 0.6 on average with 5 errors). With
``n_permutations > 0`` each direction is compared with the same recipe run on permuted correct / error
targets: ``chance`` is the 95th percentile of those strengths and ``p_value`` the share at least as strong.

Example
-------
>>> fd = FailureDirections().fit(val_emb, val_labels, val_preds, train_emb)      # doctest: +SKIP
>>> fd.strength_[3], fd.status_[3]                                                 # doctest: +SKIP
>>> idx, d = fd.hardest(3, k=20)                                                   # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from failwidgets._validation import (
    check_array,
    check_choice,
    check_index,
    check_labels,
    check_magnitude,
    check_nonnegative_labels,
    check_positive_int,
    check_same_length,
)
from failwidgets.compute.ray_engine import ENGINES, map_items
from failwidgets.methods._base import ERROR, check_fitted, failure_target, hardness_order
from failwidgets.methods.directions._svm import DEFAULT_CS, _reference_cv_svm, cv_linear_svm, permutation_strengths
from failwidgets.methods.directions.captions import caption_scores
from failwidgets.methods.directions.geometry import (
    l2_normalize,
    preprocess,
    raw_direction,
    rotate,
    whitening_stats,
)
from failwidgets.methods.directions.interventions import filter_pool, upweight
from failwidgets.methods.results import Result

__all__ = ["FailureDirections", "FailureMode", "STATUS_OK"]

STATUS_OK = "ok"
STATUS_ABSENT = "absent from the validation split"
STATUS_NO_ERRORS = "no errors"
STATUS_NO_CORRECT = "no correct predictions"
STATUS_FEW_ERRORS = "too few errors to cross-validate"
STATUS_FEW_CORRECT = "too few correct predictions to cross-validate"


@dataclass(frozen=True)
class FailureMode(Result):
    """One failure direction of one class.

    Attributes
    ----------
    coef : ndarray (D,)
        SVM weights in the preprocessed space; ``d(x) = coef . preprocess(x) + intercept``.
    intercept : float
    strength : float
        Mean CV balanced accuracy at ``best_C``; compare with ``chance``, not with 0.5 (see the module docstring).
    best_C : float
    cv_scores : ndarray (n_Cs,)
    rank : int
        0 for the paper's direction, 1.. for the further modes found after projecting out earlier ones.
    chance : float
        95th percentile of the strengths on permuted targets (NaN without ``n_permutations``).
    p_value : float
        ``(1 + #permuted strengths >= strength) / (1 + n_permutations)`` (NaN without ``n_permutations``).
    """

    coef: np.ndarray
    intercept: float
    strength: float
    best_C: float
    cv_scores: np.ndarray = field(repr=False)
    rank: int = 0
    chance: float = float("nan")
    p_value: float = float("nan")

    @property
    def above_chance(self) -> bool | None:
        """Whether the strength beats its permutation chance level (None when that was not computed)."""
        return None if np.isnan(self.chance) else bool(self.strength > self.chance)

    def to_frame(self) -> pd.DataFrame:
        """One row: ``rank, strength, chance, p_value, above_chance, best_C, intercept`` (the weights stay in ``coef``)."""
        return pd.DataFrame(
            [
                {
                    "rank": self.rank,
                    "strength": self.strength,
                    "chance": self.chance,
                    "p_value": self.p_value,
                    "above_chance": self.above_chance,
                    "best_C": self.best_C,
                    "intercept": self.intercept,
                }
            ]
        )


class FailureDirections(BaseEstimator):
    """Per-class failure directions (Jain et al. 2023), scikit-learn style.

    Parameters
    ----------
    Cs : sequence of float
        Candidate SVM ``C`` values (reference ``logspace(-6, 0, 7)``).
    n_splits : int
        Stratified CV folds (reference 2); a class needs this many errors and correct predictions.
    max_modes : int
        Failure modes per class (1 = the paper).
    min_mode_strength : float
        Further modes (rank >= 1) are kept while their strength is at least this and, with
        ``n_permutations``, above chance.
    n_permutations : int
        Permuted-target refits per mode for its chance level and p-value (0 = skip, the paper's recipe).
        Each costs about one fit (measured costs: the ``svm`` benchmark in benchmarks/README.md).
    solver : {"fast", "reference"}
        ``"fast"`` gives the reference's numbers from one Gram matrix per class (see ``_directions_svm``);
        ``"reference"`` runs ``GridSearchCV(SVC(kernel="linear"))`` literally.
    random_state : int or None
        Seed of the shuffled CV folds (default 0); None: unshuffled folds, as the reference.
    progress : bool
        Show a ``tqdm`` bar over classes.
    engine : {"local", "ray"}
        Where the per-class fits run: this process, or Ray tasks on a cluster
        (``pip install 'failwidgets[ray]'``; see :func:`failwidgets.compute.ray_engine.map_items`).
        The results are the same.

    Attributes
    ----------
    n_classes_ : int
    mean_, std_ : ndarray (D,)
        Whitening statistics of the training split.
    status_ : list of str (n_classes_,)
        ``"ok"`` or why the class has no direction (no errors, too few to cross-validate, absent, ...).
    modes_ : list (n_classes_,) of list of FailureMode
    strength_ : ndarray (n_classes_,)
        Strength of each class's first mode (NaN without one).
    chance_, p_value_ : ndarray (n_classes_,)
        The first mode's chance level and p-value (NaN without a mode or without ``n_permutations``).
    coef_ : ndarray (n_classes_, D), intercept_ : ndarray (n_classes_,)
        First-mode SVMs (NaN rows without one).
    n_samples_, n_errors_ : ndarray (n_classes_,) int
    decision_values_ : ndarray (N,)
        Validation samples scored by their class's first mode (NaN where the class has none).
    mode_decision_values_ : ndarray (max_modes, N)
        The same for every mode rank (row m: the class's mode m; NaN where the class has no such mode).
    labels_ : ndarray (N,) int
        The validation labels given to ``fit`` (which class's direction scores each sample).
    """

    def __init__(
        self,
        Cs=DEFAULT_CS,
        n_splits: int = 2,
        max_modes: int = 1,
        min_mode_strength: float = 0.6,
        n_permutations: int = 0,
        solver: str = "fast",
        random_state=0,
        progress: bool = True,
        engine: str = "local",
    ):
        self.Cs = Cs
        self.n_splits = n_splits
        self.max_modes = max_modes
        self.min_mode_strength = min_mode_strength
        self.n_permutations = n_permutations
        self.solver = solver
        self.random_state = random_state
        self.progress = progress
        self.engine = engine

    # ------------------------------------------------------------------ fitting
    def fit(
        self, embeddings, labels, preds, train_embeddings=None, n_classes: int | None = None, *, whitening=None
    ) -> FailureDirections:
        """Fit one SVM (or several modes) per class.

        Parameters
        ----------
        embeddings : ndarray (N, D)
            Raw encoder embeddings of the validation split.
        labels, preds : ndarray (N,) int
            True classes and the model's predictions.
        train_embeddings : ndarray (M, D), optional
            Raw embeddings of the training split (whitening statistics only).
        n_classes : int, optional
            Number of classes (default: largest label or prediction + 1); classes absent from the
            validation split get a status.
        whitening : tuple (mean (D,), std (D,)), optional
            The training split's statistics (``whitening_stats(train_embeddings)``) instead of
            ``train_embeddings``, e.g. precomputed ones; give exactly one of the two.
        """
        X = check_magnitude(check_array(embeddings, "embeddings", ndim=2, dtype="float", min_len=1), "embeddings")
        labels = check_labels(check_nonnegative_labels(np.asarray(labels), "labels"), "labels", n_classes=n_classes)
        preds = check_labels(check_nonnegative_labels(np.asarray(preds), "preds"), "preds", n_classes=n_classes)
        check_same_length(embeddings=X, labels=labels, preds=preds)
        mean, std = self._whitening(train_embeddings, whitening, X.shape[1])
        n_splits = check_positive_int(self.n_splits, "n_splits", minimum=2)
        max_modes = check_positive_int(self.max_modes, "max_modes")
        n_perm = check_positive_int(self.n_permutations, "n_permutations", minimum=0)
        check_choice(self.solver, "solver", ("fast", "reference"))
        Cs = check_array(np.atleast_1d(self.Cs), "Cs", ndim=1, dtype="float", min_len=1).astype(np.float64)
        if np.any(Cs <= 0):
            raise ValueError(f"Cs: expected positive values, got {Cs}")
        svm = cv_linear_svm if self.solver == "fast" else _reference_cv_svm
        check_choice(self.engine, "engine", ENGINES)

        self.n_classes_ = int(n_classes) if n_classes is not None else int(max(labels.max(), preds.max())) + 1
        self.mean_, self.std_ = mean, std
        self.labels_ = labels
        target = failure_target(labels, preds)
        D = X.shape[1]
        self.status_, self.modes_ = [], []
        self.n_samples_ = np.bincount(labels, minlength=self.n_classes_)
        self.n_errors_ = np.bincount(labels[target == ERROR], minlength=self.n_classes_)
        self.status_ = [
            self._status(int(self.n_samples_[c]), int(self.n_errors_[c]), n_splits) for c in range(self.n_classes_)
        ]
        ok = [c for c in range(self.n_classes_) if self.status_[c] == STATUS_OK]
        # Rows are preprocessed one class at a time (float64 for the SVM, in _fit_class_modes), so N x D
        # float64 copies of every row never exist.
        fitted = map_items(
            _fit_class_modes,
            ok,
            shared=(self, X, labels, target, svm, Cs, max_modes, n_perm),
            engine=self.engine,
            progress=self.progress,
            desc="failure directions",
        )
        by_class = dict(zip(ok, fitted))
        self.modes_ = [by_class.get(c, []) for c in range(self.n_classes_)]
        self.mode_decision_values_ = np.full((max_modes, len(X)), np.nan, dtype=np.float32)
        for c in ok:
            rows = np.flatnonzero(labels == c)
            Zc = preprocess(X[rows], self.mean_, self.std_)
            for m in self.modes_[c]:
                self.mode_decision_values_[m.rank, rows] = (Zc @ m.coef + m.intercept).astype(np.float32)
        self.strength_ = np.array([m[0].strength if m else np.nan for m in self.modes_])
        self.chance_ = np.array([m[0].chance if m else np.nan for m in self.modes_])
        self.p_value_ = np.array([m[0].p_value if m else np.nan for m in self.modes_])
        self.coef_ = np.array([m[0].coef if m else np.full(D, np.nan) for m in self.modes_]).reshape(-1, D)
        self.intercept_ = np.array([m[0].intercept if m else np.nan for m in self.modes_])
        self.decision_values_ = self.mode_decision_values_[0]
        return self

    @staticmethod
    def _whitening(train_embeddings, whitening, D: int):
        if (train_embeddings is None) == (whitening is None):
            raise ValueError(
                "train_embeddings: expected the training split's embeddings or, instead, "
                "whitening=(mean, std); give exactly one of the two"
            )
        if whitening is None:
            T = check_magnitude(
                check_array(train_embeddings, "train_embeddings", ndim=2, dtype="float", min_len=2), "train_embeddings"
            )
            if T.shape[1] != D:
                raise ValueError(f"train_embeddings: expected {D} columns (as embeddings), got {T.shape[1]}")
            return whitening_stats(T)
        if len(whitening) != 2:
            raise ValueError(f"whitening: expected a pair (mean, std), got {len(whitening)} items")
        mean = check_array(whitening[0], "whitening mean", shape=(D,), dtype="float").astype(np.float64)
        std = check_array(whitening[1], "whitening std", shape=(D,), dtype="float").astype(np.float64)
        if np.any(std <= 0):
            raise ValueError("whitening std: expected positive values (whitening_stats replaces zeros by 1)")
        return mean, std

    @staticmethod
    def _status(n: int, n_err: int, n_splits: int) -> str:
        if n == 0:
            return STATUS_ABSENT
        if n_err == 0:
            return STATUS_NO_ERRORS
        if n_err == n:
            return STATUS_NO_CORRECT
        if n_err < n_splits:
            return f"{STATUS_FEW_ERRORS} ({n_err} < {n_splits} folds)"
        if n - n_err < n_splits:
            return f"{STATUS_FEW_CORRECT} ({n - n_err} < {n_splits} folds)"
        return STATUS_OK

    def _fit_modes(self, Z, y, svm, Cs, max_modes, n_perm) -> list[FailureMode]:
        modes = []
        for rank in range(max_modes):
            n_err = int(np.sum(y == ERROR))
            if rank > 0 and min(n_err, len(y) - n_err) < self.n_splits:
                break
            fit = svm(Z, y, Cs, self.n_splits, self.random_state)
            if rank > 0 and not fit.strength >= self.min_mode_strength:
                break
            chance = p_value = np.nan
            if n_perm:
                null = permutation_strengths(Z, y, Cs, self.n_splits, self.random_state, n_perm, seed=rank)
                chance = float(np.quantile(null, 0.95))
                p_value = float((1 + np.sum(null >= fit.strength)) / (1 + len(null)))
                if rank > 0 and not fit.strength > chance:
                    break
            modes.append(
                FailureMode(fit.coef, fit.intercept, fit.strength, fit.best_C, fit.cv_scores, rank, chance, p_value)
            )
            norm = np.linalg.norm(fit.coef)
            if norm < 1e-12:  # the SVM found nothing to project out
                break
            # The next mode looks among what this one does not explain: drop the samples it flags
            # (d < 0) and project its direction out. The next SVM's weights (a combination of projected
            # points) are then orthogonal to it, so every mode scores preprocessed points directly.
            keep = Z @ fit.coef + fit.intercept >= 0
            w = fit.coef / norm
            Z, y = Z[keep] - np.outer(Z[keep] @ w, w), y[keep]
        return modes

    # ------------------------------------------------------------------ scoring
    def check_fitted(self) -> None:
        """Raise ``NotFittedError`` unless :meth:`fit` has run."""
        check_fitted(self, "modes_")

    def mode(self, class_index: int, mode: int = 0) -> FailureMode:
        """The ``mode``-th failure mode of class ``class_index``; ValueError (with the class's status) if absent."""
        self.check_fitted()
        class_index = check_index(class_index, "class_index", self.n_classes_, what="a class index")
        modes = self.modes_[int(class_index)]
        if not modes:
            raise ValueError(
                f"class_index: class {class_index} has no failure direction ({self.status_[int(class_index)]})"
            )
        if not 0 <= mode < len(modes):
            raise ValueError(f"mode: expected an index in [0, {len(modes)}) for class {class_index}, got {mode}")
        return modes[mode]

    def _decide(self, Z, classes, mode) -> np.ndarray:
        out = np.full(len(Z), np.nan)
        for c in np.unique(classes):
            if 0 <= c < self.n_classes_ and len(self.modes_[c]) > mode:
                m = self.modes_[c][mode]
                rows = classes == c
                out[rows] = Z[rows] @ m.coef + m.intercept
        return out.astype(np.float32)

    def _preprocess_input(self, embeddings, name="embeddings") -> np.ndarray:
        X = check_array(embeddings, name, ndim=2, shape=(None, len(self.mean_)), dtype="float")
        return preprocess(X, self.mean_, self.std_)

    def decision_function(self, embeddings, classes, mode: int = 0) -> np.ndarray:
        """Decision values (N,) of each sample under the SVM of its class (NaN where none).

        Parameters
        ----------
        embeddings : ndarray (N, D)
            Raw embeddings of any split.
        classes : ndarray (N,) int
            Which class's SVM scores each row (labels, or predictions for unlabelled pools).
        """
        self.check_fitted()
        Z = self._preprocess_input(embeddings)
        classes = check_labels(classes, "classes")
        check_same_length(embeddings=Z, classes=classes)
        return self._decide(Z, classes, mode)

    def _extremes(self, class_index, embeddings, labels, k, mode, hardest):
        m = self.mode(class_index, mode)
        if embeddings is None:
            rows = np.flatnonzero(self.labels_ == class_index)
            d = self.mode_decision_values_[mode][rows]
        else:
            if labels is None:
                raise ValueError("labels: expected the classes of the given embeddings, got None")
            Z = self._preprocess_input(embeddings)
            labels = check_labels(labels, "labels")
            check_same_length(embeddings=Z, labels=labels)
            rows = np.flatnonzero(labels == class_index)
            d = (Z[rows] @ m.coef + m.intercept).astype(np.float32)
        order = hardness_order(d)
        order = order if hardest else order[::-1]
        k = check_positive_int(k, "k")
        return rows[order[:k]], d[order[:k]]

    def hardest(self, class_index: int, embeddings=None, labels=None, k: int = 10, mode: int = 0):
        """The ``k`` samples of class ``class_index`` with the most negative decision values.

        Parameters
        ----------
        embeddings, labels : ndarray (N, D) and (N,), optional
            A split to search (default: the validation split given to ``fit``).

        Returns
        -------
        indices : ndarray (<= k,) int64 into the split; values : ndarray (<= k,) float32, ascending.
        """
        return self._extremes(class_index, embeddings, labels, k, mode, True)

    def easiest(self, class_index: int, embeddings=None, labels=None, k: int = 10, mode: int = 0):
        """The ``k`` samples of class ``class_index`` with the most positive decision values (descending)."""
        return self._extremes(class_index, embeddings, labels, k, mode, False)

    # ------------------------------------------------------------------ captions
    def score_captions(self, class_index: int, caption_embeddings, reference_embedding, mode: int = 0) -> np.ndarray:
        """``d(preprocess(emb(c) - emb(reference)))`` for each caption (M,); negative = failure caption."""
        m = self.mode(class_index, mode)
        check_array(caption_embeddings, "caption_embeddings", ndim=2, shape=(None, len(self.mean_)), dtype="float")
        return caption_scores(caption_embeddings, reference_embedding, self.mean_, self.std_, m.coef, m.intercept)

    def top_captions(
        self, class_index: int, captions, caption_embeddings, reference_embedding, k: int = 5, mode: int = 0
    ) -> dict:
        """The ``k`` failure captions (most negative) and easy captions (most positive).

        Parameters
        ----------
        captions : list of str (M,)
        caption_embeddings : ndarray (M, D)
            ``encoder.encode_texts(captions)``.
        reference_embedding : ndarray (D,)
            ``encoder.encode_texts([reference_caption(noun)])[0]``.

        Returns
        -------
        dict with ``"failure"`` and ``"easy"``: lists of ``(caption, score)``.
        """
        scores = self.score_captions(class_index, caption_embeddings, reference_embedding, mode)
        if len(captions) != len(scores):
            raise ValueError(f"captions: expected {len(scores)} captions (one per embedding), got {len(captions)}")
        order = hardness_order(scores)
        k = check_positive_int(k, "k")
        pick = lambda idx: [(captions[i], float(scores[i])) for i in idx[:k]]  # noqa: E731
        return {"failure": pick(order), "easy": pick(order[::-1])}

    # ------------------------------------------------------------------ slerp
    def raw_direction(self, class_index: int, mode: int = 0) -> np.ndarray:
        """The class's direction in the encoder's raw space, unit (D,); positive = easier."""
        return raw_direction(self.mode(class_index, mode).coef, self.std_)

    def rotated_embedding(self, class_index: int, alpha: float, reference_embedding, mode: int = 0) -> np.ndarray:
        """Rotate the normalised reference embedding along the failure direction (raw space, unit (D,)).

        ``alpha`` in [-1, 1]: ``slerp(r, -w, alpha)`` for ``alpha > 0`` (harder), ``slerp(r, +w, -alpha)``
        for ``alpha < 0`` (easier). ``reference_embedding`` is usually the reference caption's embedding,
        or the class's mean image embedding for encoders without a text side.
        """
        ref = check_array(reference_embedding, "reference_embedding", shape=(len(self.mean_),), dtype="float")
        if not np.any(ref):
            raise ValueError("reference_embedding: expected a non-zero vector (it is normalised), got all zeros")
        return rotate(l2_normalize(ref.astype(np.float64)), self.raw_direction(class_index, mode), alpha).astype(
            np.float32
        )

    # ------------------------------------------------------------------ persistence
    _ARRAYS = (
        "mean_",
        "std_",
        "strength_",
        "chance_",
        "p_value_",
        "coef_",
        "intercept_",
        "n_samples_",
        "n_errors_",
        "decision_values_",
        "mode_decision_values_",
        "labels_",
    )

    def save(self, path):
        """Write the fitted estimator: ``<stem>.json`` (parameters, statuses, modes) and ``<stem>.safetensors``
        (the per-class arrays). No pickle.

        Returns
        -------
        Path of the JSON file.
        """

        from safetensors.numpy import save as safetensors_bytes

        from failwidgets.methods.results import fitted_paths, write_fitted

        self.check_fitted()
        path, weights = fitted_paths(path)
        params = self.get_params()
        params["Cs"] = [float(c) for c in np.atleast_1d(params["Cs"])]
        info = {
            "format": "failwidgets.FailureDirections/1",
            "file": weights.name,
            "params": params,
            "n_classes": self.n_classes_,
            "status": list(self.status_),
            "modes": [[m.to_dict() for m in modes] for modes in self.modes_],
        }
        return write_fitted(
            path, safetensors_bytes({k: np.ascontiguousarray(getattr(self, k)) for k in self._ARRAYS}), info
        )

    @classmethod
    def load(cls, path, **params) -> FailureDirections:
        """A fitted FailureDirections from :meth:`save`'s files; ``params`` override stored parameters (e.g. ``progress``)."""
        import json
        import os
        from pathlib import Path

        from safetensors.numpy import load_file

        path = Path(path)
        meta = path if path.suffix == ".json" else path.with_suffix(".json")
        if not meta.is_file():
            raise FileNotFoundError(f"path: no FailureDirections file {os.fspath(meta)!r}")
        info = json.loads(meta.read_text())
        unknown = sorted(set(params) - set(cls().get_params()))
        if unknown:
            raise TypeError(f"params: unknown FailureDirections parameters {unknown}")
        stored = dict(info["params"])
        stored["Cs"] = np.asarray(stored["Cs"], dtype=np.float64)
        est = cls(**{**stored, **params})
        arrays = load_file(os.fspath(meta.with_name(info["file"])))
        for k in cls._ARRAYS:
            setattr(est, k, arrays[k])
        est.n_classes_ = int(info["n_classes"])
        est.status_ = list(info["status"])
        est.modes_ = [[FailureMode.from_dict(m) for m in modes] for modes in info["modes"]]
        return est

    # ------------------------------------------------------------------ interventions
    def filter_pool(self, pool_embeddings, pool_classes, k: int = 75, mode: int = 0) -> np.ndarray:
        """Indices of the ``k`` most failure-aligned pool images per class (see ``filter_pool``)."""
        return filter_pool(self.decision_function(pool_embeddings, pool_classes, mode), pool_classes, k)

    def upweight(self, train_embeddings, train_labels, factor: float = 2.0, mode: int = 0) -> np.ndarray:
        """Per-example weights (N,) for the training split: ``factor`` where d <= 0, else 1."""
        return upweight(self.decision_function(train_embeddings, train_labels, mode), factor)


def _fit_class_modes(est, X, labels, target, svm, Cs, max_modes, n_perm, c):
    """The failure modes of class ``c`` (one job of :meth:`FailureDirections.fit`, local or a Ray task);
    ``X`` holds the raw embeddings, only class ``c``'s rows are preprocessed."""
    rows = labels == c
    return est._fit_modes(preprocess(X[rows], est.mean_, est.std_), target[rows], svm, Cs, max_modes, n_perm)
