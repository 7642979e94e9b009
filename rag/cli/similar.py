"""`rag similar SOURCE` ("more like this") and `rag duplicates` (near-duplicate pairs), from the stored vectors."""

from __future__ import annotations

import argparse
from typing import Any

from rag.cli._common import EXIT_OK, emit, index


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("similar", parents=[common], help="documents most like a given indexed document")
    p.add_argument("source", help="an indexed file path, source string or document id")
    p.add_argument("--top-k", type=int, default=5, help="how many documents (default 5)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run_similar)

    d = sub.add_parser("duplicates", parents=[common], help="near-duplicate document or chunk pairs")
    d.add_argument("--threshold", type=float, default=0.95, help="cosine similarity at or above which (default 0.95)")
    d.add_argument("--level", choices=["document", "chunk"], default="document", help="compare documents or chunks")
    d.add_argument("--limit", type=int, default=50, help="most pairs to print (default 50)")
    d.add_argument("--json", action="store_true")
    d.set_defaults(func=run_duplicates)


def run_similar(args: argparse.Namespace) -> int:
    results = index(args).similar(args.source, top_k=args.top_k)
    if args.json:
        emit({"source": args.source, "results": results})
        return EXIT_OK
    if not results:
        print("no other documents in the index")
    for i, r in enumerate(results, start=1):
        title = f" — {r['title']}" if r["title"] else ""
        print(f"{i}. {r['source']}{title}  score {r['score']:.3f}")
    return EXIT_OK


def run_duplicates(args: argparse.Namespace) -> int:
    pairs = index(args).duplicates(threshold=args.threshold, level=args.level)
    if args.json:
        emit({"threshold": args.threshold, "level": args.level, "pairs": pairs[: args.limit]})
        return EXIT_OK
    if not pairs:
        print(f"no {args.level} pairs at cosine ≥ {args.threshold}")
    for p in pairs[: args.limit]:
        a = p["a"].get("id") or p["a"]["source"]
        b = p["b"].get("id") or p["b"]["source"]
        print(f"{p['score']:.3f}  {a}  ~  {b}")
    return EXIT_OK
