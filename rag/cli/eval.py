"""`rag eval --beir DIR` — measure retrieval (nDCG@10, recall@10/100, MRR@10) on a BEIR folder or SQuAD passages."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from rag.cli._common import EXIT_OK, emit, settings
from rag.errors import ConfigError


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "eval",
        parents=[common],
        help="measure retrieval quality on a BEIR-format folder",
        description="Ingest a BEIR corpus into a cached evaluation index (reused while the corpus and the index "
        "settings are unchanged), run its judged queries and print nDCG@10, recall@10/100 and MRR@10.",
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--beir", metavar="DIR", help="folder with corpus.jsonl, queries.jsonl, qrels/<split>.tsv")
    src.add_argument("--squad", metavar="DIR", help="folder with SQuAD passages.jsonl and questions.jsonl")
    p.add_argument("--split", default="test", help="qrels split of a BEIR folder (default test)")
    p.add_argument("--mode", choices=["hybrid", "dense", "keyword"], help="retrieval mode (default: RAG_SEARCH_MODE)")
    p.add_argument("--mmr", action="store_true", default=None, help="re-rank with MMR (diversity)")
    p.add_argument("--fresh", action="store_true", help="rebuild the evaluation index instead of reusing it")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rag import eval as rag_eval

    s = settings(args)
    try:
        dataset = rag_eval.load_squad(args.squad) if args.squad else rag_eval.load_beir(args.beir, args.split)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    mode = args.mode or s.search_mode

    def progress(done: int, total: int) -> None:
        if sys.stderr.isatty() and (done % 50 == 0 or done == total):
            print(f"\rqueries {done}/{total}", end="\n" if done == total else "", file=sys.stderr)

    result = rag_eval.evaluate(s, dataset, mode, fresh=args.fresh, mmr=args.mmr, progress=progress)
    if args.json:
        emit(result)
        return EXIT_OK
    print(f"{dataset.name}: {result['queries']} queries, {result['documents']} documents, {result['chunks']} chunks")
    print(
        f"mode {mode}: " + "  ".join(f"{k} {result[k]:.4f}" for k in ("ndcg@10", "recall@10", "recall@100", "mrr@10"))
    )
    print(f"{result['seconds']:.1f} s (index {result['index_seconds']:.1f} s)")
    return EXIT_OK
