"""`rag ui` — the Gradio chat in the browser, on 127.0.0.1 unless told otherwise."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from rag.cli._common import EXIT_OK, settings


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("ui", parents=[common], help="the chat UI in the browser (Gradio)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=7860)
    p.add_argument("--demo", action="store_true", help="index the bundled demo corpus into collection 'demo' first")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import rag

    extra = {"collection": args.collection or "demo"} if args.demo else {}
    index = rag.open_index(settings(args, **extra))
    if args.demo:
        where = f"collection '{index.settings.collection}'"
        print(f"indexing the demo corpus ({rag.demo_corpus()}) into {where}…", file=sys.stderr)
        report = index.ingest([rag.demo_corpus()])
        print(f"demo corpus: {report.added + report.updated} indexed, {report.unchanged} unchanged", file=sys.stderr)
    from ui.app import launch

    launch(index, host=args.host, port=args.port)
    return EXIT_OK
