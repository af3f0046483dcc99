"""Yang, Kim & Joo, "Explaining Deep Convolutional Neural Networks via Latent Visual-Semantic Filter
Attention" (LaViSE), CVPR 2022.

An explainer head maps filter-attended features into a word space; each conv filter is named by the words
nearest to its top activating images.
"""

from failwidgets.methods.lavise import attention, evaluation, explainer, head, scoring
from failwidgets.methods.lavise.attention import (
    POOLINGS,
    activation_masked_pooled,
    attended_pooled,
    filter_attention,
    masked_pooled,
    resize_masks,
    spatial_cosine,
    upsampled_maps,
)
from failwidgets.methods.lavise.evaluation import (
    activation_masks,
    activation_thresholds,
    filter_concept_iou,
    qualified_share,
    recall_at_k,
)
from failwidgets.methods.lavise.explainer import (
    METHODS,
    FilterEvaluation,
    FilterExplanations,
    LaViSE,
    compare_groups,
    compute_features,
    whole_image_masks,
)
from failwidgets.methods.lavise.head import (
    ExplainerHead,
    hinge_rank_loss,
    rank_words,
    train_head,
)
from failwidgets.methods.lavise.scoring import (
    WORD_SCORINGS,
    pmi_scores,
    score_words,
    top_word_share,
    word_hit_counts,
)

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
