"""Zhang, Wang & Zhu, "Examining CNN Representations with respect to Dataset Bias", AAAI 2018.

Mines attribute relations from a CNN's conv-layer gradients (Eqs. 1-5), compares them with ground-truth
relations (``RelationGraph``) and reports blind spots and failure modes.
"""

from failwidgets.methods.relations import evaluation, graph, kl, masks, miner, shared
from failwidgets.methods.relations.evaluation import (
    entropy_baseline,
    evaluate_modes,
    failure_mode_cell,
    mode_accuracy_drop,
    mode_counts,
    to_signs,
)
from failwidgets.methods.relations.graph import (
    DEFAULT_LEVELS,
    RELATION_LEVELS,
    SCHEMA,
    SCHEMA_VERSION,
    RelationGraph,
    merge_annotations,
)
from failwidgets.methods.relations.kl import (
    attribute_kl,
    density_from_counts,
    gaussian_density,
    histogram_counts,
    histogram_density,
    kl_gaussian_histogram,
    relation_matrices,
)
from failwidgets.methods.relations.masks import (
    SELECTIONS,
    contributions,
    select_mask,
)
from failwidgets.methods.relations.miner import (
    RelationDiagnosis,
    RelationMiner,
    heatmap_rgb,
    inference_map,
)
from failwidgets.methods.relations.shared import AnnotationConflictError, AnnotationFile, WriteReport

__all__ = [
    "RelationDiagnosis",
    "RelationMiner",
    "inference_map",
    "heatmap_rgb",
    "DEFAULT_LEVELS",
    "RELATION_LEVELS",
    "SCHEMA",
    "SCHEMA_VERSION",
    "RelationGraph",
    "merge_annotations",
    "relation_matrices",
    "histogram_density",
    "histogram_counts",
    "density_from_counts",
    "gaussian_density",
    "kl_gaussian_histogram",
    "attribute_kl",
    "SELECTIONS",
    "contributions",
    "select_mask",
    "to_signs",
    "mode_counts",
    "failure_mode_cell",
    "mode_accuracy_drop",
    "entropy_baseline",
    "evaluate_modes",
    "AnnotationFile",
    "AnnotationConflictError",
    "WriteReport",
    "miner",
    "graph",
    "kl",
    "masks",
    "evaluation",
    "shared",
]
