"""Find the chunks for a question: dense (Chroma), keyword (BM25) or both fused by reciprocal rank.

Fusion is by rank, not score, because cosine similarities and BM25 scores live on unrelated scales
(RRF, k=60, as llama-index's QueryFusionRetriever does).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rag.errors import ConfigError
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
        self, query: str, top_k: int, mode: str = "hybrid", filters: dict[str, Any] | None = None
    ) -> list[SearchResult]:
        """The `top_k` best chunks for `query`; `filters` are metadata equalities, e.g. `{"source": "/a.txt"}`."""
        if mode not in MODES:
            raise ConfigError(f"Unknown search mode {mode!r}: use one of {', '.join(MODES)}.")
        if not query.strip():
            return []
        pool = max(top_k * 4, 20)
        where = filters or None
        dense = self._dense(query, pool, where) if mode in ("dense", "hybrid") else []
        if mode == "dense":
            return dense[:top_k]
        keyword = self._keyword(query, pool, where)
        if mode == "keyword":
            return keyword[:top_k]
        return fuse([dense, keyword])[:top_k]

    def _dense(self, query: str, k: int, where: dict[str, Any] | None) -> list[SearchResult]:
        return self.store.query(self.embedder.embed_query(query), k, _chroma_where(where))

    def _keyword(self, query: str, k: int, where: dict[str, Any] | None) -> list[SearchResult]:
        hits = self.keyword.search(query, k)
        found = {r.id: r for r in self.store.get([cid for cid, _ in hits])}
        results = []
        for cid, score in hits:
            if cid in found and _matches(found[cid].metadata, where):
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


def _chroma_where(filters: dict[str, Any] | None) -> dict[str, Any] | None:
    """Chroma wants one key per clause: several equalities are joined with `$and`."""
    if not filters:
        return None
    if len(filters) == 1:
        return dict(filters)
    return {"$and": [{key: value} for key, value in filters.items()]}


def _matches(meta: dict[str, Any], where: dict[str, Any] | None) -> bool:
    """Equality filters (`{"key": value}`) applied to keyword hits, as Chroma applies them to dense ones."""
    return not where or all(meta.get(key) == value for key, value in where.items())
