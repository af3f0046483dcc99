"""The four papers as widget-free, scikit-learn-like objects (no ipywidgets here).

One subpackage per paper (``relations``, ``barlow``, ``lavise``, ``directions``), each with a curated
``__init__``; the failure sign convention, the fitted check and the result types shared by all of them
are re-exported here.
"""

from failwidgets.methods._base import CORRECT, ERROR, check_fitted, failure_target, hardness_order, is_failure
from failwidgets.methods._evidence import SliceEvidence, slice_evidence, wilson_interval
from failwidgets.methods.barlow import BarlowTree, ClassTree, TreeReport, fit_class_tree
from failwidgets.methods.directions import (
    FailureDirections,
    FailureMode,
    GeneratorDecoder,
    RetrievalDecoder,
    UnclipDecoder,
    slerp,
)
from failwidgets.methods.lavise import FilterEvaluation, FilterExplanations, LaViSE, compare_groups
from failwidgets.methods.relations import RelationDiagnosis, RelationGraph, RelationMiner, merge_annotations
from failwidgets.methods.results import Result

__all__ = [
    "CORRECT",
    "ERROR",
    "failure_target",
    "hardness_order",
    "is_failure",
    "SliceEvidence",
    "slice_evidence",
    "wilson_interval",
    "check_fitted",
    "Result",
    "RelationDiagnosis",
    "ClassTree",
    "TreeReport",
    "FilterExplanations",
    "FilterEvaluation",
    "FailureMode",
    "FailureDirections",
    "RetrievalDecoder",
    "GeneratorDecoder",
    "UnclipDecoder",
    "slerp",
    "BarlowTree",
    "fit_class_tree",
    "LaViSE",
    "compare_groups",
    "RelationMiner",
    "RelationGraph",
    "merge_annotations",
]
