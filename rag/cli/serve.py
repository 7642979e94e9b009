"""`rag serve` — the HTTP API: retrieval-plugin routes and OpenAI-compatible chat (see README: HTTP API)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from rag.cli._common import EXIT_OK, settings


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "serve",
        parents=[common],
        help="the HTTP API: /upsert, /query, /delete and OpenAI-compatible /v1/chat/completions",
        description="Serve the index over HTTP. Every route but /health needs `Authorization: Bearer "
        "$RAG_API_TOKEN` when RAG_API_TOKEN is set; without a token only loopback addresses may be bound.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import rag
    from rag.api import make_server
    from rag.api.security import check_bind

    config = settings(args)
    check_bind(args.host, config.api_token.get_secret_value() if config.api_token else None)  # before the slow part
    index = rag.open_index(config)
    server = make_server(index, host=args.host, port=args.port)
    auth = "bearer token required" if index.settings.api_token else "no token: loopback only"
    print(f"rag serve: http://{args.host}:{args.port} ({auth}); OpenAI base URL: /v1", file=sys.stderr)
    server.run()
    return EXIT_OK
