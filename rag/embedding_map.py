"""A 2-D map of a collection's chunk vectors: similar passages sit close together, and a question lands among them.

PCA (numpy SVD) rather than UMAP: no new dependency, deterministic, and a new point (the question) projects with
the same two axes. The projection is cached per collection and store generation, so it is computed once per change
of the index, not once per question.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from rag.store import ChromaStore

MAX_POINTS = 4000
TEXT_CHARS = 300


@dataclass(slots=True)
class MapPoint:
    """One chunk on the map; `text` is its opening (for a hover label)."""

    id: str
    x: float
    y: float
    source: str
    document_id: str
    text: str
    page: int | None = None
    heading: str | None = None


@dataclass(slots=True)
class EmbeddingMap:
    """The projected chunks, the question's position (if one was given) and the ids to highlight.

    `explained` is the share of the vectors' variance each axis keeps: a low total means the map flattens a lot.
    `total` is the collection's chunk count; when above `len(points)` the map shows a sample.
    """

    points: list[MapPoint]
    explained: tuple[float, float] = (0.0, 0.0)
    question: str | None = None
    query: tuple[float, float] | None = None
    highlight: list[str] = field(default_factory=list)
    total: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "points": [
                {"id": p.id, "x": p.x, "y": p.y, "source": p.source, "document_id": p.document_id, "text": p.text}
                for p in self.points
            ],
            "explained": list(self.explained),
            "question": self.question,
            "query": list(self.query) if self.query else None,
            "highlight": list(self.highlight),
            "total": self.total,
        }


@dataclass(slots=True)
class _Projection:
    points: list[MapPoint]
    mean: np.ndarray
    axes: np.ndarray  # 2 × dim
    explained: tuple[float, float]
    total: int

    def place(self, vector: np.ndarray) -> tuple[float, float]:
        x, y = (np.asarray(vector, dtype=np.float64) - self.mean) @ self.axes.T
        return float(x), float(y)


_cache: dict[tuple[str, ...], _Projection] = {}
_lock = threading.Lock()


def pca_2d(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[float, float]]:
    """(coordinates n×2, mean, axes 2×dim, explained variance ratios) of the rows of `vectors`.

    Axis signs are fixed (largest loading positive) so the same data always draws the same way.
    """
    data = np.asarray(vectors, dtype=np.float64)
    mean = data.mean(axis=0)
    centred = data - mean
    if len(data) < 2:
        return np.zeros((len(data), 2)), mean, np.zeros((2, data.shape[1])), (0.0, 0.0)
    # The eigenvectors of the dim × dim covariance: far cheaper than an SVD of the n × dim data when n ≫ dim.
    values, vectors = np.linalg.eigh(centred.T @ centred)
    order = np.argsort(values)[::-1]
    values, vectors = np.clip(values[order], 0, None), vectors[:, order]
    axes = np.zeros((2, data.shape[1]))
    axes[: min(2, vectors.shape[1])] = vectors[:, :2].T
    for i in range(2):
        if axes[i, np.argmax(np.abs(axes[i]))] < 0:
            axes[i] = -axes[i]
    total = values.sum()
    share = values / total if total > 0 else np.zeros_like(values)
    explained = (float(share[0]), float(share[1]) if len(share) > 1 else 0.0)
    return centred @ axes.T, mean, axes, explained


def _project(store: ChromaStore, key: tuple[str, ...], max_points: int) -> _Projection:
    with _lock:
        if key in _cache:
            return _cache[key]
    total = store.count()
    step = max(1, -(-total // max_points))  # an even sample keeps every document's share, and memory bounded
    rows = [r for i, r in enumerate(store.iter_chunks(embeddings=True)) if i % step == 0]
    if not rows:
        proj = _Projection([], np.zeros(0), np.zeros((2, 0)), (0.0, 0.0), 0)
    else:
        coords, mean, axes, explained = pca_2d(np.array([r["embedding"] for r in rows]))
        points = []
        for r, (x, y) in zip(rows, coords, strict=True):
            meta = r["metadata"] or {}
            page = meta.get("page")
            points.append(
                MapPoint(
                    r["id"],
                    float(x),
                    float(y),
                    str(meta.get("source", "")),
                    str(meta.get("document_id", "")),
                    " ".join(str(r["text"]).split())[:TEXT_CHARS],
                    int(page) if page is not None else None,
                    str(meta["heading"]) if meta.get("heading") else None,
                )
            )
        proj = _Projection(points, mean, axes, explained, total)
    with _lock:
        for old in [k for k in _cache if k[:-1] == key[:-1]]:  # older generations of this collection
            del _cache[old]
        _cache[key] = proj
    return proj


def build_map(
    store: ChromaStore,
    cache_key: tuple[str, ...],
    query_vector: np.ndarray | None = None,
    question: str | None = None,
    highlight: Sequence[str] = (),
    max_points: int = MAX_POINTS,
) -> EmbeddingMap:
    """The map of `store`; `cache_key` must change whenever the collection does (it ends with the generation)."""
    proj = _project(store, cache_key, max_points)
    query = proj.place(query_vector) if query_vector is not None and proj.points else None
    known = {p.id for p in proj.points}
    return EmbeddingMap(
        list(proj.points), proj.explained, question, query, [h for h in highlight if h in known], proj.total
    )
