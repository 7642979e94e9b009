"""Tune the fusion of the two ranked lists (RRF weights and k, convex weights, depth) on cached dense and BM25 lists —
no re-embedding per trial. This is `fusion_method = "rrf"` and list-level convex fusion; the shipped default
(every candidate scored on both sides, keywords by passage, `rag.retrieval`) is measured with `rag eval`.

    python bench/tune_fusion.py --beir ../shared/data/beir/scifact --split train --squad ../shared/data/qa/squad2

Each dataset is ingested once into its cached evaluation index (as `rag eval` does); each query's dense and keyword
candidate lists are fetched once; then every setting in the grid is scored with trec_eval. Prints a table.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path
from typing import Any

from rag import eval as rag_eval
from rag.retrieval import fuse, fuse_scores
from rag.settings import load_settings

DEPTH = 200


def candidate_lists(settings: Any, dataset: rag_eval.Dataset) -> dict[str, tuple[list[Any], list[Any]]]:
    index = rag_eval.eval_index(settings, dataset)
    cache = index.settings.data_dir / f"{index.settings.collection}.candidates-{DEPTH}-v2.json"
    if cache.is_file():
        raw = json.loads(cache.read_text())
    else:
        raw = {}
        started = time.perf_counter()
        for qid, text in dataset.queries.items():
            dense, keyword = index.retriever.candidates(text, DEPTH)
            raw[qid] = [[(r.id, r.metadata["document_id"], r.score) for r in lst] for lst in (dense, keyword)]
        print(
            f"{dataset.name}: candidates for {len(raw)} queries in {time.perf_counter() - started:.0f} s",
            file=sys.stderr,
        )
        cache.write_text(json.dumps(raw))
    return raw


class _R:  # the two fields fuse() reads
    __slots__ = ("id", "metadata", "score", "text")

    def __init__(self, cid: str, did: str, score: float = 0.0) -> None:
        self.id, self.text, self.score, self.metadata = cid, "", score, {"document_id": did}


def score(
    dataset: rag_eval.Dataset, lists: dict[str, Any], wd: float, wk: float, k: int, depth: int, mode: str = "hybrid"
) -> dict[str, float]:
    run = {}
    for qid, (dense, keyword) in lists.items():
        d = [_R(c, doc, s) for c, doc, s in dense[:depth]]
        kw = [_R(c, doc, s) for c, doc, s in keyword[:depth]]
        if mode == "dense":
            ranked = d
        elif mode == "keyword":
            ranked = kw
        elif mode == "convex":  # min-max normalised scores, alpha = wd / (wd + wk): an alternative to RRF
            ranked = fuse_scores([d, kw], [wd, wk])  # type: ignore[list-item]
        else:
            ranked = fuse([d, kw], [wd, wk], k)  # type: ignore[list-item]
        run[qid] = rag_eval.to_doc_run([r.metadata["document_id"] for r in ranked])
    return rag_eval.metrics(dataset.qrels, run)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--beir")
    p.add_argument("--split", default="train")
    p.add_argument("--squad")
    p.add_argument("--data-dir", default="rag-data")
    p.add_argument("--chunk-size", type=int)
    p.add_argument("--chunk-overlap", type=int)
    args = p.parse_args()
    settings = load_settings(data_dir=Path(args.data_dir), chunk_size=args.chunk_size, chunk_overlap=args.chunk_overlap)
    sets = []
    if args.beir:
        sets.append(rag_eval.load_beir(args.beir, args.split))
    if args.squad:
        sets.append(rag_eval.load_squad(args.squad))
    lists = {d.name: candidate_lists(settings, d) for d in sets}
    for d in sets:
        for mode in ("dense", "keyword"):
            print(d.name, mode, score(d, lists[d.name], 1, 1, 60, 100, mode))
    grid = itertools.product([0.5, 0.7, 0.85, 1.0, 1.2, 1.5], [1.0], [5, 10, 20, 30, 60, 100], [50, 100, 150, 200])
    rows = []
    for wd, wk, k, depth in grid:
        row = {"wd": wd, "wk": wk, "k": k, "depth": depth}
        for d in sets:
            row[d.name] = score(d, lists[d.name], wd, wk, k, depth)["ndcg@10"]
        rows.append(row)
    rows.sort(key=lambda r: -sum(r[d.name] for d in sets))
    for r in rows[:25]:
        print(r)
    for alpha in (0.3, 0.4, 0.45, 0.5, 0.55, 0.6, 0.7):
        for depth in (50, 100, 150, 200):
            got = {d.name: score(d, lists[d.name], alpha, 1 - alpha, 0, depth, "convex") for d in sets}
            print("convex", alpha, depth, {n: m["ndcg@10"] for n, m in got.items()})
    eq = [r for r in rows if r["wd"] == 1.0 and r["k"] == 60 and r["depth"] == 100]
    print("equal-weight RRF k=60 depth 100:", eq)


if __name__ == "__main__":
    main()
