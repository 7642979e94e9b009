"""`rag ask QUESTION` — a cited answer, streamed to the terminal."""

from __future__ import annotations

import argparse
from typing import Any

from rag.cli._common import EXIT_OK, emit, index, print_sources


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("ask", parents=[common], help="answer a question from the documents, with citations")
    p.add_argument("question")
    p.add_argument("--top-k", type=int, help="chunks given to the answer (default 5)")
    p.add_argument("--no-llm", action="store_true", help="extractive answer even when an LLM is configured")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    stream = index(args).ask_stream(args.question, top_k=args.top_k, use_llm=False if args.no_llm else None)
    if args.json:
        emit(stream.answer.to_dict())
        return EXIT_OK
    for delta in stream:
        print(delta, end="", flush=True)
    print()
    print_sources(stream.answer)
    return EXIT_OK
