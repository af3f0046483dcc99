"""Demo models trained on the planted-bias world, shipped as package data.

``failwidgets.demo.load()`` returns the world with its target CNN, robust feature model,
vision-language encoder and embedding decoder, offline. ``failwidgets.demo.training.targets`` reproduces the
weights (``python -m failwidgets.demo.training.targets --out failwidgets/demo/weights``).
"""

from failwidgets.demo.loading import VARIANTS, Demo, load, load_metadata, load_model
from failwidgets.demo.models import AttributeModel, DemoVisionLanguageEncoder, EmbeddingDecoder, RobustNet, TargetCNN

__all__ = [
    "load",
    "Demo",
    "VARIANTS",
    "load_metadata",
    "load_model",
    "TargetCNN",
    "AttributeModel",
    "RobustNet",
    "DemoVisionLanguageEncoder",
    "EmbeddingDecoder",
]
