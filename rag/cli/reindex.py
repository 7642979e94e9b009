"""`rag reindex [--to MODEL] [--rollback]` — re-embed every chunk after a model change, safely.

The new vectors go into a new collection while the old one keeps answering (other processes included); the swap
happens only when it is complete, and the old collection is kept for `--rollback`.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from rag.cli import _cost
from rag.cli._common import EXIT_OK, emit, settings, show_progress


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "reindex", parents=[common], help="re-embed everything (with another model), keep the old for rollback"
    )
    p.add_argument(
        "--to",
        metavar="MODEL",
        help="the new embedder, e.g. openai:text-embedding-3-small (default: the configured one)",
    )
    p.add_argument("--rollback", action="store_true", help="restore the collection the last reindex replaced")
    _cost.add_flags(p)
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rag.index import Index

    idx = Index(settings(args), check_embedder=False)
    if args.rollback:
        return _rollback(idx, args)
    target = idx.settings if not args.to else idx.settings.model_copy(update={"embed_model": args.to})
    stop = _check_cost(idx, target, args)
    if stop is not None:
        return stop
    bar = None
    if show_progress(args):
        from tqdm import tqdm

        bar = tqdm(total=idx.store.count(), unit="chunk", file=sys.stderr)

    def progress(done: int, total: int) -> None:
        if bar is not None:
            bar.update(done - bar.n)

    report = idx.start_reindex(args.to, progress).wait()
    if bar is not None:
        bar.close()
    if args.json:
        emit(report.to_dict())
    else:
        cost = f", {report.tokens:,} tokens, ${report.usd:.4f}" if report.tokens else ""
        print(f"re-embedded {report.chunks} chunks in {report.seconds:.1f}s{cost}")
        print(f"  {report.from_embedder or '(empty)'} → {report.to_embedder}")
        print("the old collection is kept: `rag reindex --rollback` restores it")
    if report.embed_model and report.embed_model != settings(args).embed_model:
        print(
            f"now set RAG_EMBED_MODEL={report.embed_model} (or embed_model in rag.toml) to search it", file=sys.stderr
        )
    return EXIT_OK


def _check_cost(idx: Any, target: Any, args: argparse.Namespace) -> int | None:
    from rag.cost import estimate_reindex

    if not args.dry_run and not _paid(target):
        return None
    return _cost.decide(
        estimate_reindex(idx.store, target), target.embed_confirm_above_usd, args, "nothing re-embedded"
    )


def _paid(target: Any) -> bool:
    from rag.cost import price_per_million

    return price_per_million(target) > 0


def _rollback(idx: Any, args: argparse.Namespace) -> int:
    replaced = idx.store.recorded_embedder()
    restored = idx.rollback()
    model = idx.store.recorded_embed_model()
    if args.json:
        emit({"collection": idx.store.name, "restored": restored, "replaced": replaced, "embed_model": model})
    else:
        print(
            f"restored {idx.store.name!r} built by {restored}; the replaced one ({replaced}) is kept: "
            "--rollback again undoes this"
        )
    if model and model != settings(args).embed_model:
        print(f"now set RAG_EMBED_MODEL={model} (or embed_model in rag.toml) to search it", file=sys.stderr)
    return EXIT_OK
