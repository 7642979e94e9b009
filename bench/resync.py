"""How much a manifest saves: a first ingest of a generated folder, then re-runs over it, unchanged and changed.

    .venv/bin/python bench/resync.py                     # 1,000 files, prints a table and one JSON line
    .venv/bin/python bench/resync.py --files 300 --compare-overlap --json-out bench/results/resync.json

Phases (each timed inside `Index.ingest`, i.e. without process start and model load, which are the same for every
run; `wall` adds opening the index):
  first      every file parsed, chunked, embedded, written
  unchanged  nothing changed: files are only stat-ed
  touched    every file's mtime moved, bytes the same: files are hashed, none parsed
  edit 1%    1% of the files rewritten: those re-embedded, the rest stat-ed
With --compare-overlap the first ingest is also run with parsing not overlapped with embedding (same data, a fresh
data dir), to show what the producer thread buys on this machine.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def make_corpus(folder: Path, files: int, seed: int = 7) -> None:
    """`files` text and Markdown files of 80–600 words of pseudo-English, in 10 sub-folders; deterministic."""
    rng = random.Random(seed)
    syllables = ["ka", "lo", "mi", "ter", "an", "sul", "ve", "dor", "in", "ra", "pe", "que", "sto", "ni", "bal"]
    vocab = ["".join(rng.choice(syllables) for _ in range(rng.randint(1, 3))) for _ in range(3000)]
    for i in range(files):
        sub = folder / f"part{i % 10}"
        sub.mkdir(parents=True, exist_ok=True)
        sentences = []
        for _ in range(rng.randint(8, 50)):
            words = rng.choices(vocab, k=rng.randint(6, 16))
            sentences.append(" ".join(words).capitalize() + ".")
        body = " ".join(sentences)
        if i % 3 == 0:
            (sub / f"note{i:04d}.md").write_text(f"# Note {i}\n\n## Part one\n\n{body}\n", encoding="utf-8")
        else:
            (sub / f"note{i:04d}.txt").write_text(f"Note {i}. {body}\n", encoding="utf-8")


def timed_ingest(data_dir: Path, folder: Path, embedder: Any, overlap: bool = True) -> tuple[Any, float]:
    from rag import indexing
    from rag.index import Index
    from rag.lock import write_lock
    from rag.settings import load_settings

    began = time.perf_counter()
    index = Index(load_settings(data_dir=data_dir), embedder=embedder)
    with write_lock(data_dir):
        report = indexing.ingest(
            [folder],
            index.store,
            index.embedder,
            index.settings.chunk_size,
            index.settings.chunk_overlap,
            manifest=index._manifest(),
            overlap=overlap,
        )
    return report, time.perf_counter() - began


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--compare-overlap", action="store_true", help="also time a first ingest without overlap")
    parser.add_argument("--json-out", type=Path, help="also write the JSON result here")
    parser.add_argument("--threads", type=int, default=0, help="ONNX threads (0 = all cores)")
    args = parser.parse_args()

    from rag.embeddings import LocalOnnxEmbedder
    from rag.offline import ensure_offline_env

    ensure_offline_env()
    embedder = LocalOnnxEmbedder(batch_size=32, threads=args.threads)
    embedder.embed(["warm up"])  # load the model outside the timings
    work = Path(tempfile.mkdtemp(prefix="rag-resync-"))
    rows: list[dict[str, Any]] = []
    try:
        folder = work / "docs"
        make_corpus(folder, args.files)
        data = work / "data"

        def phase(name: str, overlap: bool = True, data_dir: Path = data) -> dict[str, Any]:
            report, wall = timed_ingest(data_dir, folder, embedder, overlap)
            row = {
                "phase": name,
                "seconds": report.seconds,
                "wall": round(wall, 3),
                "added": report.added,
                "updated": report.updated,
                "unchanged": report.unchanged,
                "chunks": report.chunks_added,
                "failed": len(report.failed),
            }
            rows.append(row)
            return row

        first = phase("first")
        unchanged = phase("unchanged")
        for path in sorted(folder.rglob("*.*")):
            os.utime(path, ns=(time.time_ns(), time.time_ns()))
        phase("touched")
        edited = sorted(folder.rglob("*.txt"))[:: max(1, 100)][: max(1, args.files // 100)]
        for path in edited:
            path.write_text(path.read_text(encoding="utf-8") + " An added closing sentence.\n", encoding="utf-8")
        phase("edit 1%")
        if args.compare_overlap:
            phase("first, no overlap", overlap=False, data_dir=work / "data-serial")
            phase("first, overlap (again)", overlap=True, data_dir=work / "data-overlap")
    finally:
        shutil.rmtree(work, ignore_errors=True)

    ratio = first["seconds"] / max(unchanged["seconds"], 1e-6)
    print(f"{'phase':<24}{'seconds':>9}{'wall':>8}{'added':>7}{'updated':>8}{'unchanged':>10}{'chunks':>8}")
    for r in rows:
        print(
            f"{r['phase']:<24}{r['seconds']:>9.3f}{r['wall']:>8.2f}{r['added']:>7}{r['updated']:>8}"
            f"{r['unchanged']:>10}{r['chunks']:>8}"
        )
    print(f"unchanged re-run is {ratio:.0f}x faster than the first ingest ({args.files} files, {os.cpu_count()} cores)")
    result = {"files": args.files, "cores": os.cpu_count(), "speedup_unchanged": round(ratio, 1), "phases": rows}
    print(json.dumps(result))
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
