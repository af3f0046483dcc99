"""``failwidgets.demo.load()``: the planted-bias world, its shipped demo models and cached outputs.

Weights are package data (``failwidgets/demo/weights/*.safetensors`` + ``metadata.json``), read with
``importlib.resources``; nothing is downloaded and nothing is trained implicitly.
"""

from __future__ import annotations

import json
import os
import warnings
from importlib import resources
from typing import Any, Callable, Sequence

import numpy as np
from safetensors.torch import load_file
from torch import nn

from failwidgets._validation import check_choice
from failwidgets.compute import get_device
from failwidgets.demo._inference import predict_batches
from failwidgets.demo.models import DemoVisionLanguageEncoder, EmbeddingDecoder, RobustNet, TargetCNN

__all__ = ["Demo", "load", "load_metadata", "load_model", "resolve", "VARIANTS", "world_config"]

#: variant -> (WorldConfig constructor name, target weights file stem)
VARIANTS = {"default": "demo", "control": "control"}
_CLASSES = {
    "TargetCNN": TargetCNN,
    "RobustNet": RobustNet,
    "DemoVisionLanguageEncoder": DemoVisionLanguageEncoder,
    "EmbeddingDecoder": EmbeddingDecoder,
}
_SPLITS = ("train", "val", "test", "pool")


def _weights_dir():
    return resources.files("failwidgets.demo") / "weights"


def load_metadata() -> dict:
    """The shipped ``metadata.json``: model configs, world fingerprints, measured accuracies, timings."""
    f = _weights_dir() / "metadata.json"
    if not f.is_file():
        raise FileNotFoundError(
            "failwidgets/demo/weights/metadata.json is missing from the installed package; "
            "reinstall failwidgets or run `python -m failwidgets.demo.training.targets --out failwidgets/demo/weights`"
        )
    return json.loads(f.read_text())


def load_model(name: str, metadata: dict | None = None, device=None) -> nn.Module:
    """One shipped model by its name in ``metadata["models"]`` (``"target-default"``,
    ``"target-control"``, ``"robust"``, ``"vl"``, ``"decoder"``), in eval mode on ``get_device(device)``."""
    metadata = load_metadata() if metadata is None else metadata
    check_choice(name, "name", list(metadata["models"]))
    info = metadata["models"][name]
    model = _CLASSES[info["class"]](**info["kwargs"])
    with resources.as_file(_weights_dir() / info["file"]) as path:
        model.load_state_dict(load_file(os.fspath(path)))
    return model.to(get_device(device)).eval()


def world_config(variant: str = "default"):
    """The ``WorldConfig`` of a variant (``WorldConfig.demo()`` or ``WorldConfig.control()``)."""
    from failwidgets.world import WorldConfig

    check_choice(variant, "variant", list(VARIANTS))
    return getattr(WorldConfig, VARIANTS[variant])()


class Demo:
    """The world of one variant with its demo models and cached per-split outputs.

    Attributes
    ----------
    variant : str
        ``"default"`` (planted biases, tau 0.95 / 1.0) or ``"control"`` (every tau 0).
    world : failwidgets.world.World
    target : TargetCNN
        The model to diagnose, trained on this variant's train split. ``target.attribute_model()``
        gives the attribute view (same layer names).
    robust : RobustNet
        L2-adversarially trained features; penultimate features at ``features``, last conv map at
        ``layer3``.
    vl : DemoVisionLanguageEncoder
        The vision-language encoder (``Encoder`` protocol).
    decoder : EmbeddingDecoder
        VL image embedding -> image.
    metadata : dict
        The shipped metadata (configs, fingerprints, measured accuracies).
    cache : failwidgets.compute.EmbeddingCache
    progress : bool
        Default of the ``progress`` argument of the per-split methods.
    """

    def __init__(self, variant, world, target, robust, vl, decoder, metadata, cache, progress: bool = True) -> None:
        self.variant, self.world, self.target, self.robust = variant, world, target, robust
        self.vl, self.decoder, self.metadata, self.cache = vl, decoder, metadata, cache
        self.progress = progress

    def __repr__(self) -> str:
        sizes = {s: len(self.world[s].labels) for s in _SPLITS}
        return f"Demo(variant={self.variant!r}, classes={self.world.class_names}, splits={sizes})"

    # -- cached outputs ----------------------------------------------------------------------------
    def _cached(self, output: str, model: nn.Module, split: str, compute: Callable[[], np.ndarray]) -> np.ndarray:
        # the model is hashed on every call (milliseconds for these sizes) so a fine-tuned model
        # never reads another model's cached outputs
        from failwidgets.compute import cached

        check_choice(split, "split", _SPLITS)
        return cached(self.cache, compute, what=output, model=model, world=self.world.fingerprint, split=split)

    def class_logits(self, split: str = "test", *, progress: bool | None = None) -> np.ndarray:
        """Target class logits: ndarray float32 (N, n_classes)."""
        progress = self.progress if progress is None else progress
        return self._cached(
            "class_logits",
            self.target,
            split,
            lambda: predict_batches(
                self.target, self.world[split].images, progress=progress, desc=f"target logits {split}"
            ),
        )

    def predictions(self, split: str = "test", *, progress: bool | None = None) -> np.ndarray:
        """Target class predictions: ndarray int64 (N,)."""
        return self.class_logits(split, progress=progress).argmax(1).astype(np.int64)

    def attribute_logits(self, split: str = "test", *, progress: bool | None = None) -> np.ndarray:
        """Target attribute logits: ndarray float32 (N, n_attributes)."""
        progress = self.progress if progress is None else progress
        return self._cached(
            "attribute_logits",
            self.target,
            split,
            lambda: predict_batches(
                self.target,
                self.world[split].images,
                fn=self.target.attributes,
                progress=progress,
                desc=f"target attributes {split}",
            ),
        )

    def accuracy(self, split: str = "test") -> float:
        """Target accuracy on a split."""
        return float(np.mean(self.predictions(split, progress=False) == self.world[split].labels))

    def embeddings(self, split: str = "test", model: str = "vl", *, progress: bool | None = None) -> np.ndarray:
        """Per-image embeddings of a split.

        Parameters
        ----------
        model : ``"vl"`` (unit-norm VL image embeddings, (N, 50)), ``"robust"`` (robust penultimate
            features, (N, 64)) or ``"target"`` (target pooled features, (N, 128)).

        Returns
        -------
        ndarray float32 (N, D)
        """
        check_choice(model, "model", ["vl", "robust", "target"])
        check_choice(split, "split", _SPLITS)
        progress = self.progress if progress is None else progress
        images = self.world[split].images
        if model == "vl":
            from failwidgets.compute import encode_with_cache

            return encode_with_cache(
                self.vl, images, cache=self.cache, data_id=f"{self.world.fingerprint}/{split}", progress=progress
            )
        m = self.robust if model == "robust" else self.target
        fn = m.embed if model == "robust" else m.features
        return self._cached(
            f"{model}_features",
            m,
            split,
            lambda: predict_batches(m, images, fn=fn, progress=progress, desc=f"{model} features {split}"),
        )

    def text_embeddings(self, texts: Sequence[str]) -> np.ndarray:
        """VL text embeddings of captions: ndarray float32 (len(texts), 50)."""
        return self.vl.encode_texts(texts)


def load(variant: str = "default", cache: Any = None, progress: bool = True, device=None) -> Demo:
    """The planted-bias world of ``variant`` with its shipped demo models, offline.

    Parameters
    ----------
    variant : ``"default"`` (``WorldConfig.demo()``: shape -> background at tau 0.95, texture -> size
        at tau 1.0) or ``"control"`` (``WorldConfig.control()``: every tau 0).
    cache : EmbeddingCache, directory path or None (the default cache directory, see
        :class:`failwidgets.compute.EmbeddingCache`) for the per-split outputs of :class:`Demo`.
    progress : bool
        Default for the progress bars of the returned :class:`Demo`'s per-split methods.
    device : str or torch.device, optional
        Passed to :func:`failwidgets.compute.get_device`.

    Returns
    -------
    Demo
    """
    from failwidgets.world import make_world

    check_choice(variant, "variant", list(VARIANTS))
    from failwidgets.compute import as_cache

    cache = as_cache(cache, allow_none=False)
    metadata = load_metadata()
    world = make_world(world_config(variant))
    recorded = metadata["worlds"][variant]["fingerprint"]
    if world.fingerprint != recorded:
        warnings.warn(
            f"the {variant!r} world generated here (fingerprint {world.fingerprint[:12]}) differs from the "
            f"one the shipped weights were trained on ({recorded[:12]}); the recorded accuracies may not "
            "hold. Retrain with `python -m failwidgets.demo.training.targets --out failwidgets/demo/weights`.",
            RuntimeWarning,
            stacklevel=2,
        )
    models = {name: load_model(name, metadata, device) for name in (f"target-{variant}", "robust", "vl", "decoder")}
    return Demo(
        variant,
        world,
        models[f"target-{variant}"],
        models["robust"],
        models["vl"],
        models["decoder"],
        metadata,
        cache,
        progress,
    )


def resolve(
    demo: Demo | None = None, variant: str = "default", small: bool | None = None, progress: bool = True
) -> tuple[Demo, bool]:
    """What every widget's ``from_demo`` starts with: the given demo or ``load(variant)``, and the size
    setting (``small=None`` means small when the environment variable ``FAILWIDGETS_NOTEBOOK_TEST`` is
    set, as in the notebook tests)."""
    if small is None:
        small = bool(os.environ.get("FAILWIDGETS_NOTEBOOK_TEST"))
    if demo is None:
        demo = load(variant, progress=progress)
    elif not isinstance(demo, Demo):
        hint = f" (for a variant, pass variant={demo!r})" if isinstance(demo, str) else ""
        raise TypeError(f"demo: expected a failwidgets.demo.Demo or None, got {type(demo).__name__}{hint}")
    return demo, bool(small)
