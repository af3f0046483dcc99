"""Tiny fit cases of the four registered methods, for the shared contract checks.

Each case builds small planted data (a few dozen samples; for the methods that run a model, a tiny
torch model built from a fixed seed) so that one fit takes well under two seconds on a CPU. A
:class:`~failwidgets.registry.MethodSpec` names its case with ``estimator_case="module:function"``;
the function takes no argument and returns an :class:`EstimatorCase`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

__all__ = ["EstimatorCase", "relations_case", "barlow_case", "lavise_case", "directions_case"]


@dataclass(frozen=True)
class EstimatorCase:
    """How to exercise one estimator class on tiny data.

    Attributes
    ----------
    name : str, the registry name of the method
    make : callable ``(**params) -> estimator``, a new unfitted estimator with the case's small parameters
        (``params`` override them, e.g. ``progress=False``)
    fit : callable ``(estimator) -> Any``, runs the fit verb on the tiny data and returns what it returned
    outputs : callable ``(fitted) -> Any``, what the fitted estimator computes (arrays, frames, results),
        compared between two fits for determinism
    needs_fit : callable ``(estimator) -> Any``, a call that requires a fitted estimator
    bad_inputs : tuple of ``(argument name, callable (fitted) -> Any)``, calls with one bad argument
    results : callable ``(fitted) -> list``, the result objects of a fitted estimator
    load_kwargs : callable ``(fitted) -> dict``, what ``type(fitted).load(path, ...)`` needs besides the
        path (estimators with ``save``/``load``: the objects that are not stored, such as the model)
    """

    name: str
    make: Callable[..., Any]
    fit: Callable[[Any], Any]
    outputs: Callable[[Any], Any]
    needs_fit: Callable[[Any], Any]
    bad_inputs: tuple = ()
    results: Callable[[Any], list] = field(default=lambda est: [])
    load_kwargs: Callable[[Any], dict] = field(default=lambda est: {})


def _tiny_cnn(seed: int, out_dim: int, channels: int = 4):
    """A 2-conv CNN on 3 x 8 x 8 images: ``features`` (channels, 4, 4) -> average -> ``head`` (out_dim)."""
    import torch
    from torch import nn

    class TinyCNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(nn.Conv2d(3, channels, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2))
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.head = nn.Linear(channels, out_dim)

        def forward(self, x):
            return self.head(self.pool(self.features(x)).flatten(1))

    torch.manual_seed(seed)
    return TinyCNN().eval()


def _images(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.integers(0, 256, size=(n, 8, 8, 3), dtype=np.uint8)


# -- Zhang et al. 2018 --------------------------------------------------------------------------------
def relations_case() -> EstimatorCase:
    """RelationMiner.fit_model on 40 random images through a tiny CNN with 3 attribute outputs."""
    from failwidgets.methods.relations import RelationGraph, RelationMiner

    rng = np.random.default_rng(0)
    images = _images(rng, 40)
    attributes = (rng.random((40, 3)) < 0.5).astype(np.float32)
    attributes[:2] = [[1, 0, 1], [0, 1, 0]]  # every attribute present and absent somewhere
    names = ["a", "b", "c"]
    model = _tiny_cnn(0, 3)

    def make(**params):
        return RelationMiner(
            **{"mask_images": 24, "max_units": 16, "grid_size": 200, "batch_size": 16, "random_state": 0, **params}
        )

    def graph():
        g = RelationGraph(names)
        g.set("a", "b", "not related")
        g.set("a", "c", "not related")
        g.set("b", "c", "probably negative")
        return g

    def fit(est):
        return est.fit_model(model, images, "features", attributes, names)

    def outputs(est):
        return {"masks": est.masks_, "relations": est.relations_, "diagnosis": est.diagnose(graph())}

    return EstimatorCase(
        name="relations",
        make=make,
        fit=fit,
        outputs=outputs,
        needs_fit=lambda est: est.diagnose(graph()),
        bad_inputs=(
            ("attributes", lambda est: est.fit_model(model, images, "features", attributes[:, :2], names[:2])),
            ("attribute_names", lambda est: est.fit_model(model, images, "features", attributes, ["a", "b"])),
            ("layer", lambda est: est.fit_model(model, images, "feature", attributes, names)),
            (
                "selection",
                lambda est: est.set_params(selection="nope").fit_model(model, images, "features", attributes, names),
            ),
            ("graph", lambda est: est.diagnose("a graph")),
            ("gradients", lambda est: est.inference_patterns(np.zeros((2, 3, 4, 4)))),
        ),
        results=lambda est: [est.diagnose(graph())],
    )


# -- Singla et al. 2021 -------------------------------------------------------------------------------
def barlow_case() -> EstimatorCase:
    """BarlowTree.fit_model on 60 images whose failures follow one feature of a tiny CNN."""
    from failwidgets.methods.barlow import BarlowTree, extract_features

    rng = np.random.default_rng(1)
    images = _images(rng, 60)
    model = _tiny_cnn(1, 2, channels=6)
    feats = extract_features(model, images, "pool", progress=False)
    failures = feats[:, 2] > np.median(feats[:, 2])  # planted: the upper half of feature 2 fails
    failures[:3] = ~failures[:3]
    held_images = _images(np.random.default_rng(2), 30)

    def make(**params):
        return BarlowTree(**{"k": 4, "max_depth": 2, "batch_size": 32, "random_state": 0, **params})

    def fit(est):
        return est.fit_model(model, images, "pool", failures)

    def outputs(est):
        held = extract_features(model, held_images, "pool", progress=False)
        return {
            "mi": est.mi_,
            "selected": est.selected_features_,
            "fit": est.fit_report_,
            "held-out": est.report(held, np.zeros(len(held), bool)),
        }

    return EstimatorCase(
        name="barlow",
        make=make,
        fit=fit,
        outputs=outputs,
        needs_fit=lambda est: est.apply(feats),
        bad_inputs=(
            ("failures", lambda est: est.fit_model(model, images, "pool", failures[:10])),
            ("failures", lambda est: est.fit_model(model, images, "pool", np.zeros(60, bool))),
            ("layer", lambda est: est.fit_model(model, images, "poool", failures)),
            ("max_depth", lambda est: est.set_params(max_depth=7).fit(feats, failures)),
            ("k", lambda est: est.set_params(k=99).fit(feats, failures)),
            ("features", lambda est: est.apply(feats[:, :3])),
        ),
        results=lambda est: [est.fit_report_, est.fit_report_.with_thresholds(0.0, 0.0)],
    )


# -- Yang et al. 2022 ---------------------------------------------------------------------------------
def lavise_case() -> EstimatorCase:
    """LaViSE.fit_model on 24 images with 3 planted concepts (image thirds) and a 6-word random space."""
    from failwidgets.compute.words import WordSpace
    from failwidgets.methods.lavise import LaViSE

    rng = np.random.default_rng(3)
    images = _images(rng, 24)
    words = ["top", "middle", "bottom", "grass", "sand", "snow"]
    space = WordSpace(words, rng.normal(size=(len(words), 8)), name="tiny-case")
    masks = {w: np.zeros((24, 8, 8), bool) for w in words[:3]}
    for i in range(24):
        part = i % 3
        masks[words[part]][i, 3 * part : 3 * part + 2] = True
    model = _tiny_cnn(3, 2, channels=5)

    def make(**params):
        return LaViSE(
            **{
                "word_space": space,
                "epochs": 3,
                "batch_size": 16,
                "lr": 1e-2,
                "p": 4,
                "s": 2,
                "quantile": 0.05,
                "random_state": 0,
                **params,
            }
        )

    def fit(est):
        return est.fit_model(model, images, "features", masks)

    def explain(est):
        return est.explain(images, methods=("attention", "original"))

    return EstimatorCase(
        name="lavise",
        make=make,
        fit=fit,
        outputs=lambda est: {"explanations": explain(est), "evaluation": est.evaluate(explain(est), masks, ks=(1, 2))},
        needs_fit=explain,
        bad_inputs=(
            ("layer", lambda est: est.fit_model(model, images, "head", masks)),
            ("concept_masks", lambda est: est.fit_model(model, images, "features", {"top": masks["top"][:5]})),
            ("concept_masks", lambda est: est.fit_model(model, images, "features", {"purple": masks["top"], **masks})),
            ("holdout", lambda est: est.set_params(holdout=["nope"]).fit_model(model, images, "features", masks)),
            ("methods", lambda est: est.explain(images, methods=("gradcam",))),
            ("filters", lambda est: est.explain(images, filters=[99])),
        ),
        results=lambda est: [explain(est), est.evaluate(explain(est), masks, ks=(1,))],
        load_kwargs=lambda est: {"model": est.model_, "word_space": est.word_space},
    )


# -- Jain et al. 2023 ---------------------------------------------------------------------------------
def directions_case() -> EstimatorCase:
    """FailureDirections.fit on 150 embeddings of 3 classes; a minority along axis 3 fails in two classes."""
    from failwidgets.methods.directions import FailureDirections

    rng = np.random.default_rng(4)
    n, d = 150, 8
    labels = np.repeat(np.arange(3), n // 3)
    emb = rng.normal(size=(n, d))
    emb[np.arange(n), 4 + labels] += 3.0
    minority = rng.random(n) < 0.3
    emb[minority, 3] += 3.0
    err = (rng.random(n) < np.where(minority, 0.8, 0.05)) & (labels != 1)
    preds = np.where(err, (labels + 1) % 3, labels)
    train = rng.normal(size=(200, d))

    def make(**params):
        return FailureDirections(**{"max_modes": 2, "n_permutations": 5, "random_state": 0, **params})

    def fit(est):
        return est.fit(emb, labels, preds, train)

    def outputs(est):
        return {
            "strength": est.strength_,
            "coef": est.coef_,
            "decision": est.decision_values_,
            "hardest": est.hardest(0, k=5),
            "modes": [m for modes in est.modes_ for m in modes],
        }

    return EstimatorCase(
        name="directions",
        make=make,
        fit=fit,
        outputs=outputs,
        needs_fit=lambda est: est.hardest(0),
        bad_inputs=(
            ("labels", lambda est: est.fit(emb, labels[:10], preds, train)),
            ("train_embeddings", lambda est: est.fit(emb, labels, preds, train[:, :3])),
            ("train_embeddings", lambda est: est.fit(emb, labels, preds)),
            ("n_splits", lambda est: est.set_params(n_splits=1).fit(emb, labels, preds, train)),
            ("Cs", lambda est: est.set_params(Cs=[-1.0]).fit(emb, labels, preds, train)),
            ("class_index", lambda est: est.mode(7)),
            ("embeddings", lambda est: est.decision_function(emb[:, :3], labels)),
        ),
        results=lambda est: [m for modes in est.modes_ for m in modes],
    )
