"""A planted-truth benchmark for slice discovery (dcbench's protocol on the procedural world).

>>> from failwidgets.slices import draw_settings, build_setting, default_methods, evaluate
>>> specs = draw_settings(3, seed=0)                       # doctest: +SKIP
>>> rows = evaluate(specs, default_methods())               # doctest: +SKIP

A method implements :class:`SliceMethod` (``name``, ``fit(val) -> self``, ``score(data) -> (N,) or (N, S)``)
on :class:`ClassData`; ``python -m failwidgets.slices.run --profile small`` runs the benchmark.
"""

from failwidgets.slices.domino import DominoMixture, DominoSlicer
from failwidgets.slices.interface import MAX_SLICES, ClassData, FunctionMethod, SliceMethod, check_memberships
from failwidgets.slices.methods import (
    BarlowLeafMethod,
    ConfidenceMethod,
    DirectionsMethod,
    DominoMethod,
    LossMethod,
    RandomMethod,
    default_methods,
)
from failwidgets.slices.metrics import FOUND_THRESHOLD, best_slice, precision_at_k, slice_precisions, summarize
from failwidgets.slices.settings import KINDS, Setting, SettingSpec, build_setting, draw_settings

__all__ = [
    "ClassData",
    "SliceMethod",
    "FunctionMethod",
    "MAX_SLICES",
    "check_memberships",
    "precision_at_k",
    "slice_precisions",
    "best_slice",
    "summarize",
    "FOUND_THRESHOLD",
    "DominoMixture",
    "DominoSlicer",
    "RandomMethod",
    "ConfidenceMethod",
    "LossMethod",
    "DominoMethod",
    "DirectionsMethod",
    "BarlowLeafMethod",
    "default_methods",
    "KINDS",
    "SettingSpec",
    "Setting",
    "draw_settings",
    "build_setting",
]
