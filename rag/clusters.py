"""What is in a collection: documents grouped by meaning, each group named by its most distinctive terms.

A document's vector is the mean of its chunks' vectors (normalised). Groups come from scikit-learn's KMeans on
those unit vectors (so Euclidean distance ranks like cosine); `k="auto"` tries k = 2..10 and keeps the best
silhouette (cosine). Names are c-TF-IDF terms (as BERTopic does): each cluster's chunk texts form one document,
and a term scores by its frequency in the cluster times log(1 + average cluster size / its frequency overall).

Why scikit-learn and not HDBSCAN: KMeans with a silhouette choice needs no density parameters that depend on the
corpus size, gives every document a cluster (the UI map colours all points), and scikit-learn is maintained,
CPU-only and ships wheels; HDBSCAN would label small corpora mostly as noise.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from rag.errors import ConfigError

MAX_AUTO_K = 10
# Link debris common in web pages and wiki exports: distinctive by count, meaningless as a name.
_WEB_NOISE = frozenset({"http", "https", "www", "com", "org", "html", "htm", "retrieved", "archived", "isbn", "pdf"})


@dataclass
class Cluster:
    id: int
    terms: list[str]  # most distinctive first
    documents: list[dict[str, str]] = field(default_factory=list)  # {"document_id", "source", "title"}

    @property
    def label(self) -> str:
        return ", ".join(self.terms[:3])


@dataclass
class Clustering:
    k: int
    method: str
    silhouette: float | None  # None when it cannot be computed (fewer than 3 documents, or k = 1)
    clusters: list[Cluster]

    def assignments(self) -> dict[str, int]:
        """document_id → cluster id (for colouring a map)."""
        return {d["document_id"]: c.id for c in self.clusters for d in c.documents}

    def to_dict(self) -> dict[str, Any]:
        return {
            "k": self.k,
            "method": self.method,
            "silhouette": self.silhouette,
            "clusters": [{**asdict(c), "label": c.label, "size": len(c.documents)} for c in self.clusters],
        }


def parse_k(value: str | int) -> int | None:
    """'auto' → None; a whole number ≥ 1 → itself."""
    if isinstance(value, str) and value.strip().lower() == "auto":
        return None
    try:
        k = int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"k must be a whole number or 'auto', not {value!r}") from None
    if k < 1:
        raise ConfigError(f"k must be at least 1, not {k}")
    return k


def cluster_documents(rows: Iterable[dict[str, Any]], k: int | None = None, n_terms: int = 5) -> Clustering:
    """Cluster the documents of chunk `rows` (`text`, `metadata`, `embedding`); k=None chooses k by silhouette."""
    vectors: dict[str, list[np.ndarray]] = {}
    texts: dict[str, list[str]] = {}
    info: dict[str, dict[str, str]] = {}
    for row in rows:
        meta = row["metadata"] or {}
        doc = str(meta.get("document_id", row["id"]))
        vectors.setdefault(doc, []).append(np.asarray(row["embedding"], dtype=np.float32))
        texts.setdefault(doc, []).append(row["text"] or "")
        info.setdefault(
            doc, {"document_id": doc, "source": str(meta.get("source", "")), "title": str(meta.get("title", ""))}
        )
    ids = sorted(vectors)
    if not ids:
        return Clustering(0, "kmeans", None, [])
    matrix = np.stack([np.mean(vectors[d], axis=0) for d in ids])
    matrix /= np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)
    labels, chosen, score = _kmeans(matrix, k)
    groups = [[ids[i] for i in np.flatnonzero(labels == c)] for c in range(chosen)]
    groups = sorted((g for g in groups if g), key=len, reverse=True)
    names = _distinctive_terms([" ".join(t for d in g for t in texts[d]) for g in groups], n_terms)
    clusters = [
        Cluster(i, names[i], [info[d] for d in sorted(g, key=lambda d: info[d]["source"])])
        for i, g in enumerate(groups)
    ]
    return Clustering(len(clusters), "kmeans", score, clusters)


def _kmeans(matrix: np.ndarray, k: int | None) -> tuple[np.ndarray, int, float | None]:
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    n = len(matrix)

    def fit(kk: int) -> np.ndarray:
        return KMeans(n_clusters=kk, n_init=10, random_state=0).fit_predict(matrix)

    def silhouette(labels: np.ndarray) -> float | None:
        if len(set(labels.tolist())) < 2 or len(set(labels.tolist())) >= n:
            return None
        return round(float(silhouette_score(matrix, labels, metric="cosine")), 4)

    if k is not None:
        kk = min(k, n)
        labels = fit(kk)
        return labels, kk, silhouette(labels)
    if n < 3:
        return np.zeros(n, dtype=int), 1, None
    best: tuple[np.ndarray, int, float | None] | None = None
    for kk in range(2, min(MAX_AUTO_K, n - 1) + 1):
        labels = fit(kk)
        score = silhouette(labels)
        if score is not None and (best is None or best[2] is None or score > best[2]):
            best = (labels, kk, score)
    return best if best is not None else (np.zeros(n, dtype=int), 1, None)


def _distinctive_terms(cluster_texts: list[str], n_terms: int) -> list[list[str]]:
    """c-TF-IDF: the top terms of each cluster against all clusters."""
    from sklearn.feature_extraction.text import CountVectorizer

    if not cluster_texts:
        return []
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    stop = sorted(ENGLISH_STOP_WORDS | _WEB_NOISE)
    vectorizer = CountVectorizer(stop_words=stop, token_pattern=r"(?u)\b[^\W\d_][\w'-]{2,}\b", lowercase=True)
    try:
        counts = vectorizer.fit_transform(cluster_texts).toarray().astype(np.float64)
    except ValueError:  # nothing but stop words and numbers
        return [[] for _ in cluster_texts]
    terms = vectorizer.get_feature_names_out()
    tf = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    average = counts.sum() / len(cluster_texts)
    idf = np.log1p(average / np.maximum(counts.sum(axis=0), 1))
    scores = tf * idf
    return [[str(terms[j]) for j in np.argsort(-row, kind="stable")[:n_terms] if row[j] > 0] for row in scores]
