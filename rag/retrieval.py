"""Find the chunks for a question: dense (Chroma), keyword (BM25) or both fused by reciprocal rank.

Fusion is by rank, not score, because cosine similarities and BM25 scores live on unrelated scales
(RRF, k=60, as llama-index's QueryFusionRetriever does).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from rag.errors import ConfigError
from rag.filters import matches, to_where
from rag.types import SearchResult

if TYPE_CHECKING:
    from rag.embeddings import Embedder
    from rag.keyword import KeywordIndex
    from rag.store import ChromaStore

RRF_K = 60
MODES = ("hybrid", "dense", "keyword")


class Retriever:
    def __init__(self, store: ChromaStore, embedder: Embedder, keyword: KeywordIndex) -> None:
        self.store = store
        self.embedder = embedder
        self.keyword = keyword

    def search(
        self,
        query: str,
        top_k: int,
        mode: str = "hybrid",
        filters: dict[str, Any] | None = None,
        embedding: np.ndarray | None = None,
    ) -> list[SearchResult]:
        """The `top_k` best chunks for `query`.

        `filters` are metadata equalities (`{"source": "/a.txt"}`) or a Chroma-style where clause (`rag.filters`);
        `embedding` is the query's vector when the caller embedded several queries in one batch.
        """
        if mode not in MODES:
            raise ConfigError(f"Unknown search mode {mode!r}: use one of {', '.join(MODES)}.")
        if not query.strip():
            return []
        pool = max(top_k * 4, 20)
        where = filters or None
        dense = self._dense(query, pool, where, embedding) if mode in ("dense", "hybrid") else []
        if mode == "dense":
            return dense[:top_k]
        keyword = self._keyword(query, pool, where)
        if mode == "keyword":
            return keyword[:top_k]
        return fuse([dense, keyword])[:top_k]

    def _dense(
        self, query: str, k: int, where: dict[str, Any] | None, embedding: np.ndarray | None = None
    ) -> list[SearchResult]:
        vector = self.embedder.embed_query(query) if embedding is None else embedding
        return self.store.query(vector, k, to_where(where))

    def _keyword(self, query: str, k: int, where: dict[str, Any] | None) -> list[SearchResult]:
        hits = self.keyword.search(query, k)
        found = {r.id: r for r in self.store.get([cid for cid, _ in hits])}
        results = []
        for cid, score in hits:
            if cid in found and matches(found[cid].metadata, where):
                hit = found[cid]
                results.append(SearchResult(hit.id, hit.text, score, hit.metadata))
        return results


def fuse(lists: list[list[SearchResult]], k: int = RRF_K) -> list[SearchResult]:
    """Reciprocal rank fusion: score = Σ 1/(k + rank). Ties keep the order of the first list."""
    scores: dict[str, float] = {}
    first: dict[str, SearchResult] = {}
    for results in lists:
        for rank, r in enumerate(results, start=1):
            scores[r.id] = scores.get(r.id, 0.0) + 1.0 / (k + rank)
            first.setdefault(r.id, r)
    order = sorted(scores, key=lambda cid: -scores[cid])
    return [SearchResult(cid, first[cid].text, scores[cid], first[cid].metadata) for cid in order]
