"""`rag search QUERY` — the best chunks, best first."""

from __future__ import annotations

import argparse
from typing import Any

from rag.cli._common import EXIT_OK, emit, index
from rag.errors import ConfigError


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("search", parents=[common], help="show the chunks that best match a query")
    p.add_argument("query")
    p.add_argument("--top-k", type=int, help="how many results (default 5)")
    p.add_argument("--mode", choices=["hybrid", "dense", "keyword"], help="retrieval mode (default hybrid)")
    p.add_argument(
        "--filter",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="metadata filter: source, document_id, author, mime, any metadata key (repeat a key for 'any of'), "
        "start_date / end_date (ISO date or epoch seconds)",
    )
    p.add_argument("--mmr", action="store_true", default=None, help="diversify the results (MMR)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def parse_filters(pairs: list[str]) -> dict[str, Any]:
    filters: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"--filter wants KEY=VALUE, got {pair!r}")
        parsed: Any = int(value) if value.isdigit() else value
        if key in filters:  # a repeated key means "any of these values"
            previous = filters[key] if isinstance(filters[key], list) else [filters[key]]
            parsed = [*previous, parsed]
        filters[key] = parsed
    return filters


def run(args: argparse.Namespace) -> int:
    filters = parse_filters(args.filter)
    results = index(args).search(args.query, top_k=args.top_k, mode=args.mode, filters=filters, mmr=args.mmr)
    if args.json:
        emit({"query": args.query, "results": [r.to_dict() for r in results]})
        return EXIT_OK
    if not results:
        print("no results (is anything indexed? `rag status`)")
    from rag.prompts import describe

    for i, r in enumerate(results, start=1):
        snippet = " ".join(r.text.split())[:200]
        print(f"{i}. {describe(r)}  score {r.score:.3f}\n   {snippet}")
    return EXIT_OK
