"""`rag ingest --dry-run` and the confirmation before a paid embedding API is used (see `rag.cost`)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from rag.cli._common import EXIT_FAILED, EXIT_OK, emit
from rag.errors import ConfigError


def add_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--dry-run", action="store_true", help="count chunks, tokens and the price of embedding them; change nothing"
    )
    p.add_argument("--yes", action="store_true", help="spend above embed_confirm_above_usd without asking")


def check(idx: Any, args: argparse.Namespace) -> int | None:
    """Before ingest: an exit code to stop with (dry run done, or the user declined), or None to go on."""
    from rag.cost import price_per_million

    paid = price_per_million(idx.settings) > 0
    if not (args.dry_run or paid):
        return None  # a local model: nothing to count, nothing to confirm
    est = idx.estimate_cost(args.sources, include=args.include, exclude=args.exclude)
    return decide(est, idx.settings.embed_confirm_above_usd, args, "nothing ingested")


def decide(est: Any, limit: float, args: argparse.Namespace, declined: str) -> int | None:
    """Print a dry run's estimate, or confirm spending above `limit`: an exit code to stop with, or None to go on."""
    if args.dry_run:
        if args.json:
            emit({"dry_run": True, **est.to_dict()})
        else:
            print(est.summary())
        return EXIT_OK
    if est.usd <= limit or args.yes:
        return None
    question = f"{est.summary()}. That is above embed_confirm_above_usd (${limit:g})."
    if not sys.stdin.isatty():
        raise ConfigError(f"{question} Run again with --yes to spend it, or raise embed_confirm_above_usd.")
    print(f"{question} Continue? [y/N] ", end="", file=sys.stderr, flush=True)
    if sys.stdin.readline().strip().lower() in ("y", "yes"):
        return None
    print(declined, file=sys.stderr)
    return EXIT_FAILED
