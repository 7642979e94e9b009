"""What every command shares: exit codes, settings and index from the common flags, JSON output."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_REPORTED = 0, 1, 2, 3


def settings(args: argparse.Namespace, **extra: Any) -> Any:
    from rag.settings import load_settings

    return load_settings(**{"data_dir": args.data_dir, "collection": args.collection, **extra})


def index(args: argparse.Namespace, **extra: Any) -> Any:
    from rag.index import Index

    return Index(settings(args, **extra))


def emit(obj: dict[str, Any]) -> None:
    """The one JSON object a `--json` command prints on stdout."""
    print(json.dumps(obj, ensure_ascii=False))


def show_progress(args: argparse.Namespace) -> bool:
    """Progress bars go to stderr, only for a person watching: hidden with --quiet or when not a TTY."""
    return not getattr(args, "quiet", False) and sys.stderr.isatty()


def print_sources(answer: Any, blank_line: bool = True) -> None:
    """After a streamed answer: its cited sources (flagging unsupported claims), or the closest passages when the
    documents held no answer, then any warnings on stderr. Shared by `rag ask` and `rag chat`."""
    from rag.prompts import describe

    lead = "\n" if blank_line else ""
    if answer.citations:
        print(f"{lead}sources:")
        for c in answer.citations:
            mark = "" if c.supported else "  (claim not supported by this passage)"
            print(f"  [{c.n}] {describe(answer.results[c.n - 1])}{mark}")
    elif not answer.found and answer.results:
        print(f"{lead}closest passages:")
        for r in answer.results[:3]:
            print(f"  - {describe(r)}")
    for warning in answer.warnings:
        print(f"warning: {warning}", file=sys.stderr)
