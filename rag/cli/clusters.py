"""`rag clusters [--k K|auto] [--json]` — what the collection holds: documents grouped by meaning, named by terms."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rag.cli._common import EXIT_OK, emit, index


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("clusters", parents=[common], help="group the documents by topic, named by distinctive terms")
    p.add_argument("--k", default="auto", metavar="K|auto", help="number of clusters, or auto (best silhouette)")
    p.add_argument("--terms", type=int, default=5, metavar="N", help="distinctive terms shown per cluster")
    p.add_argument("--json", action="store_true", help="print the clusters as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    result = index(args).clusters(args.k, n_terms=args.terms)
    if args.json:
        emit(result.to_dict())
        return EXIT_OK
    if not result.clusters:
        print("the collection is empty: `rag ingest` some documents first")
        return EXIT_OK
    quality = f", silhouette {result.silhouette:.2f}" if result.silhouette is not None else ""
    print(f"{result.k} clusters of {sum(len(c.documents) for c in result.clusters)} documents{quality}")
    for c in result.clusters:
        print(f"\n[{c.id}] {', '.join(c.terms) or '(no distinctive terms)'} — {len(c.documents)} documents")
        for d in c.documents:
            print(f"    {d['title'] or Path(d['source']).name}  ({d['source']})")
    return EXIT_OK
