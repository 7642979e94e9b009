"""`rag status` (what the index holds) and `rag config` (the effective settings, secrets masked)."""

from __future__ import annotations

import argparse
from typing import Any

from rag.cli._common import EXIT_OK, emit, index, settings


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("status", parents=[common], help="what the index holds")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run_status)
    p = sub.add_parser("config", parents=[common], help="print the effective settings (secrets masked)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run_config)


def run_status(args: argparse.Namespace) -> int:
    status = index(args).status()
    if args.json:
        emit(status)
        return EXIT_OK
    emb = status["embedder"]
    print(f"collection {status['collection']}: {status['documents']} documents, {status['chunks']} chunks")
    print(f"embedder   {emb['name']} ({emb['dimension']} dimensions)")
    print(f"store      {status['store']} at {status['data_dir']}")
    print(f"llm        {status['llm'] or 'none configured: answers are extractive'}")
    return EXIT_OK


def run_config(args: argparse.Namespace) -> int:
    values = settings(args).masked()
    if args.json:
        emit(values)
        return EXIT_OK
    width = max(len(k) for k in values)
    for key, value in values.items():
        print(f"{key:<{width}}  {value if value is not None else ''}")
    return EXIT_OK
