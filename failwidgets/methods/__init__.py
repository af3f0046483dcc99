"""The four papers as widget-free, scikit-learn-like objects (no ipywidgets here)."""
from .barlow import BarlowTree, fit_class_tree
from .directions import FailureDirections, GeneratorDecoder, RetrievalDecoder, UnclipDecoder, slerp
from .lavise import LaViSE, compare_groups
from .relations import RelationGraph, RelationMiner, merge_annotations

__all__ = [
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
