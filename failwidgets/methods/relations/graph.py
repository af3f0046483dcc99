"""Ground-truth relation graphs of Zhang et al. 2018 and their annotation files.

A :class:`RelationGraph` is a partial graph over attribute names whose edges carry one of L ordered
levels (default: the paper's five CelebA levels). Files are JSON with a schema version, saved
atomically (temporary file + ``os.replace``); loading validates attribute names against the model's,
rejects a pair labelled twice with different levels, and accepts partial graphs. Several annotators'
files merge by majority vote with the agreement reported per pair.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from failwidgets._io import atomic_write

__all__ = [
    "DEFAULT_LEVELS",
    "SCHEMA",
    "SCHEMA_VERSION",
    "RelationGraph",
    "merge_annotations",
    "RELATION_LEVELS",
]

DEFAULT_LEVELS = (
    "definitely negative",
    "probably negative",
    "not related",
    "probably positive",
    "definitely positive",
)
#: default level of each kind of true relation (e.g. ``failwidgets.world.attributes.attribute_relations()``)
RELATION_LEVELS = {
    "exclusive": "definitely negative",
    "negative": "probably negative",
    "independent": "not related",
    "positive": "probably positive",
    "implies": "definitely positive",
}
SCHEMA = "failwidgets.relation-annotations"
SCHEMA_VERSION = 1


class RelationGraph:
    """A partial, undirected graph of labelled attribute relations.

    Parameters
    ----------
    attribute_names : sequence of str
        The model's attribute names (n of them); pairs are stored in this order.
    levels : sequence of str
        Ordered relation levels, most negative first (default: the paper's five).
    annotator : str or None
        Who labelled the graph (kept in the file).
    """

    def __init__(self, attribute_names: Sequence[str], levels: Sequence[str] = DEFAULT_LEVELS, annotator=None):
        names = [str(a) for a in attribute_names]
        if len(names) < 2:
            raise ValueError(f"attribute_names: expected at least 2 names, got {names}")
        dup = [a for a, c in Counter(names).items() if c > 1]
        if dup:
            raise ValueError(f"attribute_names: expected unique names, got duplicates {dup}")
        levels = [str(lv) for lv in levels]
        if len(levels) < 2 or len(set(levels)) != len(levels):
            raise ValueError(f"levels: expected at least 2 distinct level names, got {levels}")
        self.attribute_names = names
        self.levels = levels
        self.annotator = annotator
        self._index = {a: i for i, a in enumerate(names)}
        self._labels: dict[tuple[int, int], int] = {}

    # -- pairs -------------------------------------------------------------------------------
    def _pair(self, a, b) -> tuple[int, int]:
        ia, ib = self._attr_index(a, "a"), self._attr_index(b, "b")
        if ia == ib:
            raise ValueError(f"pair: expected two different attributes, got {self.attribute_names[ia]!r} twice")
        return (ia, ib) if ia < ib else (ib, ia)

    def _attr_index(self, a, name: str) -> int:
        if isinstance(a, (int, np.integer)) and not isinstance(a, (bool, np.bool_)):
            if not 0 <= a < len(self.attribute_names):
                raise ValueError(f"{name}: expected an attribute index in [0, {len(self.attribute_names)}), got {a}")
            return int(a)
        if not isinstance(a, str) or a not in self._index:
            raise ValueError(f"{name}: unknown attribute {a!r}; expected one of {self.attribute_names}")
        return self._index[a]

    def _level_index(self, level) -> int:
        if isinstance(level, (int, np.integer)) and not isinstance(level, (bool, np.bool_)):
            if not 0 <= level < len(self.levels):
                raise ValueError(f"level: expected an index in [0, {len(self.levels)}), got {level}")
            return int(level)
        if level not in self.levels:
            raise ValueError(f"level: unknown level {level!r}; expected one of {self.levels}")
        return self.levels.index(level)

    def set(self, a, b, level) -> None:
        """Label the pair (a, b) (names or indices) with ``level`` (name or index)."""
        self._labels[self._pair(a, b)] = self._level_index(level)

    def clear(self, a, b) -> None:
        """Remove the label of (a, b), if any."""
        self._labels.pop(self._pair(a, b), None)

    def get(self, a, b) -> str | None:
        """The level name of (a, b), or None when unlabelled."""
        idx = self._labels.get(self._pair(a, b))
        return None if idx is None else self.levels[idx]

    def edges(self) -> list[tuple[int, int, int]]:
        """Labelled pairs as (i, j, level index) with i < j, sorted."""
        return sorted((i, j, lv) for (i, j), lv in self._labels.items())

    def __len__(self) -> int:
        return len(self._labels)

    @property
    def n_pairs(self) -> int:
        """n (n - 1) / 2, the number of pairs that could be labelled."""
        n = len(self.attribute_names)
        return n * (n - 1) // 2

    def level_matrix(self):
        """int ndarray (n, n): level index of each labelled pair (symmetric), -1 elsewhere."""
        import numpy as np

        n = len(self.attribute_names)
        mat = np.full((n, n), -1, dtype=np.int64)
        for (i, j), lv in self._labels.items():
            mat[i, j] = mat[j, i] = lv
        return mat

    def copy(self) -> RelationGraph:
        out = RelationGraph(self.attribute_names, self.levels, self.annotator)
        out._labels = dict(self._labels)
        return out

    def __eq__(self, other) -> bool:
        return (
            isinstance(other, RelationGraph)
            and other.attribute_names == self.attribute_names
            and other.levels == self.levels
            and other._labels == self._labels
        )

    # -- serialisation -----------------------------------------------------------------------
    def to_dict(self) -> dict:
        """JSON-ready dict with the schema name and version."""
        return {
            "schema": SCHEMA,
            "schema_version": SCHEMA_VERSION,
            "annotator": self.annotator,
            "attributes": list(self.attribute_names),
            "levels": list(self.levels),
            "edges": [
                {"a": self.attribute_names[i], "b": self.attribute_names[j], "level": self.levels[lv]}
                for i, j, lv in self.edges()
            ],
        }

    @classmethod
    def from_dict(cls, data: Mapping, attribute_names: Sequence[str] | None = None, levels=None) -> RelationGraph:
        """Build a graph from :meth:`to_dict` output.

        Parameters
        ----------
        data : mapping
            Parsed annotation file.
        attribute_names : sequence of str, optional
            The model's attribute names; every name in the file must be one of them (a file may cover
            a subset: partial graphs are fine). Default: the names stored in the file.
        levels : sequence of str, optional
            Expected levels; the file's levels must match them. Default: the file's levels.
        """
        if not isinstance(data, Mapping):
            raise TypeError(f"data: expected a dict from an annotation file, got {type(data).__name__}")
        if data.get("schema") != SCHEMA:
            raise ValueError(f"data: expected schema {SCHEMA!r}, got {data.get('schema')!r}")
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            raise ValueError(f"data: expected schema_version {SCHEMA_VERSION}, got {version!r}")
        raw_levels = data.get("levels") or DEFAULT_LEVELS
        if not isinstance(raw_levels, (list, tuple)) or not all(isinstance(lv, str) for lv in raw_levels):
            raise ValueError(f"data['levels']: expected a list of level names (str), got {raw_levels!r}"[:300])
        file_levels = list(raw_levels)
        if levels is not None and list(levels) != file_levels:
            raise ValueError(f"levels: the file uses levels {file_levels}, expected {list(levels)}")
        raw_names = data.get("attributes") or []
        if not isinstance(raw_names, (list, tuple)) or not all(isinstance(a, str) for a in raw_names):
            raise ValueError(f"data['attributes']: expected a list of attribute names (str), got {raw_names!r}"[:300])
        file_names = list(raw_names)
        annotator = data.get("annotator")
        if annotator is not None and not isinstance(annotator, str):
            raise ValueError(f"data['annotator']: expected a str or null, got {type(annotator).__name__}")
        names = list(attribute_names) if attribute_names is not None else file_names
        edges = data.get("edges") or []
        if not isinstance(edges, list):
            raise ValueError(
                f"data['edges']: expected a list of {{'a', 'b', 'level'}} objects, got {type(edges).__name__}"
            )
        for k, e in enumerate(edges):
            if not isinstance(e, Mapping) or not {"a", "b", "level"} <= set(e):
                raise ValueError(
                    f"data['edges'][{k}]: expected an object with keys 'a', 'b' and 'level', got {e!r}"[:300]
                )
            if not isinstance(e["a"], str) or not isinstance(e["b"], str):
                raise ValueError(f"data['edges'][{k}]: expected attribute names (str) for 'a' and 'b', got {e!r}"[:300])
        mentioned = set(file_names) | {e.get("a") for e in edges} | {e.get("b") for e in edges}
        unknown = sorted(str(a) for a in mentioned - set(names))
        if unknown:
            raise ValueError(
                f"attribute names: the annotation file names {unknown}, which the model does not have; "
                f"expected names among {list(names)}"
            )
        graph = cls(names, file_levels, annotator)
        for e in edges:
            pair = graph._pair(e["a"], e["b"])
            lv = graph._level_index(e["level"])
            if pair in graph._labels and graph._labels[pair] != lv:
                raise ValueError(
                    f"edges: pair ({e['a']!r}, {e['b']!r}) is labelled twice with different levels "
                    f"({graph.levels[graph._labels[pair]]!r} and {e['level']!r}); expected one level per pair"
                )
            graph._labels[pair] = lv
        return graph

    @classmethod
    def from_relations(
        cls,
        attribute_names: Sequence[str],
        relations: Mapping,
        levels=DEFAULT_LEVELS,
        level_of: Mapping[str, str] | None = None,
        pairs=None,
        annotator="ground truth",
    ):
        """A graph from known true relations, e.g. the demo world's.

        Parameters
        ----------
        attribute_names : sequence of str
        relations : mapping (name_a, name_b) -> relation kind ("exclusive", "negative", "independent",
            "positive", "implies"; either order of the pair may be given)
        level_of : mapping kind -> level name (default :data:`RELATION_LEVELS`)
        pairs : iterable of (name_a, name_b), optional
            Label only these pairs (a partial graph); default every pair in ``relations``.
        """
        level_of = dict(RELATION_LEVELS if level_of is None else level_of)
        graph = cls(attribute_names, levels, annotator)
        wanted = None if pairs is None else {graph._pair(a, b) for a, b in pairs}
        for (a, b), kind in relations.items():
            if a not in graph._index or b not in graph._index:
                continue
            pair = graph._pair(a, b)
            if wanted is not None and pair not in wanted:
                continue
            if kind not in level_of:
                raise ValueError(
                    f"relations: unknown relation kind {kind!r} for ({a!r}, {b!r}); expected one of {sorted(level_of)}"
                )
            graph._labels[pair] = graph._level_index(level_of[kind])
        return graph

    def save(self, path) -> Path:
        """Write the graph as JSON atomically (temporary file in the same folder, then ``os.replace``)."""
        path = Path(path)
        atomic_write(path, json.dumps(self.to_dict(), indent=1))
        return path

    @classmethod
    def load(cls, path, attribute_names: Sequence[str] | None = None, levels=None) -> RelationGraph:
        """Read a graph written by :meth:`save` (see :meth:`from_dict` for the checks)."""
        with open(path, encoding="utf-8") as fh:
            try:
                data = json.load(fh)
            except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
                raise ValueError(
                    f"path: {path} is not a valid JSON annotation file ({type(exc).__name__}: {str(exc)[:200]})"
                ) from exc
        return cls.from_dict(data, attribute_names=attribute_names, levels=levels)


def merge_annotations(graphs: Iterable[RelationGraph]) -> tuple[RelationGraph, pd.DataFrame]:
    """Merge several annotators' graphs by majority vote per pair.

    Ties between levels are broken by the lower median of all votes' level indices (the levels are
    ordered). Graphs must share attribute names and levels.

    Returns
    -------
    merged : RelationGraph
    agreement : DataFrame, one row per pair labelled by anyone, columns ``a``, ``b``, ``level``
        (merged), ``n_votes``, ``agreement`` (share of votes equal to the merged level) and ``votes``
        (dict level -> count).
    """
    graphs = list(graphs)
    if not graphs:
        raise ValueError("graphs: expected at least one RelationGraph")
    first = graphs[0]
    for k, g in enumerate(graphs):
        if not isinstance(g, RelationGraph):
            raise TypeError(f"graphs[{k}]: expected a RelationGraph, got {type(g).__name__}")
        if g.attribute_names != first.attribute_names or g.levels != first.levels:
            raise ValueError(f"graphs[{k}]: expected the same attribute names and levels as graphs[0]")
    votes: dict[tuple[int, int], list[int]] = {}
    for g in graphs:
        for i, j, lv in g.edges():
            votes.setdefault((i, j), []).append(lv)
    merged = RelationGraph(first.attribute_names, first.levels, annotator="merged")
    rows = []
    for (i, j), vs in sorted(votes.items()):
        counts = Counter(vs)
        top = max(counts.values())
        tied = sorted(lv for lv, c in counts.items() if c == top)
        if len(tied) == 1:
            level = tied[0]
        else:
            ordered = sorted(vs)
            level = ordered[(len(ordered) - 1) // 2]
        merged._labels[(i, j)] = level
        rows.append(
            {
                "a": first.attribute_names[i],
                "b": first.attribute_names[j],
                "level": first.levels[level],
                "n_votes": len(vs),
                "agreement": counts[level] / len(vs),
                "votes": {first.levels[lv]: c for lv, c in sorted(counts.items())},
            }
        )
    table = pd.DataFrame(rows, columns=["a", "b", "level", "n_votes", "agreement", "votes"])
    return merged, table
