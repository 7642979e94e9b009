"""Find the chunks for a question: dense (Chroma), keyword (BM25) or both fused.

Pipeline: candidates from each list (`fusion_depth` each, metadata filters applied inside both) → fusion →
optional MMR for diversity → top-k. Weights, depth and method are measured defaults (README, "Retrieval quality").

Fusion, by default (`fusion_method = "convex"`), scores every candidate on both sides before combining: its cosine
to the question (from its stored vector when only BM25 found it) and the BM25 of its *passage* (the run of
consecutive chunks it belongs to, `rag.keyword`), each min-max normalised over all candidates, then a weighted
sum. Scoring a candidate 0 just because it missed the other list's cut-off, and judging keywords one chunk at a
time, each cost measurable quality. `fusion_method = "rrf"` is weighted reciprocal rank on the two lists,
score = Σ wᵢ / (k + rankᵢ).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from rag.errors import ConfigError
from rag.filters import build_where, matches
from rag.keyword import KeywordIndex, passage_id
from rag.types import SearchResult

if TYPE_CHECKING:
    from rag.embeddings import Embedder
    from rag.settings import Settings
    from rag.store import ChromaStore

MODES = ("hybrid", "dense", "keyword")


@dataclass(frozen=True, slots=True)
class FusionConfig:
    """How the lists are combined; `Settings` fields of the same names (prefixed `fusion_`/`mmr_`) set them."""

    dense_weight: float = 1.0
    keyword_weight: float = 1.0
    rrf_k: int = 10
    depth: int = 150
    method: str = "convex"
    mmr: bool = False
    mmr_lambda: float = 0.5
    date_field: str = "mtime"

    @classmethod
    def from_settings(cls, s: Settings) -> FusionConfig:
        return cls(
            dense_weight=s.fusion_dense_weight,
            keyword_weight=s.fusion_keyword_weight,
            rrf_k=s.fusion_rrf_k,
            depth=s.fusion_depth,
            method=s.fusion_method,
            mmr=s.mmr,
            mmr_lambda=s.mmr_lambda,
            date_field=s.filter_date_field,
        )


class Retriever:
    def __init__(
        self, store: ChromaStore, embedder: Embedder, keyword: KeywordIndex, config: FusionConfig | None = None
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.keyword = keyword
        self.config = config or FusionConfig()

    def search(
        self,
        query: str,
        top_k: int,
        mode: str = "hybrid",
        filters: dict[str, Any] | None = None,
        mmr: bool | None = None,
        embedding: np.ndarray | None = None,
    ) -> list[SearchResult]:
        """The `top_k` best chunks for `query`, best first, higher score = better.

        `filters`: `source`, `document_id`, `author`, `mime` (a value or a list of values), `start_date` /
        `end_date` (epoch seconds or ISO date, against the `filter_date_field` metadata), any other metadata key
        as an equality, or a Chroma-style `$and`/`$or` clause. `mmr` overrides the configured diversity re-ranking;
        `embedding` is the query's vector when the caller embedded several queries in one batch.
        """
        if mode not in MODES:
            raise ConfigError(f"Unknown search mode {mode!r}: use one of {', '.join(MODES)}.")
        if top_k < 1 or not query.strip():
            return []
        cfg = self.config
        use_mmr = cfg.mmr if mmr is None else mmr
        depth = max(cfg.depth, top_k * (3 if use_mmr else 1))
        where = build_where(filters, cfg.date_field)
        query_vec = embedding
        if query_vec is None and (mode != "keyword" or use_mmr):
            query_vec = self.embedder.embed_query(query)
        if mode == "hybrid" and cfg.method == "convex":
            assert query_vec is not None
            ranked = self._hybrid(query, query_vec, depth, where)
        else:
            dense, keyword = self.candidates(query, depth, mode, where, query_vec)
            if mode == "dense":
                ranked = dense
            elif mode == "keyword":
                ranked = keyword
            else:
                ranked = fuse([dense, keyword], [cfg.dense_weight, cfg.keyword_weight], cfg.rrf_k)
        if use_mmr and query_vec is not None:
            return mmr_rerank(ranked[: max(top_k * 3, 20)], query_vec, self.store.vectors, top_k, cfg.mmr_lambda)
        return ranked[:top_k]

    def candidates(
        self,
        query: str,
        depth: int,
        mode: str = "hybrid",
        where: dict[str, Any] | None = None,
        query_vec: np.ndarray | None = None,
    ) -> tuple[list[SearchResult], list[SearchResult]]:
        """The dense and keyword ranked lists (up to `depth` each) before fusion; `rag eval` tunes fusion on them."""
        dense: list[SearchResult] = []
        keyword: list[SearchResult] = []
        if mode in ("dense", "hybrid"):
            vec = query_vec if query_vec is not None else self.embedder.embed_query(query)
            dense = self.store.query(vec, depth, where)
        if mode in ("keyword", "hybrid"):
            keyword = self._keyword(query, depth, where)
        return dense, keyword

    def _hybrid(
        self, query: str, query_vec: np.ndarray, depth: int, where: dict[str, Any] | None
    ) -> list[SearchResult]:
        """Every candidate of either list scored by cosine and by passage BM25, normalised over all, summed."""
        dense = self.store.query(query_vec, depth, where)
        first = {r.id: r for r in dense}
        cosine = {r.id: r.score for r in dense}
        hits = self._keyword_hits(query, depth, where)
        only_keyword = [cid for cid, _ in hits if cid not in first]
        if only_keyword:  # one read for their text, metadata and vector
            q = np.asarray(query_vec, dtype=np.float32)
            q = q / (np.linalg.norm(q) or 1.0)
            for r, vec in self.store.get_with_vectors(only_keyword):
                if matches(r.metadata, where):
                    first[r.id] = r
                    cosine[r.id] = float(vec @ q / (np.linalg.norm(vec) or 1.0))
        if not first:
            return []
        passage = {cid: passage_id(str(r.metadata.get("document_id", "")), _ordinal(r)) for cid, r in first.items()}
        bm25 = self.keyword.passage_scores(query, set(passage.values()))
        ids = list(first)
        dense_part = _min_max(np.array([cosine[cid] for cid in ids]))
        keyword_part = _min_max(np.array([bm25.get(passage[cid], 0.0) for cid in ids]))
        wd, wk = self.config.dense_weight, self.config.keyword_weight
        fused = (wd * dense_part + wk * keyword_part) / ((wd + wk) or 1.0)
        # Chunks of one passage share its BM25: their cosine breaks the tie.
        order = sorted(range(len(ids)), key=lambda i: (-fused[i], -cosine[ids[i]]))
        return [SearchResult(ids[i], first[ids[i]].text, float(fused[i]), first[ids[i]].metadata) for i in order]

    def _keyword_hits(self, query: str, k: int, where: dict[str, Any] | None) -> list[tuple[str, float]]:
        allowed = self.store.ids_where(where) if where else None
        if allowed is not None and not allowed:
            return []
        # The keyword index holds no metadata: the filter's chunk ids (from Chroma) restrict it instead.
        return self.keyword.search(query, k, allowed)

    def _keyword(self, query: str, k: int, where: dict[str, Any] | None) -> list[SearchResult]:
        hits = self._keyword_hits(query, k, where)
        found = {r.id: r for r in self.store.get([cid for cid, _ in hits])}
        return [
            SearchResult(cid, found[cid].text, score, found[cid].metadata)
            for cid, score in hits
            if cid in found and matches(found[cid].metadata, where)
        ]


def _ordinal(result: SearchResult) -> int:
    try:
        return int(result.metadata.get("ordinal", 0))
    except (TypeError, ValueError):
        return 0


def _min_max(values: np.ndarray) -> np.ndarray:
    """Scale to [0, 1]; all-equal values become 1 if positive (all matched equally), else 0."""
    lo, hi = float(values.min()), float(values.max())
    if hi > lo:
        return (values - lo) / (hi - lo)
    return np.ones_like(values) if hi > 0 else np.zeros_like(values)


def fuse(lists: list[list[SearchResult]], weights: list[float] | None = None, k: int = 60) -> list[SearchResult]:
    """Weighted reciprocal rank fusion: score = Σ wᵢ / (k + rankᵢ). Ties keep the order of the first list."""
    weights = weights or [1.0] * len(lists)
    if len(weights) != len(lists):
        raise ConfigError(f"fuse() got {len(lists)} lists but {len(weights)} weights")
    scores: dict[str, float] = {}
    first: dict[str, SearchResult] = {}
    for results, weight in zip(lists, weights, strict=True):
        for rank, r in enumerate(results, start=1):
            scores[r.id] = scores.get(r.id, 0.0) + weight / (k + rank)
            first.setdefault(r.id, r)
    order = sorted(scores, key=lambda cid: -scores[cid])
    return [SearchResult(cid, first[cid].text, scores[cid], first[cid].metadata) for cid in order]


def fuse_scores(lists: list[list[SearchResult]], weights: list[float] | None = None) -> list[SearchResult]:
    """Convex combination of min-max normalised scores: score = Σ wᵢ · (sᵢ − minᵢ) / (maxᵢ − minᵢ) / Σ wᵢ.

    Unlike RRF it keeps how far ahead the best hit is, not just its rank; a chunk absent from a list gets 0 there.
    Scores land in [0, 1].
    """
    weights = weights or [1.0] * len(lists)
    if len(weights) != len(lists):
        raise ConfigError(f"fuse_scores() got {len(lists)} lists but {len(weights)} weights")
    total_weight = sum(weights) or 1.0
    scores: dict[str, float] = {}
    first: dict[str, SearchResult] = {}
    for results, weight in zip(lists, weights, strict=True):
        if not results:
            continue
        hi, lo = max(r.score for r in results), min(r.score for r in results)
        for r in results:
            norm = (r.score - lo) / (hi - lo) if hi > lo else 1.0
            scores[r.id] = scores.get(r.id, 0.0) + weight * norm / total_weight
            first.setdefault(r.id, r)
    order = sorted(scores, key=lambda cid: -scores[cid])
    return [SearchResult(cid, first[cid].text, scores[cid], first[cid].metadata) for cid in order]


def mmr_rerank(
    ranked: list[SearchResult],
    query_vec: np.ndarray,
    vectors_of: Any,
    top_k: int,
    lam: float,
) -> list[SearchResult]:
    """Maximal marginal relevance: pick, one at a time, the chunk maximising λ·relevance − (1−λ)·max similarity
    to those already picked, so near-duplicate chunks do not fill the context.

    Relevance is the list's own score scaled to [0, 1] (so fused, dense and BM25 scores all work). The returned
    score is the MMR value at selection, made non-increasing so that higher still means better.
    """
    if not ranked:
        return []
    vecs = vectors_of([r.id for r in ranked])
    keep = [r for r in ranked if r.id in vecs]
    if not keep:
        return ranked[:top_k]
    mat = np.stack([np.asarray(vecs[r.id], dtype=np.float32) for r in keep])
    mat /= np.maximum(np.linalg.norm(mat, axis=1, keepdims=True), 1e-9)
    raw = np.array([r.score for r in keep], dtype=np.float64)
    lo, hi = float(raw.min()), float(raw.max())
    rel = (raw - lo) / (hi - lo) if hi > lo else np.ones_like(raw)
    sims = mat @ mat.T
    chosen: list[int] = []
    out: list[SearchResult] = []
    best_so_far = float("inf")
    remaining = list(range(len(keep)))
    while remaining and len(chosen) < top_k:
        if chosen:
            # Clamped at 0: a chunk pointing away from the picked ones is no less redundant than an unrelated one.
            redundancy = np.maximum(sims[np.ix_(remaining, chosen)].max(axis=1), 0.0)
        else:
            redundancy = np.zeros(len(remaining))
        values = lam * rel[remaining] - (1 - lam) * redundancy
        j = int(np.argmax(values))
        pick = remaining.pop(j)
        chosen.append(pick)
        best_so_far = min(best_so_far, float(values[j]))
        r = keep[pick]
        out.append(SearchResult(r.id, r.text, best_so_far, r.metadata))
    return out
