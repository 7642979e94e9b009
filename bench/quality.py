"""Dense nDCG@10 on the SciFact train split: is a faster embedder variant as good as the fp32 model?

Each abstract is embedded as "title. text" (first 256 tokens), each query alone; ranking is by cosine over the whole
(sub)corpus. Vectors are cached per graph and corpus, so a second run costs only the queries.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
from collections.abc import Callable, Sequence

import numpy as np

from bench.common import SCIFACT, bench_cache

Embed = Callable[[Sequence[str]], np.ndarray]


def load_queries(limit: int | None) -> tuple[list[tuple[str, str]], dict[str, set[str]]]:
    """(query id, text) of judged train queries, and their relevant document ids."""
    qrels: dict[str, set[str]] = {}
    with (SCIFACT / "qrels" / "train.tsv").open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            if int(row["score"]) > 0:
                qrels.setdefault(row["query-id"], set()).add(row["corpus-id"])
    queries = []
    for line in (SCIFACT / "queries.jsonl").open(encoding="utf-8"):
        q = json.loads(line)
        if q["_id"] in qrels:
            queries.append((q["_id"], q["text"]))
    queries = queries[:limit] if limit else queries
    return queries, {qid: qrels[qid] for qid, _ in queries}


def ndcg_at_10(scores: np.ndarray, doc_ids: list[str], queries: list[tuple[str, str]], qrels: dict[str, set[str]]):
    total = 0.0
    for row, (qid, _) in enumerate(queries):
        top = np.argsort(-scores[row])[:10]
        rel = qrels[qid]
        dcg = sum(1.0 / math.log2(rank + 2) for rank, j in enumerate(top) if doc_ids[j] in rel)
        ideal = sum(1.0 / math.log2(rank + 2) for rank in range(min(len(rel), 10)))
        total += dcg / ideal
    return total / len(queries)


def evaluate(name: str, embed: Embed, corpus: list[dict[str, str]], queries, qrels) -> tuple[float, np.ndarray]:
    """(nDCG@10, document vectors) of `embed` (a graph named `name`, for the vector cache) on `corpus`."""
    doc_ids = [r["_id"] for r in corpus]
    key = hashlib.sha1(("\n".join(doc_ids) + name).encode()).hexdigest()[:16]
    cached = bench_cache() / f"scifact-{name}-{len(doc_ids)}-{key}.npy"
    if cached.is_file():
        docs = np.load(cached)
    else:
        docs = embed([f"{r['title']}. {r['text']}" for r in corpus])
        np.save(cached, docs)
    qv = embed([text for _, text in queries])
    return ndcg_at_10(qv @ docs.T, doc_ids, queries, qrels), docs
