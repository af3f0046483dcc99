"""Yang, Kim & Joo, "Explaining Deep Convolutional Neural Networks via Latent Visual-Semantic Filter
Attention" (LaViSE), CVPR 2022.

An explainer head maps filter-attended features into a word space; each conv filter is named by the words
nearest to its top activating images.
"""

from failwidgets.methods.lavise.explainer import (
    METHODS,
    whole_image_masks,
    FilterExplanations,
    FilterEvaluation,
    LaViSE,
    compare_groups,
    compute_features,
)
from failwidgets.methods.lavise.attention import (
    spatial_cosine,
    POOLINGS,
    filter_attention,
    attended_pooled,
    resize_masks,
    masked_pooled,
    activation_masked_pooled,
    upsampled_maps,
)
from failwidgets.methods.lavise.head import (
    ExplainerHead,
    hinge_rank_loss,
    train_head,
    rank_words,
)
from failwidgets.methods.lavise.evaluation import (
    activation_thresholds,
    activation_masks,
    filter_concept_iou,
    recall_at_k,
    qualified_share,
)
from failwidgets.methods.lavise.scoring import (
    WORD_SCORINGS,
    word_hit_counts,
    pmi_scores,
    score_words,
    top_word_share,
)
from failwidgets.methods.lavise import explainer, attention, head, evaluation, scoring

__all__ = [
    "METHODS",
    "whole_image_masks",
    "FilterExplanations",
    "LaViSE",
    "FilterEvaluation",
    "compute_features",
    "compare_groups",
    "spatial_cosine",
    "POOLINGS",
    "filter_attention",
    "attended_pooled",
    "resize_masks",
    "masked_pooled",
    "activation_masked_pooled",
    "upsampled_maps",
    "ExplainerHead",
    "hinge_rank_loss",
    "train_head",
    "rank_words",
    "activation_thresholds",
    "activation_masks",
    "filter_concept_iou",
    "recall_at_k",
    "qualified_share",
    "WORD_SCORINGS",
    "word_hit_counts",
    "pmi_scores",
    "score_words",
    "top_word_share",
    "explainer",
    "attention",
    "head",
    "evaluation",
    "scoring",
]
