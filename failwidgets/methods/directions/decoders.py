"""Decoders: from embeddings to images, behind one small interface.

A :class:`Decoder` maps embeddings ``(M, D)`` of the encoder's raw space to images ``(M, 3, H, W)`` in
``[0, 1]``. Two implementations ship:

- :class:`RetrievalDecoder`: the nearest cached images by cosine similarity (fast at 50k x 512: one
  float32 matrix product and an ``argpartition``).
- :class:`GeneratorDecoder`: any torch module that maps embeddings to images, e.g. the demo's small decoder
  (``failwidgets.demo``), trained to invert the demo encoder.

Plugging in a diffusion model that takes CLIP image embeddings (unCLIP)
-----------------------------------------------------------------------
:class:`UnclipDecoder` wraps a ``diffusers`` ``StableUnCLIPImg2ImgPipeline`` (or any pipeline called as
``pipe(prompt=..., image_embeds=..., num_inference_steps=..., output_type="pt")`` returning ``.images``)::

    from diffusers import StableUnCLIPImg2ImgPipeline               # pip install diffusers transformers
    pipe = StableUnCLIPImg2ImgPipeline.from_pretrained("stabilityai/stable-diffusion-2-1-unclip-small",
                                                       torch_dtype=torch.float16).to("cuda")
    DirectionSlider(..., decoders={"unclip": UnclipDecoder(pipe, embed_norm=...)})

The failure direction must live in the same CLIP space as the pipeline's image encoder (for the
``-small`` checkpoint, OpenCLIP ViT-L/14 image embeddings: fit ``FailureDirections`` on embeddings from
that encoder). Our rotated embeddings are unit vectors, while unCLIP was trained on unnormalised ones, so
they are scaled by ``embed_norm``: the typical L2 norm of the pipeline's own image embeddings
(:meth:`UnclipDecoder.typical_norm` measures it on a few of your images). Diffusion takes seconds per
image: the decoder says ``interactive = False`` and the widget stops updating while the slider moves. The
demo's decoder plugs in directly: ``GeneratorDecoder(demo.decoder, embed_dim=demo.decoder.embed_dim)``.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch

from failwidgets._validation import check_array, check_positive_int
from failwidgets.methods.directions.geometry import l2_normalize, normalized_rows


class Decoder:
    """Interface: ``decode(embeddings (M, D)) -> images (M, 3, H, W)``, float in [0, 1] (torch tensor).

    ``decode_many(embedding (D,), k)`` returns up to ``k`` images for one embedding (default: ``decode``
    repeated, which suits stochastic generators). ``interactive`` says whether a call is fast enough to run
    while a slider moves. ``select_class(class_index)`` is called by the widget before decoding for a class
    (default: nothing; :class:`RetrievalDecoder` with ``labels`` searches that class's images only).
    """

    interactive: bool = True
    embed_dim: int | None = None

    def decode(self, embeddings) -> torch.Tensor:  # pragma: no cover - interface
        raise NotImplementedError

    def decode_many(self, embedding, k: int = 1) -> torch.Tensor:
        emb = np.asarray(embedding, dtype=np.float32).reshape(1, -1)
        return self.decode(np.repeat(emb, check_positive_int(k, "k"), axis=0))

    def select_class(self, class_index: int | None) -> Decoder:
        """Hook: the widget announces the class it decodes for (None: no class). Default: ignored."""
        return self

    def _check(self, embeddings) -> np.ndarray:
        emb = check_array(embeddings, "embeddings", ndim=(1, 2), dtype="float")
        emb = emb.reshape(1, -1) if emb.ndim == 1 else emb
        if self.embed_dim is not None and emb.shape[1] != self.embed_dim:
            raise ValueError(f"embeddings: expected {self.embed_dim} columns (the decoder's space), got {emb.shape[1]}")
        return emb


class RetrievalDecoder(Decoder):
    """Nearest cached images to each embedding, by cosine similarity.

    Parameters
    ----------
    embeddings : ndarray (N, D)
        Raw embeddings of the cached images (e.g. from the embedding cache).
    images : array (N, H, W, 3) uint8, tensor (N, 3, H, W), or callable ``indices -> images``
        The images, or a loader; only the retrieved ones are converted.
    candidates : ndarray (N,) bool, optional
        Restrict retrieval to these rows (e.g. one class); can be changed later with :meth:`restrict`.
    labels : ndarray (N,) int, optional
        Class of each cached image; then :meth:`select_class` (called by the widget) restricts retrieval
        to the selected class, so the slider shows images of the class moving along its direction.
    """

    def __init__(self, embeddings, images: Any, candidates=None, labels=None):
        emb = check_array(embeddings, "embeddings", ndim=2, dtype="float", min_len=1)
        self._bank = normalized_rows(emb)  # float32, in blocks: one copy of the rows, not three
        self.embed_dim = emb.shape[1]
        if not callable(images) and len(images) != len(emb):
            raise ValueError(f"images: expected {len(emb)} images (one per embedding), got {len(images)}")
        self._images = images
        self._labels = None
        if labels is not None:
            from failwidgets._validation import check_labels, check_same_length

            self._labels = check_labels(labels, "labels")
            check_same_length(embeddings=emb, labels=self._labels)
        self.restrict(candidates)

    def select_class(self, class_index: int | None) -> RetrievalDecoder:
        """With ``labels``: search only the images of class ``class_index`` (None or a class without cached
        images: all). Without ``labels``: nothing changes."""
        if self._labels is not None:
            if getattr(self, "_class_rows", None) is None:  # once: rows of every class (no N-row scan per call)
                order = np.argsort(self._labels, kind="stable")
                cuts = np.flatnonzero(np.diff(self._labels[order])) + 1
                self._class_rows = {int(self._labels[g[0]]): g for g in np.split(order, cuts) if len(g)}
            rows = None if class_index is None else self._class_rows.get(int(class_index))
            self._rows = rows  # ascending, as restrict(labels == class_index); None: all rows
        return self

    def restrict(self, candidates=None) -> RetrievalDecoder:
        """Search only the rows where ``candidates`` (bool (N,)) is True; None searches all."""
        if candidates is None:
            self._rows = None
        else:
            mask = check_array(candidates, "candidates", shape=(len(self._bank),), dtype="bool")
            if not mask.any():
                raise ValueError("candidates: expected at least one True row")
            self._rows = np.flatnonzero(mask)
        return self

    def nearest(self, embeddings, k: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """Indices (M, k) into the cache (hardest match first) and cosine similarities (M, k)."""
        q = self._check(embeddings)
        k = check_positive_int(k, "k")
        q = l2_normalize(q).astype(np.float32)
        bank = self._bank if self._rows is None else self._bank[self._rows]
        k = min(k, len(bank))
        sims = q @ bank.T  # (M, N')
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(sims, top, 1), axis=1)
        top = np.take_along_axis(top, order, 1)
        idx = top if self._rows is None else self._rows[top]
        return idx, np.take_along_axis(sims, top, 1)

    def images_at(self, indices) -> torch.Tensor:
        from failwidgets.compute import as_image_tensor

        indices = np.asarray(indices, dtype=np.int64).ravel()
        imgs = self._images(indices) if callable(self._images) else self._images[indices]
        return as_image_tensor(imgs)

    def decode(self, embeddings) -> torch.Tensor:
        return self.images_at(self.nearest(embeddings, 1)[0][:, 0])

    def decode_many(self, embedding, k: int = 1) -> torch.Tensor:
        return self.images_at(self.nearest(np.asarray(embedding).reshape(1, -1), k)[0][0])


class GeneratorDecoder(Decoder):
    """Any torch module (or callable) mapping embeddings (M, D) to images (M, 3, H, W) in [0, 1].

    Parameters
    ----------
    generator : torch.nn.Module or callable
    embed_dim : int, optional
        Checked against the input width when given.
    normalize : bool
        L2-normalise embeddings first (the demo decoder was trained on unit vectors).
    batch_size : int
    device : str or torch.device, optional
        Chosen by ``failwidgets.compute.get_device``.
    jitter : float
        ``decode_many`` adds Gaussian noise of this standard deviation per coordinate to the embedding
        (before normalisation) so a deterministic generator shows ``k`` nearby images, not ``k`` copies.
    random_state : int
        Seed of that noise (the same embedding always decodes to the same images).
    """

    def __init__(
        self,
        generator: Callable,
        embed_dim: int | None = None,
        normalize: bool = True,
        batch_size: int = 64,
        device=None,
        interactive: bool = True,
        jitter: float = 0.0,
        random_state: int = 0,
    ):
        if not callable(generator):
            raise TypeError(f"generator: expected a torch module or callable, got {type(generator).__name__}")
        self.generator = generator
        self.embed_dim = embed_dim
        self.normalize = normalize
        self.batch_size = check_positive_int(batch_size, "batch_size")
        if device is not None:
            from failwidgets.compute import get_device

            get_device(device)  # an unavailable device fails here, not at the first decode
        self.device = device
        self.interactive = interactive
        if not float(jitter) >= 0:
            raise ValueError(f"jitter: expected a number >= 0, got {jitter!r}")
        self.jitter, self.random_state = float(jitter), random_state

    def decode_many(self, embedding, k: int = 1) -> torch.Tensor:
        emb = np.repeat(self._check(embedding), check_positive_int(k, "k"), axis=0).astype(np.float32)
        if self.jitter > 0 and k > 1:
            noise = np.random.default_rng(self.random_state).normal(size=emb.shape).astype(np.float32)
            noise[0] = 0.0  # the first image is the embedding itself
            emb = emb + self.jitter * noise
        return self.decode(emb)

    @torch.no_grad()
    def decode(self, embeddings) -> torch.Tensor:
        from failwidgets.compute import get_device

        emb = self._check(embeddings)
        if self.normalize:
            emb = l2_normalize(emb)
        device = get_device(self.device)
        if isinstance(self.generator, torch.nn.Module):
            self.generator.eval().to(device)
        out = []
        for start in range(0, len(emb), self.batch_size):
            x = torch.as_tensor(emb[start : start + self.batch_size], dtype=torch.float32, device=device)
            out.append(torch.as_tensor(self.generator(x)).float().cpu())
        imgs = torch.cat(out)
        if imgs.ndim != 4 or imgs.shape[1] != 3:
            raise ValueError(f"generator: expected outputs of shape (M, 3, H, W), got {tuple(imgs.shape)}")
        return imgs.clamp(0, 1)


class UnclipDecoder(Decoder):
    """A diffusion pipeline conditioned on CLIP image embeddings (unCLIP), e.g. ``diffusers``'
    ``StableUnCLIPImg2ImgPipeline``; see the module docstring for the set-up.

    Parameters
    ----------
    pipe : callable
        Called as ``pipe(prompt=[str] * M, image_embeds=tensor (M, D), num_inference_steps=int,
        noise_level=int, output_type="pt", generator=torch.Generator)``; its result's ``.images`` is a
        tensor (M, 3, H, W) in [0, 1] (diffusers' ``output_type="pt"``).
    embed_norm : float
        Scale applied to the unit-norm embeddings before they reach the pipeline.
    prompt : str
        Text conditioning shared by every image ("" = image embedding only).
    steps : int
        Denoising steps.
    noise_level : int
        unCLIP's noise added to the image embedding (0 = none, the pipeline's default).
    embed_dim : int, optional
        Checked against the embeddings' width when given.
    seed : int
        Seed of the pipeline's generator, so the same embedding always gives the same image.
    """

    interactive = False

    def __init__(
        self,
        pipe: Callable,
        embed_norm: float = 1.0,
        prompt: str = "",
        steps: int = 25,
        noise_level: int = 0,
        embed_dim: int | None = None,
        seed: int = 0,
    ):
        if not callable(pipe):
            raise TypeError(f"pipe: expected a diffusion pipeline (callable), got {type(pipe).__name__}")
        if not float(embed_norm) > 0:
            raise ValueError(f"embed_norm: expected a positive number, got {embed_norm!r}")
        self.pipe, self.embed_norm, self.prompt = pipe, float(embed_norm), str(prompt)
        self.steps = check_positive_int(steps, "steps")
        self.noise_level = check_positive_int(noise_level, "noise_level", minimum=0)
        self.embed_dim, self.seed = embed_dim, int(seed)

    @staticmethod
    def typical_norm(image_embeddings) -> float:
        """Median L2 norm of the pipeline encoder's own (unnormalised) image embeddings (N, D)."""
        emb = check_array(image_embeddings, "image_embeddings", ndim=2, dtype="float", min_len=1)
        return float(np.median(np.linalg.norm(emb, axis=1)))

    @torch.no_grad()
    def decode(self, embeddings) -> torch.Tensor:
        emb = l2_normalize(self._check(embeddings)) * self.embed_norm
        dtype, device = getattr(self.pipe, "dtype", torch.float32), getattr(self.pipe, "device", "cpu")
        out = self.pipe(
            prompt=[self.prompt] * len(emb),
            image_embeds=torch.as_tensor(emb, dtype=dtype, device=device),
            num_inference_steps=self.steps,
            noise_level=self.noise_level,
            output_type="pt",
            generator=torch.Generator(device=device).manual_seed(self.seed),
        )
        imgs = torch.as_tensor(out.images).float().cpu()
        if imgs.ndim != 4 or imgs.shape[1] != 3 or len(imgs) != len(emb):
            raise ValueError(f"pipe: expected .images of shape ({len(emb)}, 3, H, W), got {tuple(imgs.shape)}")
        return imgs.clamp(0, 1)
