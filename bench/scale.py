"""The query path at scale, in its own process so its peak memory is its own.

    python bench/scale.py --chunks 100000 --vectors base.npy --corpus base.json --out scale.json

Embedding 100k real chunks takes about an hour here, so the collection is SciFact abstracts with their real model
vectors plus synthetic near-copies: copy j of abstract i keeps its text (with a marker, so BM25 sees a realistic
vocabulary and size) and its vector plus Gaussian noise, renormalised (cosine to the original ≈ 0.94). They are
inserted through the store's own add path; then the real query path (`Index.search`: embed the question, dense ∥
BM25, fusion) is timed on SciFact train queries.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import peak_rss_mb
from bench.quality import load_queries


def build_and_query(chunks: int, vectors: np.ndarray, corpus: list[dict], queries: int, workdir: Path) -> dict:
    """Fill a fresh collection with `chunks` chunks, then time `queries` searches; returns the measurements."""
    import rag
    from rag.documents import Chunk

    index = rag.open_index(data_dir=workdir / "rag-data", collection="scale")
    rng = np.random.default_rng(0)
    started = time.perf_counter()
    batch: list[Chunk] = []
    rows: list[np.ndarray] = []
    inserted = 0
    for n in range(chunks):
        i, copy = n % len(corpus), n // len(corpus)
        doc = corpus[i]
        vec = vectors[i]
        text = f"{doc['title']}. {doc['text']}"
        if copy:
            vec = vec + rng.normal(0.0, 0.018, vec.shape).astype(np.float32)  # noise norm ≈ 0.35: cosine ≈ 0.94
            vec = vec / np.linalg.norm(vec)
            text = f"{text} (copy {copy})"
        document_id = f"scifact{doc['_id']}c{copy}"
        meta = {
            "source": f"/scifact/{doc['_id']}-{copy}.txt",
            "document_id": document_id,
            "title": doc["title"],
            "mime": "text/plain",
            "ordinal": 0,
            "n_chunks": 1,
            "sha256": document_id,
        }
        batch.append(Chunk(f"{document_id}_0", text, document_id, 0, meta))
        rows.append(vec)
        if len(batch) == 5000 or n == chunks - 1:
            index.store.add(batch, np.stack(rows).astype(np.float32))
            inserted += len(batch)
            batch, rows = [], []
    insert_s = time.perf_counter() - started
    total = index.store.count()  # the collection the queries are timed on (the update below adds a few)
    index.store.bump_generation()  # as an ingest does: commits the keyword index, written alongside
    qs, _ = load_queries(None)
    texts = [t for _, t in qs][: max(queries, 1)]
    t0 = time.perf_counter()
    index.search(texts[0], top_k=5)  # first search: loads the model and opens the indexes
    first_s = time.perf_counter() - t0
    times = []
    for q in texts[1:]:
        t0 = time.perf_counter()
        index.search(q, top_k=5)
        times.append((time.perf_counter() - t0) * 1000)
    dense = []
    for q in texts[1 : 1 + min(50, len(texts) - 1)]:
        t0 = time.perf_counter()
        index.search(q, top_k=5, mode="dense")
        dense.append((time.perf_counter() - t0) * 1000)
    # An update between searches (an API upsert of 100 chunks): the keyword index takes it in place.
    update = [
        Chunk(f"update{j}_0", f"Update {j}: {corpus[j]['text']}", f"update{j}", 0,
              {"source": f"/update/{j}.txt", "document_id": f"update{j}", "title": "", "mime": "text/plain",
               "ordinal": 0, "n_chunks": 1, "sha256": f"u{j}"})
        for j in range(min(100, len(corpus)))
    ]  # fmt: skip
    t0 = time.perf_counter()
    index.store.add(update, np.stack([vectors[j] for j in range(len(update))]).astype(np.float32))
    index.store.bump_generation()
    update_write_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    index.search(texts[1], top_k=5)
    update_search_ms = (time.perf_counter() - t0) * 1000
    t0 = time.perf_counter()
    index.keyword.rebuild()  # what every change cost before the index was updated in place (bm25s)
    rebuild_s = time.perf_counter() - t0
    data = workdir / "rag-data"
    disk = {p.name: sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) for p in data.iterdir()}
    return {
        "chunks": total,
        "synthetic_chunks": max(0, chunks - len(corpus)),
        "insert_chunks_per_s": inserted / insert_s,
        "first_search_s": first_s,
        "update_write_s": update_write_s,
        "update_search_ms": update_search_ms,
        "keyword_rebuild_s": rebuild_s,
        "queries": len(times),
        "query_p50_ms": float(np.percentile(times, 50)) if times else None,
        "query_p99_ms": float(np.percentile(times, 99)) if times else None,
        "dense_p50_ms": float(np.percentile(dense, 50)) if dense else None,
        "peak_rss_mb": peak_rss_mb(),
        "disk_bytes": disk,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--chunks", type=int, required=True)
    parser.add_argument("--vectors", type=Path, required=True, help=".npy of real vectors, one per abstract")
    parser.add_argument("--corpus", type=Path, required=True, help="JSON list of the abstracts, in vector order")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    vectors = np.load(args.vectors)
    with tempfile.TemporaryDirectory(prefix="rag-scale-") as tmp:
        corpus = json.loads(args.corpus.read_text(encoding="utf-8"))
        result = build_and_query(args.chunks, vectors, corpus, args.queries, Path(tmp))
    args.out.write_text(json.dumps(result))


if __name__ == "__main__":
    main()
