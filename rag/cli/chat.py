"""`rag chat` — a conversation in the terminal: answers stream as they are generated, follow-ups understood."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from rag.cli._common import EXIT_OK, index, print_sources

HELP = "commands: /reset forgets the conversation, /quit (or Ctrl-D) leaves"


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "chat",
        parents=[common],
        help="a conversation with the documents (follow-up questions, streamed cited answers)",
        description="Ask one question per line; follow-ups like 'and when did he leave?' use the conversation. " + HELP,
    )
    p.add_argument("--top-k", type=int, help="chunks given to each answer (default 5)")
    p.add_argument("--no-llm", action="store_true", help="extractive answers even when an LLM is configured")
    p.add_argument("--timings", action="store_true", help="print time to first token and total after each answer")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:

    idx = index(args)
    history: list[dict[str, str]] = []
    interactive = sys.stdin.isatty()
    if interactive:
        print(HELP, file=sys.stderr)
    while True:
        if interactive:
            print("> ", end="", flush=True, file=sys.stderr)
        line = sys.stdin.readline()
        if not line:
            break
        question = line.strip()
        if not question:
            continue
        if question in ("/quit", "/exit"):
            break
        if question == "/reset":
            history.clear()
            print("(conversation forgotten)", file=sys.stderr)
            continue
        stream = idx.ask_stream(question, top_k=args.top_k, use_llm=False if args.no_llm else None, history=history)
        if stream.standalone_question:
            print(f"(searching for: {stream.standalone_question})", file=sys.stderr)
        for delta in stream:
            print(delta, end="", flush=True)
        print()
        answer = stream.answer
        print_sources(answer, blank_line=False)
        if args.timings:
            t = answer.timings
            print(
                f"(first token {t.get('first_token_s', 0):.2f} s, total {t.get('total_s', 0):.2f} s)", file=sys.stderr
            )
        print(flush=True)
        history += [{"role": "user", "content": question}, {"role": "assistant", "content": answer.answer}]
    return EXIT_OK
