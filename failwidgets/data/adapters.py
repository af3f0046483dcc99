"""Concrete image sources: arrays and tensors, files, folders, torch / Hugging Face datasets, tar shards,
the procedural world's splits, and a lazily generated source.

Every class here is an :class:`~failwidgets.data.base.ImageSource`; build them with
:func:`failwidgets.data.as_source`, which picks the right one.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import tarfile
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from failwidgets._validation import check_labels, check_positive_int
from failwidgets.data.base import (
    ImageSource,
    SourceReadError,
    _sample_indices,
    to_uint8_hwc,
)

__all__ = [
    "IMAGE_SUFFIXES",
    "ArraySource",
    "FileSource",
    "FolderDatasetSource",
    "GeneratedSource",
    "HFDatasetSource",
    "TarShardSource",
    "TorchDatasetSource",
    "WorldSplitSource",
]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff", ".ppm")
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def _labels(labels: Any, n: int) -> np.ndarray | None:
    if labels is None:
        return None
    return check_labels(labels, "labels", length=n).astype(np.int64)


def _decode(data: bytes | str | os.PathLike, index: int, item: str) -> np.ndarray:
    """Decode an image file (path or bytes) with PIL -> uint8 (H, W, 3); errors name index and item."""
    from PIL import Image as PILImage

    try:
        with PILImage.open(io.BytesIO(data) if isinstance(data, bytes) else data) as im:
            return np.array(im.convert("RGB"))
    except FileNotFoundError as exc:
        raise SourceReadError(index, item, "no such file") from exc
    except (OSError, ValueError, SyntaxError, PILImage.DecompressionBombError) as exc:
        raise SourceReadError(index, item, f"{type(exc).__name__}: {exc}") from exc


def _stat_identity(paths: Sequence[str]) -> str:
    """sha256 over (path, size, mtime_ns) of every file; a missing file hashes as missing."""
    h = hashlib.sha256()
    for p in paths:
        try:
            st = os.stat(p)
            h.update(f"{p}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        except OSError:
            h.update(f"{p}\0missing\n".encode())
    return h.hexdigest()


# ----------------------------------------------------------------------------------------------------
class ArraySource(ImageSource):
    """Images already in an array: uint8 ndarray / memmap (N, H, W, 3) or (N, 3, H, W), or a float
    tensor / array (N, 3, H, W) in [0, 1].

    Only the requested rows are read, so a ``np.memmap`` / ``np.load(..., mmap_mode="r")`` of a large
    file stays on disk. Identity: a memmap's file path, offset, shape, size and modification time;
    an in-memory array's content hash (it is in memory already, so hashing it is cheap).
    """

    def __init__(self, array: Any, *, labels=None, **kw):
        super().__init__(**kw)
        if isinstance(array, torch.Tensor):
            array = array.detach().cpu()
        elif not isinstance(array, np.ndarray):
            raise TypeError(f"images: expected an ndarray or tensor, got {type(array).__name__}")
        if array.ndim == 3:
            array = array[None]
        if array.ndim != 4:
            raise ValueError(f"images: expected shape (N, H, W, 3) or (N, 3, H, W), got {tuple(array.shape)}")
        last, first = array.shape[-1] in (1, 3), array.shape[1] in (1, 3)
        # both plausible (e.g. (N, 3, 5, 3)): uint8 follows (N, H, W, 3), floats (N, 3, H, W)
        self._channels_last = last and (not first or _dtype_kind(array) == "u")
        if not (last or first):
            raise ValueError(f"images: expected 1 or 3 colour channels, got shape {tuple(array.shape)}")
        kind = _dtype_kind(array)
        if kind not in ("u", "f"):
            raise TypeError(f"images: expected uint8 or float pixels, got dtype {array.dtype}")
        self._float = kind == "f"
        self.array = array
        self.labels = _labels(labels, len(array))

    def __len__(self) -> int:
        return int(self.array.shape[0])

    def _row(self, i: int):
        row = self.array[self._check_index(i)]
        if isinstance(row, torch.Tensor):
            row = row.numpy()
        return np.asarray(row)

    def image(self, i: int) -> np.ndarray:
        row = self._row(i)
        if not self._channels_last:
            row = np.moveaxis(row, 0, -1)
        return to_uint8_hwc(row, f"images[{int(i)}]")

    def tensor(self, i: int) -> torch.Tensor:
        row = self._row(i)
        t = torch.from_numpy(np.array(row))  # copy: the array may be read-only or a memmap
        if self._channels_last:
            t = t.permute(2, 0, 1)
        t = t.float() if self._float else t.float().div_(255.0)
        if self._float and t.numel() and (not torch.isfinite(t).all() or t.min() < -1e-3 or t.max() > 1 + 1e-3):
            raise SourceReadError(i, f"row {int(i)}", "float pixels must be finite and in [0, 1]")
        return t.expand(3, -1, -1).contiguous() if t.shape[0] == 1 else t.contiguous()

    def describe(self, i: int) -> str:
        return f"row {int(i)}"

    def _identity(self) -> dict:
        a = self.array
        if isinstance(a, np.memmap) and getattr(a, "filename", None):
            st = os.stat(a.filename)
            return {
                "kind": "memmap",
                "file": str(a.filename),
                "offset": int(a.offset),
                "shape": list(a.shape),
                "dtype": a.dtype.str,
                "size": st.st_size,
                "mtime_ns": st.st_mtime_ns,
            }
        return {"kind": "array", "shape": list(a.shape), "contents": _array_hash(a)}


def _array_hash(a) -> str:
    """sha256 of dtype, shape and bytes of an array / tensor, read in chunks of rows."""
    h = hashlib.sha256(f"{a.dtype}|{tuple(a.shape)}".encode())
    itemsize = a.element_size() if isinstance(a, torch.Tensor) else a.itemsize
    row_bytes = max(1, int(np.prod(a.shape[1:])) * itemsize)
    step = max(1, (64 << 20) // row_bytes)
    for s in range(0, a.shape[0], step):
        chunk = a[s : s + step]
        chunk = chunk.contiguous().numpy() if isinstance(chunk, torch.Tensor) else np.ascontiguousarray(chunk)
        h.update(memoryview(chunk.reshape(-1).view(np.uint8)))
    return h.hexdigest()


def _dtype_kind(a) -> str:
    if isinstance(a, torch.Tensor):
        return "u" if a.dtype == torch.uint8 else "f" if a.is_floating_point() else "i"
    return a.dtype.kind


# ----------------------------------------------------------------------------------------------------
class FileSource(ImageSource):
    """Image files by path (JPEG, PNG, WebP and anything else PIL opens), decoded on demand.

    Identity: the paths with each file's size and modification time.
    """

    decodes = True

    def __init__(self, paths: Sequence[str | os.PathLike], *, labels=None, **kw):
        super().__init__(**kw)
        self.paths = [os.fspath(p) for p in paths]
        self.labels = _labels(labels, len(self.paths))

    def __len__(self) -> int:
        return len(self.paths)

    def image(self, i: int) -> np.ndarray:
        i = self._check_index(i)
        return _decode(self.paths[i], i, self.paths[i])

    def describe(self, i: int) -> str:
        return self.paths[int(i)]

    def _metadata(self):
        import pandas as pd

        return pd.DataFrame({"path": self.paths})

    def _identity(self) -> dict:
        return {"kind": "files", "n": len(self.paths), "stat": _stat_identity(self.paths)}


class FolderDatasetSource(FileSource):
    """A torchvision ``ImageFolder`` / ``DatasetFolder``: its ``samples`` list (path, class index) and its
    ``loader``; labels from ``targets``. The dataset's ``transform`` is not applied (resizing for the
    model happens in :func:`failwidgets.compute.embed`), so no image is decoded until it is needed.
    """

    def __init__(self, dataset: Any, *, labels=None, **kw):
        samples = list(dataset.samples)
        labels = [int(y) for _, y in samples] if labels is None else labels
        super().__init__([p for p, _ in samples], labels=labels, **kw)
        self.dataset = dataset
        self.root = os.fspath(getattr(dataset, "root", ""))
        self.class_names = list(getattr(dataset, "classes", []))
        self._loader = getattr(dataset, "loader", None)

    def image(self, i: int) -> np.ndarray:
        i = self._check_index(i)
        path = self.paths[i]
        if self._loader is None:
            return _decode(path, i, path)
        try:
            img = self._loader(path)
        except FileNotFoundError as exc:
            raise SourceReadError(i, path, "no such file") from exc
        except Exception as exc:
            raise SourceReadError(i, path, f"{type(exc).__name__}: {exc}") from exc
        try:
            return to_uint8_hwc(img, f"images[{i}]")
        except (TypeError, ValueError) as exc:
            raise SourceReadError(i, path, str(exc)) from exc

    def _metadata(self):
        import pandas as pd

        names = [self.class_names[y] if y < len(self.class_names) else str(y) for y in self.labels]
        return pd.DataFrame({"path": self.paths, "class_name": names})

    def _identity(self) -> dict:
        return {
            "kind": "folder",
            "root": self.root,
            "classes": self.class_names,
            "n": len(self.paths),
            "stat": _stat_identity(self.paths),
        }


# ----------------------------------------------------------------------------------------------------
class TorchDatasetSource(ImageSource):
    """Any map-style ``torch.utils.data.Dataset`` whose items are an image or a tuple/list/dict starting
    with one (PIL image, uint8 HWC array, float CHW tensor in [0, 1]).

    Labels: the dataset's ``targets`` / ``labels`` attribute when it has one (otherwise ``None``; give
    ``labels=``). Identity: the dataset's own ``fingerprint`` if it has one; otherwise its class,
    length and ``repr`` plus a hash of 16 evenly spread images. That sample cannot see a change to an
    image outside it: pass ``identity=`` (e.g. a version string) or ``hash_contents=True`` when that
    matters.
    """

    def __init__(self, dataset: Any, *, labels=None, image_key: str | None = None, **kw):
        super().__init__(**kw)
        self.dataset = dataset
        self.image_key = image_key
        n = len(dataset)
        if labels is None:
            for attr in ("targets", "labels"):
                got = getattr(dataset, attr, None)
                if got is not None and not callable(got):
                    try:
                        labels = np.asarray(got)
                        if labels.shape != (n,):
                            labels = None
                    except Exception:  # noqa: BLE001 - an attribute that is not label-like
                        labels = None
                    if labels is not None:
                        break
        self.labels = _labels(labels, n)

    def __len__(self) -> int:
        return len(self.dataset)

    def _item(self, i: int):
        i = self._check_index(i)
        try:
            item = self.dataset[i]
        except (IndexError, KeyError):
            raise
        except Exception as exc:
            raise SourceReadError(i, self.describe(i), f"{type(exc).__name__}: {exc}") from exc
        if isinstance(item, dict):
            key = self.image_key or next((k for k in ("image", "img", "pixel_values", "jpg", "png") if k in item), None)
            if key is None:
                raise TypeError(f"dataset[{i}]: a dict item needs image_key=; keys are {list(item)[:10]}")
            return i, item[key]
        if isinstance(item, (tuple, list)):
            if not item:
                raise TypeError(
                    f"dataset[{i}]: expected an image or a tuple starting with one, got an empty {type(item).__name__}"
                )
            return i, item[0]
        return i, item

    def image(self, i: int) -> np.ndarray:
        i, img = self._item(i)
        try:
            return to_uint8_hwc(img, f"dataset[{i}][0]")
        except (TypeError, ValueError) as exc:
            raise SourceReadError(i, self.describe(i), str(exc)) from exc

    def tensor(self, i: int) -> torch.Tensor:
        i, img = self._item(i)
        if isinstance(img, torch.Tensor) and img.is_floating_point() and img.ndim == 3 and img.shape[0] in (1, 3):
            t = img.detach().float().cpu()
            if t.numel() and (not torch.isfinite(t).all() or t.min() < -1e-3 or t.max() > 1 + 1e-3):
                raise SourceReadError(i, self.describe(i), "float pixels must be finite and in [0, 1]")
            return t.expand(3, -1, -1).contiguous()
        try:
            return torch.from_numpy(to_uint8_hwc(img, f"dataset[{i}][0]")).permute(2, 0, 1).float().div_(255.0)
        except (TypeError, ValueError) as exc:
            raise SourceReadError(i, self.describe(i), str(exc)) from exc

    def describe(self, i: int) -> str:
        return f"{type(self.dataset).__name__}[{int(i)}]"

    def _identity(self) -> dict:
        own = getattr(self.dataset, "fingerprint", None)
        own = own() if callable(own) else own
        if isinstance(own, str):
            return {"kind": "torch", "class": _qualname(self.dataset), "fingerprint": own}
        h = hashlib.sha256()
        for i in _sample_indices(len(self)):
            h.update(memoryview(self.image(i)).cast("B"))
        return {
            "kind": "torch",
            "class": _qualname(self.dataset),
            "n": len(self),
            "repr": _ADDRESS.sub("", repr(self.dataset))[:2000],
            "sample": h.hexdigest(),
        }


def _qualname(obj: Any) -> str:
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


# ----------------------------------------------------------------------------------------------------
class HFDatasetSource(ImageSource):
    """A Hugging Face ``datasets.Dataset`` with an image column.

    Parameters
    ----------
    image_column : the column of ``datasets.Image`` feature type (found automatically when there is one).
    label_column : a ``ClassLabel`` column (found automatically when there is one), or ``"label"``.

    Identity: the dataset's own fingerprint (``Dataset._fingerprint``, which ``datasets`` updates on
    every transform).
    """

    decodes = True

    def __init__(
        self, dataset: Any, *, image_column: str | None = None, label_column: str | None = None, labels=None, **kw
    ):
        super().__init__(**kw)
        import datasets

        feats = dataset.features
        if image_column is None:
            found = [k for k, f in feats.items() if isinstance(f, datasets.Image)]
            if not found:
                raise ValueError(f"image_column: the dataset has no datasets.Image column; columns are {list(feats)}")
            image_column = found[0]
        elif image_column not in feats:
            raise ValueError(f"image_column: no column {image_column!r}; columns are {list(feats)}")
        self.image_column = image_column
        if labels is None:
            if label_column is None:
                found = [k for k, f in feats.items() if isinstance(f, datasets.ClassLabel)]
                label_column = found[0] if found else ("label" if "label" in feats else None)
            elif label_column not in feats:
                raise ValueError(f"label_column: no column {label_column!r}; columns are {list(feats)}")
            if label_column is not None:
                labels = np.asarray(dataset[label_column])
        self.label_column = label_column
        f = feats.get(label_column) if label_column else None
        self.class_names = list(f.names) if isinstance(f, datasets.ClassLabel) else None
        self.dataset = dataset
        self.labels = _labels(labels, len(dataset))

    def __len__(self) -> int:
        return len(self.dataset)

    def image(self, i: int) -> np.ndarray:
        i = self._check_index(i)
        try:
            img = self.dataset[i][self.image_column]
            return to_uint8_hwc(img, f"images[{i}]")
        except Exception as exc:
            raise SourceReadError(i, self.describe(i), f"{type(exc).__name__}: {exc}") from exc

    def describe(self, i: int) -> str:
        return f"row {int(i)} of column {self.image_column!r}"

    def _metadata(self):
        cols = [c for c in self.dataset.column_names if c != self.image_column]
        return self.dataset.select_columns(cols).to_pandas() if cols else None

    def _identity(self) -> dict:
        return {
            "kind": "hf",
            "fingerprint": str(self.dataset._fingerprint),
            "column": self.image_column,
            "n": len(self),
        }


# ----------------------------------------------------------------------------------------------------
class TarShardSource(ImageSource):
    """WebDataset-style tar shards (samples = files sharing a basename: ``0001.jpg``, ``0001.cls``).

    The members of every shard are indexed once (headers only, no image is decoded), which gives
    random access by seeking to a member's data. Uncompressed ``.tar`` seeks directly; a compressed
    shard works but each seek re-reads from the start of the stream.

    Parameters
    ----------
    shards : paths of the tar files (a ``{000..009}`` brace pattern is expanded).
    image_key : member extension of the image (default: the first of jpg, jpeg, png, webp present).
    label_key : member extension of an integer label (default ``"cls"`` when present).
    """

    decodes = True

    def __init__(
        self,
        shards: Sequence[str | os.PathLike],
        *,
        image_key: str | None = None,
        label_key: str | None = "cls",
        labels=None,
        **kw,
    ):
        super().__init__(**kw)
        self.shards = [os.fspath(s) for s in shards]
        if not self.shards:
            raise ValueError("shards: expected at least one tar file")
        keys: dict[tuple[int, str], dict[str, tuple[int, int]]] = {}
        order: list[tuple[int, str]] = []
        for si, path in enumerate(self.shards):
            try:
                with tarfile.open(path, "r:*") as tf:
                    for m in tf:
                        if not m.isfile():
                            continue
                        base, _, ext = os.path.basename(m.name).partition(".")
                        k = (si, os.path.join(os.path.dirname(m.name), base))
                        if k not in keys:
                            keys[k] = {}
                            order.append(k)
                        keys[k][ext.lower()] = (m.offset_data, m.size)
            except (OSError, tarfile.TarError) as exc:
                raise ValueError(f"shards: cannot read {path}: {type(exc).__name__}: {exc}") from exc
        if image_key is None:
            present = {e for d in keys.values() for e in d}
            image_key = next((e for e in ("jpg", "jpeg", "png", "webp") if e in present), None)
            if image_key is None:
                raise ValueError(
                    f"image_key: no jpg/jpeg/png/webp members in the shards; extensions are {sorted(present)[:10]}"
                )
        self.image_key = image_key
        self._samples = [k for k in order if image_key in keys[k]]
        self._members = keys
        self._local = threading.local()
        if (
            labels is None
            and label_key is not None
            and all(label_key in keys[k] for k in self._samples)
            and self._samples
        ):
            labels = [int(self._read(k, label_key).decode().strip()) for k in self._samples]
        self.labels = _labels(labels, len(self._samples))

    def __getstate__(self):  # open files do not cross process boundaries
        state = super().__getstate__()
        state.pop("_local", None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._local = threading.local()

    def _file(self, si: int):
        files = getattr(self._local, "files", None)
        if files is None or getattr(self._local, "pid", None) != os.getpid():
            files = self._local.files = {}
            self._local.pid = os.getpid()
        if si not in files:
            path = self.shards[si]
            files[si] = open(path, "rb") if tarfile.is_tarfile(path) and _uncompressed(path) else None
        return files[si]

    def _read(self, key: tuple[int, str], ext: str) -> bytes:
        offset, size = self._members[key][ext]
        f = self._file(key[0])
        if f is None:  # compressed: let tarfile find it
            with tarfile.open(self.shards[key[0]], "r:*") as tf:
                name = next(m for m in tf if m.isfile() and m.offset_data == offset)
                return tf.extractfile(name).read()
        f.seek(offset)
        return f.read(size)

    def __len__(self) -> int:
        return len(self._samples)

    def image(self, i: int) -> np.ndarray:
        i = self._check_index(i)
        key = self._samples[i]
        try:
            data = self._read(key, self.image_key)
        except OSError as exc:
            raise SourceReadError(i, self.describe(i), f"{type(exc).__name__}: {exc}") from exc
        return _decode(data, i, self.describe(i))

    def describe(self, i: int) -> str:
        si, base = self._samples[int(i)]
        return f"{self.shards[si]}:{base}.{self.image_key}"

    def _metadata(self):
        import pandas as pd

        return pd.DataFrame({"shard": [self.shards[s] for s, _ in self._samples], "key": [b for _, b in self._samples]})

    def _identity(self) -> dict:
        return {"kind": "tar", "n": len(self), "image_key": self.image_key, "stat": _stat_identity(self.shards)}


def _uncompressed(path: str) -> bool:
    with open(path, "rb") as f:
        head = f.read(6)
    return not (head.startswith(b"\x1f\x8b") or head.startswith(b"BZh") or head.startswith(b"\xfd7zXZ"))


# ----------------------------------------------------------------------------------------------------
class WorldSplitSource(ArraySource):
    """A split of the procedural world (``world["val"]``): its images, labels, and the factors and
    attributes as metadata columns. Identity: a hash of the split's images (in memory already)."""

    def __init__(self, split: Any, **kw):
        super().__init__(split.images, labels=split.labels, **kw)
        self.split = split
        self.class_names = list(getattr(split, "class_names", []))

    def _metadata(self):
        import pandas as pd

        cols: dict[str, Any] = {}
        names = getattr(self.split, "factor_value_names", None)
        for factor in self.split.factors:
            cols[factor] = names(factor) if names is not None else self.split.factors[factor]
        for j, a in enumerate(getattr(self.split, "attribute_names", [])):
            cols[f"attr:{a}"] = np.asarray(self.split.attributes[:, j])
        return pd.DataFrame(cols)

    def _identity(self) -> dict:
        ident = super()._identity()
        ident["kind"] = "world_split"
        ident["split"] = str(getattr(self.split, "name", ""))
        return ident


# ----------------------------------------------------------------------------------------------------
class GeneratedSource(ImageSource):
    """Images made on demand by ``fn(i) -> uint8 (H, W, 3)`` (procedural data, benchmarks, tests).

    Parameters
    ----------
    n : number of images.
    fn : callable int -> image; must be deterministic (the same ``i`` gives the same image) and
        picklable when DataLoader workers are used.
    identity : required: the source cannot be fingerprinted without calling ``fn`` on every index.
    """

    def __init__(self, n: int, fn: Callable[[int], Any], *, identity: str | dict, labels=None, **kw):
        super().__init__(identity=identity, **kw)
        self.n = check_positive_int(n, "n", minimum=0)
        if not callable(fn):
            raise TypeError(f"fn: expected a callable int -> image, got {type(fn).__name__}")
        self.fn = fn
        self.labels = _labels(labels, self.n)

    def __len__(self) -> int:
        return self.n

    def image(self, i: int) -> np.ndarray:
        i = self._check_index(i)
        return to_uint8_hwc(self.fn(i), f"images[{i}]")

    def _identity(self) -> dict:  # pragma: no cover - identity is always given
        raise AssertionError


def expand_braces(pattern: str) -> list[str]:
    """``"shard-{000..002}.tar"`` -> three names (``braceexpand`` when installed, else ranges only)."""
    try:
        from braceexpand import braceexpand

        return list(braceexpand(pattern))
    except ImportError:
        m = re.search(r"\{(\d+)\.\.(\d+)\}", pattern)
        if not m:
            return [pattern]
        a, b = m.group(1), m.group(2)
        width = len(a)
        return [pattern[: m.start()] + str(k).zfill(width) + pattern[m.end() :] for k in range(int(a), int(b) + 1)]


def folder_paths(root: str | os.PathLike) -> list[str]:
    """Image files directly inside ``root`` (sorted), for a folder without class sub-folders."""
    return sorted(str(p) for p in Path(root).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
