"""`rag` — the command line (contract: shared/design/INTERFACES.md; full help in docs/cli.md).

Exit status: 0 done; 3 done but some sources were reported (failed or skipped); 2 usage error; 1 nothing could be
done, with a message saying what to do. `--json` prints one JSON object on stdout; progress and logs go to stderr.

One module per command (or a few related ones): each has `register(subparsers, common)` that adds its parser and
sets `func`. Heavy libraries load only inside the commands, so `rag --help` answers at once.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from rag.cli._common import EXIT_FAILED, EXIT_USAGE
from rag.errors import ConfigError, RagError

# The order here is the order of `rag --help`.
COMMAND_MODULES = [
    "ingest",
    "search",
    "ask",
    "chat",
    "status",
    "reindex",
    "clusters",
    "eval",
    "similar",  # registers `similar` and `duplicates`
    "ui",
    "serve",
    "llm",
]

EXAMPLES = """examples:
  rag ingest ~/notes ./manual.pdf          index (or re-sync) a folder and a file
  rag search "refund policy" --top-k 3     show the best chunks
  rag ask "When was Iwan Roberts born?"    a cited answer (extractive when no LLM is configured)
  rag chat                                 a conversation: follow-up questions, streamed answers
  rag ui --demo                            chat in the browser over the bundled demo corpus
"""


def build_parser() -> argparse.ArgumentParser:
    from rag import __version__

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data-dir", help="where the index lives (RAG_DATA_DIR, default ./rag-data)")
    common.add_argument("--collection", help="collection name (RAG_COLLECTION, default 'default')")
    common.add_argument("--debug", action="store_true", help="show tracebacks")

    parser = argparse.ArgumentParser(
        prog="rag",
        description="Keep a Chroma index of your documents current and ask them questions, with citations.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"rag-plugin {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(f"rag.cli.{name}").register(sub, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted: run the same command again to finish (nothing is lost or duplicated)", file=sys.stderr)
        return 130
    except ConfigError as exc:
        _error(args, exc)
        return EXIT_USAGE
    except RagError as exc:
        _error(args, exc)
        return EXIT_FAILED


def _error(args: argparse.Namespace, exc: RagError) -> None:
    if getattr(args, "debug", False):
        import traceback

        traceback.print_exc()
    print(f"error: {exc}", file=sys.stderr)
