"""Singla, Nushi, Shah, Kamar & Horvitz, "Understanding Failures of Deep Networks via Robust Feature
Extraction" (Barlow), CVPR 2021.

A decision tree on robust features predicts a class's failures; leaves with high importance value are
failure modes (ALER, error coverage, Definitions 1-5).
"""

from failwidgets.methods.barlow import attack, metrics, naming, selection, tree, visual
from failwidgets.methods.barlow.attack import (
    FeatureAttack,
    feature_attack,
)
from failwidgets.methods.barlow.metrics import (
    aler,
    error_coverage,
    error_rate,
    importance_value,
    is_valid_failure_mode,
)
from failwidgets.methods.barlow.naming import (
    FeatureName,
    name_features,
    name_features_with_encoder,
    named_rule,
    named_rules_frame,
    split_features,
)
from failwidgets.methods.barlow.per_class import fit_class_trees
from failwidgets.methods.barlow.selection import (
    MI_METHODS,
    binned_mutual_info,
    mutual_info,
    select_top_k,
)
from failwidgets.methods.barlow.tree import (
    GROUPINGS,
    BarlowTree,
    ClassTree,
    TreeReport,
    extract_features,
    fit_class_tree,
    group_mask,
)
from failwidgets.methods.barlow.visual import (
    feature_heatmaps,
    top_activating,
)

__all__ = [
    "GROUPINGS",
    "group_mask",
    "TreeReport",
    "BarlowTree",
    "ClassTree",
    "fit_class_tree",
    "fit_class_trees",
    "extract_features",
    "error_rate",
    "error_coverage",
    "importance_value",
    "aler",
    "is_valid_failure_mode",
    "MI_METHODS",
    "binned_mutual_info",
    "mutual_info",
    "select_top_k",
    "top_activating",
    "feature_heatmaps",
    "FeatureAttack",
    "feature_attack",
    "FeatureName",
    "name_features",
    "name_features_with_encoder",
    "split_features",
    "named_rule",
    "named_rules_frame",
    "tree",
    "metrics",
    "selection",
    "visual",
    "attack",
    "naming",
]
