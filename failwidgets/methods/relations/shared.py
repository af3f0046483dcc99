"""One annotation file shared by several writers (widgets in one kernel, several kernels, several users).

:class:`AnnotationFile` remembers the version of the file it last read or wrote. Each
:meth:`AnnotationFile.write` takes a lock (``<file>.lock``, through ``filelock``) for the
read-compare-write, and when the file was changed by another writer since, it either merges (default:
the other writer's labels are kept and this writer's own changes since its last read are applied on top,
a three-way merge) or refuses with :class:`AnnotationConflictError` naming the other writer. Nothing is
overwritten silently: every merge is reported in the returned :class:`WriteReport` with the other
writer's name and the pairs both changed. Files are written atomically (:func:`failwidgets.files.atomic_write`).
"""

from __future__ import annotations

import dataclasses
import getpass
import hashlib
import json
import os
import socket
import time
import uuid
from pathlib import Path
from typing import Sequence

from failwidgets._io import atomic_write
from failwidgets._validation import check_choice
from failwidgets.methods.relations.graph import DEFAULT_LEVELS, RelationGraph

__all__ = ["AnnotationFile", "AnnotationConflictError", "WriteReport", "writer_name"]


class AnnotationConflictError(RuntimeError):
    """Another writer changed the annotation file since this writer read it (``on_conflict="refuse"``)."""


@dataclasses.dataclass(frozen=True)
class WriteReport:
    """What :meth:`AnnotationFile.write` did.

    Attributes
    ----------
    graph : RelationGraph, what the file now holds (this writer's graph, or the merge).
    merged : bool, whether another writer's changes were merged in.
    other_writer : str or None, who wrote the file since this writer last read or wrote it.
    added : int, labels taken from the other writer.
    conflicts : tuple of (a, b, theirs, ours), pairs both changed differently (this writer's level kept).
    """

    graph: RelationGraph
    merged: bool = False
    other_writer: str | None = None
    added: int = 0
    conflicts: tuple = ()


def writer_name(label: str | None = None) -> str:
    """``user@host pid N`` (plus ``label``): who writes, as recorded in the file and named in messages."""
    try:
        user = getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name in some containers
        user = "unknown"
    base = f"{user}@{socket.gethostname()} pid {os.getpid()}"
    return f"{base} ({label})" if label else base


class AnnotationFile:
    """An annotation file that several writers may update.

    Parameters
    ----------
    path : str or Path, the JSON annotation file.
    attribute_names : sequence of str, the model's attribute names.
    levels : sequence of str, the relation levels.
    writer : str, optional, this writer's name (default :func:`writer_name` with a random tag).
    on_conflict : ``"merge"`` (default) or ``"refuse"``, what :meth:`write` does when another writer
        changed the file since this one last read or wrote it.
    lock_timeout : float, seconds to wait for another writer's lock.
    """

    def __init__(
        self,
        path,
        attribute_names: Sequence[str],
        levels: Sequence[str] = DEFAULT_LEVELS,
        *,
        writer: str | None = None,
        on_conflict: str = "merge",
        lock_timeout: float = 10.0,
    ):
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"path: expected a file path (str or os.PathLike), got {type(path).__name__}")
        self.path = Path(path).expanduser()
        self.attribute_names = list(attribute_names)
        self.levels = list(levels)
        self.writer = writer or writer_name(uuid.uuid4().hex[:6])
        self.on_conflict = check_choice(on_conflict, "on_conflict", ["merge", "refuse"])
        self.lock_timeout = float(lock_timeout)
        self._version: str | None = None  # sha256 of the bytes last read or written; None: never
        self._base: RelationGraph | None = None

    def __repr__(self) -> str:
        return f"AnnotationFile({str(self.path)!r}, writer={self.writer!r})"

    # -- internals ----------------------------------------------------------------------------------
    def _lock(self):
        import filelock

        lock_path = self.path.with_name(self.path.name + ".lock")
        return filelock.FileLock(str(lock_path), timeout=self.lock_timeout)

    def _read_raw(self) -> tuple[bytes | None, str | None]:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None, None
        return raw, hashlib.sha256(raw).hexdigest()

    def _parse(self, raw: bytes) -> tuple[RelationGraph, str | None]:
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            raise ValueError(f"path: {self.path} is not a valid JSON annotation file ({exc})") from exc
        graph = RelationGraph.from_dict(data, attribute_names=self.attribute_names, levels=self.levels)
        who = data.get("writer") if isinstance(data, dict) else None
        return graph, who if isinstance(who, str) else None

    # -- public -------------------------------------------------------------------------------------
    def read(self) -> RelationGraph | None:
        """The graph in the file (None when there is no file); remembered as this writer's base."""
        raw, version = self._read_raw()
        if raw is None:
            self._version, self._base = None, None
            return None
        graph, _ = self._parse(raw)
        self._version, self._base = version, graph.copy()
        return graph

    def write(self, graph: RelationGraph) -> WriteReport:
        """Write ``graph``, merging (or refusing) if another writer changed the file since the last read.

        Returns
        -------
        WriteReport; ``report.graph`` is what the file holds now (use it as the new in-memory graph).

        Raises
        ------
        AnnotationConflictError
            ``on_conflict="refuse"`` and the file was changed by another writer; names that writer.
        TimeoutError
            Another writer held the lock longer than ``lock_timeout``.
        """
        if not isinstance(graph, RelationGraph):
            raise TypeError(f"graph: expected a RelationGraph, got {type(graph).__name__}")
        try:
            lock = self._lock()
            with lock:
                return self._write_locked(graph)
        except TimeoutError as exc:
            raise TimeoutError(
                f"path: another writer has held {self.path}.lock for more than "
                f"{self.lock_timeout:g} s; expected it to finish (remove the lock file if "
                "that writer died)"
            ) from exc

    def _write_locked(self, graph: RelationGraph) -> WriteReport:
        raw, version = self._read_raw()
        report = WriteReport(graph=graph.copy())
        if raw is not None and version != self._version:
            theirs, who = self._parse(raw)
            who = who or "another writer"
            if self._base is None or theirs != self._base:
                if self.on_conflict == "refuse":
                    raise AnnotationConflictError(
                        f"path: {self.path} was changed by {who} since this writer ({self.writer}) read it; "
                        "expected no other writer (load the file again, or use on_conflict='merge')"
                    )
                report = _three_way(self._base, graph, theirs, who)
        data = report.graph.to_dict()
        data["writer"] = self.writer
        data["written"] = time.time()
        text = json.dumps(data, indent=1)
        atomic_write(self.path, text)
        self._version = hashlib.sha256(text.encode("utf-8")).hexdigest()
        self._base = report.graph.copy()
        return report


def _three_way(base: RelationGraph | None, ours: RelationGraph, theirs: RelationGraph, who: str) -> WriteReport:
    """``theirs`` with our changes since ``base`` applied; pairs both changed differently keep ours."""
    base_labels = {} if base is None else dict(base._labels)
    our_labels, their_labels = dict(ours._labels), dict(theirs._labels)
    merged = theirs.copy()
    merged.annotator = ours.annotator
    conflicts = []
    for pair in set(base_labels) | set(our_labels):
        mine, old = our_labels.get(pair), base_labels.get(pair)
        if mine == old:
            continue  # we did not change this pair: theirs stands
        other = their_labels.get(pair)
        if other != old and other != mine:
            name = lambda lv: None if lv is None else ours.levels[lv]  # noqa: E731
            conflicts.append((ours.attribute_names[pair[0]], ours.attribute_names[pair[1]], name(other), name(mine)))
        if mine is None:
            merged._labels.pop(pair, None)
        else:
            merged._labels[pair] = mine
    added = sum(1 for p, lv in their_labels.items() if our_labels.get(p) != lv and merged._labels.get(p) == lv)
    return WriteReport(graph=merged, merged=True, other_writer=who, added=added, conflicts=tuple(sorted(conflicts)))
