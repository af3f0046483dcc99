"""Jain, Lawrence, Moitra & Madry, "Distilling Model Failures as Directions in Latent Space", ICLR 2023.

A linear SVM per class in (whitened) vision-language space separates errors from correct predictions;
its normal is the failure direction, its decision values rank hard and easy images.
"""

from failwidgets.methods.directions import captions, decoders, estimator, geometry, interventions
from failwidgets.methods.directions.captions import (
    TEMPLATE,
    caption_members,
    caption_scores,
    generate_captions,
    reference_caption,
)
from failwidgets.methods.directions.decoders import (
    Decoder,
    GeneratorDecoder,
    RetrievalDecoder,
    UnclipDecoder,
)
from failwidgets.methods.directions.estimator import (
    STATUS_ABSENT,
    STATUS_FEW_CORRECT,
    STATUS_FEW_ERRORS,
    STATUS_NO_CORRECT,
    STATUS_NO_ERRORS,
    STATUS_OK,
    FailureDirections,
    FailureMode,
)
from failwidgets.methods.directions.geometry import (
    l2_normalize,
    preprocess,
    raw_direction,
    rotate,
    slerp,
    whitening_stats,
)
from failwidgets.methods.directions.interventions import (
    filter_pool,
    upweight,
)

__all__ = [
    "STATUS_OK",
    "STATUS_ABSENT",
    "STATUS_NO_ERRORS",
    "STATUS_NO_CORRECT",
    "STATUS_FEW_ERRORS",
    "STATUS_FEW_CORRECT",
    "FailureMode",
    "FailureDirections",
    "l2_normalize",
    "whitening_stats",
    "preprocess",
    "slerp",
    "rotate",
    "raw_direction",
    "TEMPLATE",
    "reference_caption",
    "generate_captions",
    "caption_scores",
    "caption_members",
    "Decoder",
    "RetrievalDecoder",
    "GeneratorDecoder",
    "UnclipDecoder",
    "filter_pool",
    "upweight",
    "estimator",
    "geometry",
    "captions",
    "decoders",
    "interventions",
]
