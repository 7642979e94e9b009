"""`rag ingest SOURCE...` — sync files, folders and URLs into the index, with a progress bar (files, chunks, rate).

Holds the data dir's write lock for the whole run, so a second ingest fails at once with the first one's PID.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from rag.cli import _cost
from rag.cli._common import EXIT_OK, EXIT_REPORTED, emit, index, settings, show_progress


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "ingest",
        parents=[common],
        help="index files, folders (recursive) and URLs, and re-sync them",
        description="A sync: unchanged files are skipped (same size and mtime, else same content hash), changed "
        "ones replace their chunks, files gone from a folder given again are removed. An interrupted ingest is "
        "finished by running the same command again. One ingest per data dir at a time: a second one exits with "
        "status 1, naming the first.",
    )
    p.add_argument("sources", nargs="+", metavar="SOURCE", help="a file, a folder or an http(s) URL")
    p.add_argument("--include", action="append", default=[], metavar="GLOB", help="only files matching GLOB")
    p.add_argument("--exclude", action="append", default=[], metavar="GLOB", help="skip files matching GLOB")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument(
        "--allow-private", action="store_true", help="let URLs reach private, loopback and link-local addresses"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar (files, chunks and rate, on stderr)")
    _cost.add_flags(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rag.lock import write_lock

    conf = settings(args)
    # The lock first, before the slow imports: a second ingest on the same data dir is told at once.
    with write_lock(conf.data_dir, "ingest"):
        idx = index(args, web_allow_private=True if args.allow_private else None)
        stop = _cost.check(idx, args)  # --dry-run, or a paid API above the confirmation limit
        if stop is not None:
            return stop
        bar = None
        if show_progress(args):
            from tqdm import tqdm

            bar = tqdm(total=0, unit="file", file=sys.stderr, dynamic_ncols=True)

        def progress(event: Any) -> None:
            if bar is not None:
                bar.total = event.total
                bar.set_postfix_str(f"{event.chunks_done} chunks, {event.chunks_per_second:.0f} chunks/s", False)
                bar.update(1)

        try:
            report = idx.ingest(args.sources, include=args.include, exclude=args.exclude, progress=progress)
        finally:
            if bar is not None:
                bar.close()
    if args.json:
        emit(report.to_dict())
    else:
        print(
            f"{report.added} added, {report.updated} updated, {report.unchanged} unchanged, {report.deleted} deleted"
            f" — {report.chunks_added} chunks in {report.seconds:.1f}s"
        )
    for item in report.failed:
        print(f"failed: {item['source']}: {item['error']}", file=sys.stderr)
    for item in report.skipped:
        print(f"skipped: {item['source']}: {item['reason']}", file=sys.stderr)
    return EXIT_OK if report.ok else EXIT_REPORTED
