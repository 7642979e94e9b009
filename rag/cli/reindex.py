"""`rag reindex` — re-embed every chunk with the configured embedder, after a model change."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from rag.cli._common import EXIT_OK, emit, settings, show_progress


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("reindex", parents=[common], help="re-embed everything with the configured embedder")
    p.add_argument("--json", action="store_true")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rag.index import Index

    idx = Index(settings(args), check_embedder=False)
    before = idx.store.recorded_embedder()
    bar = None
    if show_progress(args):
        from tqdm import tqdm

        bar = tqdm(total=idx.store.count(), unit="chunk", file=sys.stderr)

    def progress(done: int, total: int) -> None:
        if bar is not None:
            bar.update(done - bar.n)

    count = idx.reindex(progress)
    if bar is not None:
        bar.close()
    after = idx.embedder.identity.key()
    if args.json:
        emit({"chunks": count, "from": before, "to": after})
    else:
        print(f"re-embedded {count} chunks: {before or '(empty)'} → {after}")
    return EXIT_OK
