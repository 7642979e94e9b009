"""A/B: BM25 over title + chunk text (what rag.keyword indexes) vs chunk text alone, on SciFact train.

    python bench/title_ab.py ../shared/data/beir/scifact rag-data

Reuses the cached evaluation index `rag eval` builds; builds two throw-away keyword indexes beside it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import rag.keyword as kw
from rag import eval as rag_eval
from rag.settings import load_settings


def main() -> None:
    folder, data_dir = sys.argv[1], Path(sys.argv[2] if len(sys.argv) > 2 else "rag-data")
    dataset = rag_eval.load_beir(folder, "train")
    index = rag_eval.eval_index(load_settings(data_dir=data_dir), dataset)
    variants = {"title_and_text": kw.keyword_text, "text_only": lambda text, meta: text}
    for label, fn in variants.items():
        kw.keyword_text = fn  # the function KeywordIndex calls for each chunk
        keyword = kw.KeywordIndex(index.store, index.settings.data_dir / f"ab-{label}")
        run = {}
        for qid, query in dataset.queries.items():
            hits = keyword.search(query, 150)
            run[qid] = rag_eval.to_doc_run([cid.rsplit("_", 1)[0] for cid, _ in hits])
        print(label, rag_eval.metrics(dataset.qrels, run), flush=True)


if __name__ == "__main__":
    main()
