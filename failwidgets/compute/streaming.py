"""Streaming compute over image sources: batches through a ``torch.utils.data.DataLoader`` into a
resumable sharded store.

:func:`embed` is the one path from images to embeddings: a source of any size is decoded (and resized)
in DataLoader workers, copied to the device from pinned memory, encoded under ``autocast`` on GPU, and
its rows are written shard by shard into the embedding cache, so a killed job resumes from the last
finished shard and the (N, D) result is a memory map that is never held in RAM.

:func:`image_batches` gives the same batches to code that keeps its own loop (layer activations,
per-image gradients): for an in-memory tensor it slices, for a source it streams.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from failwidgets._validation import check_choice, check_positive_int
from failwidgets.compute.device import autocast, get_device
from failwidgets.data import ImageSource, SourceReadError, as_source, is_source

__all__ = ["SkippedImagesWarning", "default_num_workers", "embed", "image_batches"]


class SkippedImagesWarning(UserWarning):
    """Some images could not be read and were skipped (``on_error="skip"``); their rows are NaN."""


def default_num_workers(source: ImageSource) -> int:
    """DataLoader workers used when ``num_workers=None``: none for in-memory sources (nothing to
    decode), otherwise ``min(8, cpu_count - 1)``."""
    if not getattr(source, "decodes", False):
        return 0
    return max(0, min(8, (os.cpu_count() or 1) - 1))


def _size(image_size: Any) -> tuple[int, int] | None:
    if image_size is None:
        return None
    if isinstance(image_size, (int, np.integer)):
        return int(image_size), int(image_size)
    hw = tuple(int(s) for s in image_size)
    if len(hw) != 2 or min(hw) < 1:
        raise ValueError(f"image_size: expected an int or (height, width), got {image_size!r}")
    return hw


class _Rows(torch.utils.data.Dataset):
    """Index -> (index, float image (3, H, W) in [0, 1] resized to ``size``, or the read error)."""

    def __init__(self, source: ImageSource, size: tuple[int, int] | None):
        self.source, self.size = source, size

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, i: int):
        try:
            x = self.source.tensor(int(i))
        except SourceReadError as exc:
            return int(i), None, exc
        if self.size is not None and tuple(x.shape[-2:]) != self.size:
            # the op the encoders use (bicubic with antialias, clamped), per image: same numbers
            x = F.interpolate(x[None], size=self.size, mode="bicubic", align_corners=False, antialias=True)[0].clamp_(
                0, 1
            )
        return int(i), x, None


def _collate(items):
    idx = [i for i, _, _ in items]
    good = [(i, x) for i, x, e in items if x is not None]
    errors = [e for _, _, e in items if e is not None]
    if good:
        shapes = {tuple(x.shape) for _, x in good}
        if len(shapes) > 1:
            raise ValueError(
                f"images: a batch mixes image sizes {sorted(shapes)[:3]}; pass image_size=(H, W) "
                "so that every image is resized to one size"
            )
        x = torch.stack([x for _, x in good])
    else:
        x = None
    return idx, [i for i, _ in good], x, errors


def _loader(source: ImageSource, batches: Sequence[Sequence[int]], *, size, num_workers: int, pin: bool):
    return torch.utils.data.DataLoader(
        _Rows(source, size),
        batch_sampler=batches,
        num_workers=num_workers,
        collate_fn=_collate,
        pin_memory=pin,
        persistent_workers=False,
        prefetch_factor=2 if num_workers else None,
    )


def _model_device(obj: Any, device: Any) -> torch.device:
    if device is not None:
        return get_device(device)
    dev = getattr(obj, "device", None)
    if isinstance(dev, (str, torch.device)):
        return torch.device(dev)
    if isinstance(obj, torch.nn.Module):
        p = next(obj.parameters(), None)
        if p is not None:
            return p.device
    return get_device(None)


def image_batches(
    images: Any,
    batch_size: int = 64,
    *,
    device: str | torch.device | None = None,
    num_workers: int | None = None,
    image_size: int | tuple[int, int] | None = None,
    progress: bool = True,
    desc: str | None = None,
) -> Iterator[tuple[slice, torch.Tensor]]:
    """Yield ``(rows, x)``: ``rows`` a slice of the image indices, ``x`` float (B, 3, H, W) in [0, 1] on
    ``device`` (CPU when not given).

    An in-memory tensor / array is converted once and sliced (what the library did before sources);
    an :class:`~failwidgets.data.ImageSource` is streamed through a DataLoader (decoding in workers,
    pinned memory on CUDA). An image that cannot be read raises :class:`SourceReadError` naming it.
    """
    from failwidgets.compute.images import as_image_tensor, iter_batches

    dev = torch.device("cpu") if device is None else get_device(device)
    batch_size = check_positive_int(batch_size, "batch_size")
    if not is_source(images):
        x = as_image_tensor(images)
        for sl in iter_batches(len(x), batch_size, progress=progress, desc=desc):
            yield sl, x[sl].to(dev)
        return
    src = images
    n = len(src)
    workers = (
        default_num_workers(src) if num_workers is None else check_positive_int(num_workers, "num_workers", minimum=0)
    )
    batches = [list(range(s, min(s + batch_size, n))) for s in range(0, n, batch_size)]
    pin = dev.type == "cuda"
    with tqdm(
        total=n, desc=desc, unit="img", unit_scale=True, disable=not progress or len(batches) <= 1, leave=False
    ) as bar:
        for idx, _good, x, errors in _loader(src, batches, size=_size(image_size), num_workers=workers, pin=pin):
            if errors:
                raise errors[0]
            yield slice(idx[0], idx[-1] + 1), x.to(dev, non_blocking=pin)
            bar.update(len(idx))


def embed(
    source: Any,
    encoder: Any,
    *,
    cache: Any = None,
    batch_size: int | None = None,
    num_workers: int | None = None,
    image_size: int | tuple[int, int] | None = None,
    shard_size: int | None = None,
    on_error: str = "raise",
    device: str | torch.device | None = None,
    progress: bool = True,
    return_missing: bool = False,
    verify: bool = True,
    engine: str = "local",
    ray_address: str | None = None,
    ray_options: dict | None = None,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Image embeddings of every image of ``source``, streamed into a resumable store.

    Parameters
    ----------
    source : anything :func:`failwidgets.data.as_source` accepts (an array, a world split, an
        ImageFolder, file paths, a Hugging Face dataset, tar shards, ...).
    encoder : an ``Encoder`` (``identity()``, ``embed_dim``, ``encode_images``): ``OpenClipEncoder``,
        ``TorchvisionFeatureEncoder``, the demo's ``DemoVisionLanguageEncoder``, or your own.
    cache : ``EmbeddingCache`` (default: ``EmbeddingCache()``, the user cache directory), or ``False``
        to compute in memory without storing anything.
    batch_size : images per forward pass (default 64).
    num_workers : DataLoader worker processes that decode and resize (default: none for in-memory
        sources, else ``min(8, cpu_count - 1)``).
    image_size : (H, W) or int every image is resized to in the workers (default: the encoder's
        ``image_size`` when it has one; images of one size need none).
    shard_size : rows per shard of a new store (default 4096); a killed job loses at most the shard
        it was computing.
    on_error : ``"raise"``: an unreadable image raises :class:`~failwidgets.data.SourceReadError`
        naming its index and file. ``"skip"``: its row is NaN, it is reported
        (:class:`SkippedImagesWarning`) and marked in the ``missing`` mask.
    device : where the encoder runs (default: where it already is).
    return_missing : also return ``missing``.
    verify : check every shard's checksum before returning a stored result (reads the file once).
    engine : ``"local"`` (this process, a DataLoader) or ``"ray"``: the pending shards are computed by
        an actor pool on a Ray cluster (``pip install 'failwidgets[ray]'``) and written to the same
        store, whose root must then be a path every Ray worker can reach (see
        :mod:`failwidgets.compute.ray_engine`). The result is read the same way.
    ray_address : with ``engine="ray"``, the cluster to connect to when Ray is not initialised yet
        (``None``: the running instance or a new local one; ``"auto"``, ``"ray://host:10001"``).
    ray_options : with ``engine="ray"``, ``num_actors`` / ``num_gpus`` (per actor) / ``max_attempts``
        of :func:`failwidgets.compute.ray_engine.embed_shards` (defaults: one actor per GPU, or per CPU).

    Returns
    -------
    embeddings : ndarray (N, D) float32, a read-only memory map of the store (an in-memory array when
        ``cache=False``). Rows of unreadable images are NaN.
    missing : bool ndarray (N,), only with ``return_missing=True``.

    Notes
    -----
    The cache key combines ``encoder.identity()``, ``source.identity()`` and ``image_size``; a source
    whose files changed has a new identity and is recomputed.
    """
    from failwidgets.compute.cache import EmbeddingCache

    check_choice(on_error, "on_error", ["raise", "skip"])
    check_choice(engine, "engine", ["local", "ray"])
    if engine == "ray":
        from failwidgets.compute.ray_engine import require_ray

        require_ray()  # ImportError naming the extra before any work
    if engine == "ray" and cache is False:
        raise ValueError(
            "cache: engine='ray' writes its shards into a store; pass an EmbeddingCache "
            "(on a path every Ray worker can reach), not cache=False"
        )
    src = as_source(source)
    n = len(src)
    if n == 0:
        raise ValueError("source: expected at least one image")
    for attr in ("identity", "encode_images"):
        if not callable(getattr(encoder, attr, None)):
            raise TypeError(f"encoder: expected an Encoder with {attr}(), got {type(encoder).__name__}")
    batch_size = check_positive_int(64 if batch_size is None else batch_size, "batch_size")
    size = _size(image_size if image_size is not None else getattr(encoder, "image_size", None))
    dim = int(encoder.embed_dim)
    dev = _model_device(encoder, device)
    parts = {
        "what": "image_embeddings",
        "encoder": encoder.identity(),
        "data": src.identity(),
        "image_size": None if size is None else list(size),
    }

    if cache is False:
        out = np.full((n, dim), np.nan, np.float32)
        missing = np.zeros(n, bool)
        shard = max(batch_size, n)

        def write(k, rows, miss):
            out[k * shard : k * shard + len(rows)] = rows
            missing[list(miss)] = True

        _run(
            src,
            encoder,
            dev,
            [0],
            lambda k: (0, n),
            write,
            dim=dim,
            size=size,
            batch_size=batch_size,
            num_workers=num_workers,
            on_error=on_error,
            progress=progress,
            done_rows=0,
        )
        result = out
    else:
        cache = EmbeddingCache() if cache is None else cache
        store = cache.sharded(
            parts,
            n_rows=n,
            row_shape=(dim,),
            dtype="float32",
            shard_size=shard_size if shard_size is not None else max(4096, batch_size),
        )
        if verify:
            store.verify()
        pending = store.pending_shards()
        if pending and engine == "ray":
            from failwidgets.compute.ray_engine import embed_shards

            embed_shards(
                src,
                encoder,
                store,
                pending,
                size=size,
                batch_size=batch_size,
                num_workers=num_workers,
                on_error=on_error,
                device=device,
                progress=progress,
                ray_address=ray_address,
                **(ray_options or {}),
            )
        elif pending:
            done_rows = n - sum(store.shard_range(k)[1] - store.shard_range(k)[0] for k in pending)
            _run(
                src,
                encoder,
                dev,
                pending,
                store.shard_range,
                store.write_shard,
                dim=dim,
                size=size,
                batch_size=batch_size,
                num_workers=num_workers,
                on_error=on_error,
                progress=progress,
                done_rows=done_rows,
            )
        result = store.read(verify=False)
        missing = store.missing()
    if missing.any():
        where = np.flatnonzero(missing)
        if on_error == "raise":
            i = int(where[0])
            raise SourceReadError(
                i,
                src.describe(i),
                f"it was skipped when these embeddings were computed "
                f"({len(where)} images are missing); fix the file or pass on_error='skip'",
            )
        listed = ", ".join(f"{int(i)} ({src.describe(int(i))})" for i in where[:5])
        warnings.warn(
            f"embed: {len(where)} of {n} images could not be read and were skipped (NaN rows): "
            f"{listed}{' ...' if len(where) > 5 else ''}",
            SkippedImagesWarning,
            stacklevel=2,
        )
    return (result, missing) if return_missing else result


def _run(
    src: ImageSource,
    encoder: Any,
    dev: torch.device,
    shards: Sequence[int],
    shard_range: Callable[[int], tuple[int, int]],
    write: Callable[..., None],
    *,
    dim: int,
    size,
    batch_size: int,
    num_workers: int | None,
    on_error: str,
    progress: bool,
    done_rows: int,
) -> None:
    """Compute ``shards`` batch by batch (batches never cross a shard) and ``write(k, rows, missing)``
    each shard as soon as its last batch is encoded."""
    workers = (
        default_num_workers(src) if num_workers is None else check_positive_int(num_workers, "num_workers", minimum=0)
    )
    batches, owner = [], []
    for k in shards:
        start, stop = shard_range(k)
        for s in range(start, stop, batch_size):
            batches.append(list(range(s, min(s + batch_size, stop))))
            owner.append(k)
    pin = dev.type == "cuda"
    n = len(src)
    bar = tqdm(
        total=n, initial=done_rows, desc="embed", unit="img", unit_scale=True, disable=not progress, smoothing=0.05
    )
    buf = None
    current, miss, filled = None, [], 0
    try:
        for b, (idx, good, x, errors) in enumerate(_loader(src, batches, size=size, num_workers=workers, pin=pin)):
            k = owner[b]
            if k != current:
                start, stop = shard_range(k)
                buf = np.full((stop - start, dim), np.nan, np.float32)
                current, miss, filled = k, [], 0
            start = shard_range(k)[0]
            if errors:
                if on_error == "raise":
                    raise errors[0]
                miss += [e.index for e in errors]
            if x is not None:
                with torch.no_grad(), autocast(dev):
                    emb = encoder.encode_images(x.to(dev, non_blocking=pin), batch_size=len(good), progress=False)
                emb = np.asarray(emb.detach().float().cpu() if isinstance(emb, torch.Tensor) else emb, dtype=np.float32)
                if emb.shape != (len(good), dim):
                    raise ValueError(
                        f"encoder: expected embeddings of shape ({len(good)}, {dim}) (embed_dim), got {emb.shape}"
                    )
                buf[np.asarray(good) - start] = emb
            filled += len(idx)
            bar.update(len(idx))
            if filled == len(buf):
                write(k, buf, miss)
                current = None
    finally:
        bar.close()
