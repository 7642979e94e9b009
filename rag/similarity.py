"""The other uses of the stored embeddings: "more like this" for a document, and near-duplicate detection.

Both read the vectors already in the index (no re-embedding). A document's vector is the normalised mean of its
chunks' vectors; similarity is cosine, higher = more alike.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rag.errors import ConfigError

if TYPE_CHECKING:
    from rag.store import ChromaStore

_BLOCK = 1024  # rows per similarity block: bounds memory at _BLOCK × n floats


def resolve_document(store: ChromaStore, source: str) -> str:
    """The document id for a source as the user gives it: a document id, the source string, or a path."""
    sources = store.document_sources()
    if source in sources:
        return source
    candidates = {source}
    try:
        candidates.add(str(Path(source).expanduser().resolve()))
    except (OSError, RuntimeError):
        pass
    for document_id, src in sources.items():
        if src in candidates:
            return document_id
    raise ConfigError(f"{source!r} is not in the index: give a source shown by `rag search` or a document id.")


def _unit(v: np.ndarray) -> np.ndarray:
    return v / max(float(np.linalg.norm(v)), 1e-9)


def document_vector(store: ChromaStore, document_id: str) -> np.ndarray:
    vecs = store.vectors(sorted(store.ids_where({"document_id": document_id})))
    if not vecs:
        raise ConfigError(f"Document {document_id!r} has no chunks in the index; run `rag ingest` again.")
    return _unit(np.mean(np.stack(list(vecs.values())), axis=0))


def similar(store: ChromaStore, source: str, top_k: int = 5) -> list[dict[str, Any]]:
    """Documents most like `source`, best first: each document scored by its closest chunk to `source`'s vector."""
    document_id = resolve_document(store, source)
    vec = document_vector(store, document_id)
    own = len(store.ids_where({"document_id": document_id}))
    want = own + top_k * 8
    best: dict[str, dict[str, Any]] = {}
    for hit in store.query(vec, want):
        did = str(hit.metadata.get("document_id", ""))
        if did == document_id or did in best:
            continue
        best[did] = {
            "document_id": did,
            "source": hit.source,
            "title": hit.metadata.get("title") or "",
            "score": round(hit.score, 4),
            "chunk_id": hit.id,
        }
        if len(best) == top_k:
            break
    return list(best.values())


def _all_vectors(store: ChromaStore) -> tuple[list[dict[str, Any]], np.ndarray]:
    rows, vecs = [], []
    for row in store.iter_chunks(embeddings=True):
        rows.append({"id": row["id"], "metadata": row["metadata"] or {}})
        vecs.append(np.asarray(row["embedding"], dtype=np.float32))
    if not vecs:
        return [], np.zeros((0, 0), dtype=np.float32)
    mat = np.stack(vecs)
    mat /= np.maximum(np.linalg.norm(mat, axis=1, keepdims=True), 1e-9)
    return rows, mat


def _pairs_above(mat: np.ndarray, threshold: float) -> Iterator[tuple[int, int, float]]:
    """(i, j, cosine) for i < j with cosine ≥ threshold, block by block."""
    n = len(mat)
    for start in range(0, n, _BLOCK):
        sims = mat[start : start + _BLOCK] @ mat.T
        rows, cols = np.nonzero(sims >= threshold)
        for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
            i = start + r
            if i < c:
                yield i, c, float(sims[r, c])


def duplicates(store: ChromaStore, threshold: float = 0.95, level: str = "document") -> list[dict[str, Any]]:
    """Pairs of near-duplicate documents (mean vectors) or chunks (of different documents), most alike first."""
    if not 0 < threshold <= 1:
        raise ConfigError(f"--threshold is a cosine similarity in (0, 1], not {threshold}.")
    if level not in ("document", "chunk"):
        raise ConfigError(f"--level must be 'document' or 'chunk', not {level!r}.")
    rows, mat = _all_vectors(store)
    if not rows:
        return []
    if level == "document":
        groups: dict[str, list[int]] = {}
        for i, row in enumerate(rows):
            groups.setdefault(str(row["metadata"].get("document_id", row["id"])), []).append(i)
        items = []
        for did, idx in groups.items():
            first = min(idx, key=lambda i: int(rows[i]["metadata"].get("ordinal", 0)))
            items.append({"document_id": did, "source": str(rows[first]["metadata"].get("source", ""))})
        mat = np.stack([_unit(mat[idx].mean(axis=0)) for idx in groups.values()])
    else:
        items = [
            {
                "id": row["id"],
                "document_id": str(row["metadata"].get("document_id", "")),
                "source": str(row["metadata"].get("source", "")),
            }
            for row in rows
        ]
    pairs = []
    for i, j, score in _pairs_above(mat, threshold):
        if level == "chunk" and items[i]["document_id"] == items[j]["document_id"]:
            continue  # overlapping chunks of one document are alike by construction
        pairs.append({"score": round(min(score, 1.0), 4), "a": items[i], "b": items[j]})
    pairs.sort(key=lambda p: -p["score"])
    return pairs
