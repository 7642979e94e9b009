"""`rag` — the command line (contract: shared/design/INTERFACES.md, kept in docs/cli.md).

Exit status: 0 done; 3 done but some sources were reported (failed or skipped); 2 usage error; 1 nothing could be
done, with a message saying what to do. `--json` prints one JSON object on stdout; progress and logs go to stderr.
Heavy libraries load only inside the commands, so `rag --help` answers at once.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from rag.errors import ConfigError, RagError

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_REPORTED = 0, 1, 2, 3

EXAMPLES = """examples:
  rag ingest ~/notes ./manual.pdf          index (or re-sync) a folder and a file
  rag search "refund policy" --top-k 3     show the best chunks
  rag ask "When was Iwan Roberts born?"    a cited answer (extractive when no LLM is configured)
  rag ui --demo                            chat in the browser over the bundled demo corpus
"""


def build_parser() -> argparse.ArgumentParser:
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
    parser.add_argument("--version", action="version", version=f"rag-plugin {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("ingest", parents=[common], help="index files, folders (recursive) and re-sync them")
    p.add_argument("sources", nargs="+", metavar="SOURCE", help="a file or a folder")
    p.add_argument("--include", action="append", default=[], metavar="GLOB", help="only files matching GLOB")
    p.add_argument("--exclude", action="append", default=[], metavar="GLOB", help="skip files matching GLOB")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bar")

    p = sub.add_parser("search", parents=[common], help="show the chunks that best match a query")
    p.add_argument("query")
    p.add_argument("--top-k", type=int, help="how many results (default 5)")
    p.add_argument("--mode", choices=["hybrid", "dense", "keyword"], help="retrieval mode (default hybrid)")
    p.add_argument("--filter", action="append", default=[], metavar="KEY=VALUE", help="metadata equality filter")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("ask", parents=[common], help="answer a question from the documents, with citations")
    p.add_argument("question")
    p.add_argument("--top-k", type=int, help="chunks given to the answer (default 5)")
    p.add_argument("--no-llm", action="store_true", help="extractive answer even when an LLM is configured")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("status", parents=[common], help="what the index holds")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("config", parents=[common], help="print the effective settings (secrets masked)")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("reindex", parents=[common], help="re-embed everything with the configured embedder")
    p.add_argument("--json", action="store_true")
    p.add_argument("--quiet", action="store_true")

    p = sub.add_parser("ui", parents=[common], help="the chat UI in the browser (Gradio)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=7860)
    p.add_argument("--demo", action="store_true", help="index the bundled demo corpus into collection 'demo' first")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(COMMANDS[args.command](args) or EXIT_OK)
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


def _settings(args: argparse.Namespace, **extra: Any) -> Any:
    from rag.settings import load_settings

    return load_settings(**{"data_dir": args.data_dir, "collection": args.collection, **extra})


def _index(args: argparse.Namespace, **extra: Any) -> Any:
    from rag.index import Index

    return Index(_settings(args, **extra))


def _emit(obj: dict[str, Any]) -> None:
    print(json.dumps(obj, ensure_ascii=False, indent=None))


def _version() -> str:
    from rag import __version__

    return __version__


# --- commands ----------------------------------------------------------------------------------------------
def cmd_ingest(args: argparse.Namespace) -> int:
    index = _index(args)
    bar = None
    if not args.quiet and sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(total=0, unit="file", file=sys.stderr, dynamic_ncols=True)

    def progress(event: Any) -> None:
        if bar is not None:
            bar.total = event.total
            bar.set_postfix_str(f"{event.status}: {event.source.rsplit('/', 1)[-1]}"[:60])
            bar.update(1)

    report = index.ingest(args.sources, include=args.include, exclude=args.exclude, progress=progress)
    if bar is not None:
        bar.close()
    if args.json:
        _emit(report.to_dict())
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


def _filters(pairs: list[str]) -> dict[str, Any]:
    filters: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"--filter wants KEY=VALUE, got {pair!r}")
        filters[key] = int(value) if value.isdigit() else value
    return filters


def cmd_search(args: argparse.Namespace) -> int:
    index = _index(args)
    results = index.search(args.query, top_k=args.top_k, mode=args.mode, filters=_filters(args.filter))
    if args.json:
        _emit({"query": args.query, "results": [r.to_dict() for r in results]})
        return EXIT_OK
    if not results:
        print("no results (is anything indexed? `rag status`)")
    from rag.prompts import describe

    for i, r in enumerate(results, start=1):
        snippet = " ".join(r.text.split())[:200]
        print(f"{i}. {describe(r)}  score {r.score:.3f}\n   {snippet}")
    return EXIT_OK


def cmd_ask(args: argparse.Namespace) -> int:
    index = _index(args)
    stream = index.ask_stream(args.question, top_k=args.top_k, use_llm=False if args.no_llm else None)
    if args.json:
        _emit(stream.answer.to_dict())
        return EXIT_OK
    for delta in stream:
        print(delta, end="", flush=True)
    print()
    answer = stream.answer
    from rag.prompts import describe

    if answer.citations:
        print("\nsources:")
        for c in answer.citations:
            r = next(r for r in answer.results if r.id == c.id)
            print(f"  [{c.n}] {describe(r)}")
    for warning in answer.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return EXIT_OK


def cmd_status(args: argparse.Namespace) -> int:
    status = _index(args).status()
    if args.json:
        _emit(status)
    else:
        emb = status["embedder"]
        print(f"collection {status['collection']}: {status['documents']} documents, {status['chunks']} chunks")
        print(f"embedder   {emb['name']} ({emb['dimension']} dimensions)")
        print(f"store      {status['store']} at {status['data_dir']}")
        print(f"llm        {status['llm'] or 'none configured: answers are extractive'}")
    return EXIT_OK


def cmd_config(args: argparse.Namespace) -> int:
    values = _settings(args).masked()
    if args.json:
        _emit(values)
    else:
        width = max(len(k) for k in values)
        for key, value in values.items():
            print(f"{key:<{width}}  {value if value is not None else ''}")
    return EXIT_OK


def cmd_reindex(args: argparse.Namespace) -> int:
    from rag.index import Index

    index = Index(_settings(args), check_embedder=False)
    before = index.store.recorded_embedder()
    bar = None
    if not args.quiet and sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(total=index.store.count(), unit="chunk", file=sys.stderr)

    def progress(done: int, total: int) -> None:
        if bar is not None:
            bar.update(done - bar.n)

    count = index.reindex(progress)
    if bar is not None:
        bar.close()
    after = index.embedder.identity.key()
    if args.json:
        _emit({"chunks": count, "from": before, "to": after})
    else:
        print(f"re-embedded {count} chunks: {before or '(empty)'} → {after}")
    return EXIT_OK


def cmd_ui(args: argparse.Namespace) -> int:
    import rag

    extra = {"collection": args.collection or "demo"} if args.demo else {}
    index = rag.open_index(_settings(args, **extra))
    if args.demo:
        print(
            f"indexing the demo corpus ({rag.demo_corpus()}) into collection '{index.settings.collection}'…",
            file=sys.stderr,
        )
        report = index.ingest([rag.demo_corpus()])
        print(f"demo corpus: {report.added + report.updated} indexed, {report.unchanged} unchanged", file=sys.stderr)
    from ui.app import launch

    launch(index, host=args.host, port=args.port)
    return EXIT_OK


COMMANDS = {
    "ingest": cmd_ingest,
    "search": cmd_search,
    "ask": cmd_ask,
    "status": cmd_status,
    "config": cmd_config,
    "reindex": cmd_reindex,
    "ui": cmd_ui,
}

if __name__ == "__main__":
    sys.exit(main())
