"""rag-plugin against the baseline a user would pick instead, measured side by side in one run.

    python bench/run.py            # full: 2,000 abstracts ingested, all 809 train queries, 100k chunks queried
    python bench/run.py --quick    # under 10 minutes on 2 cores: 200 abstracts, 100 queries on 800, 20k chunks
    python bench/run.py --json     # the same, one JSON object on stdout (also written to --out)

The machine may be shared, so ratios measured in one run are the figures to trust; CPU-ms per chunk (process CPU
time, all threads) is given beside wall-clock rates because it moves less with other people's load.
Needs the `[bench]` extra (`pip install -e '.[bench]'`) for the llama-index baseline.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (
    REPO,
    OnnxRunner,
    fp32_reference,
    load_corpus,
    timed,
    write_corpus,
)

QUICK = {"ingest_docs": 200, "quality_docs": 800, "quality_queries": 100, "scale_chunks": 20_000, "queries": 100,
         "cold_runs": 3}  # fmt: skip
FULL = {"ingest_docs": 2000, "quality_docs": None, "quality_queries": None, "scale_chunks": 100_000, "queries": 300,
        "cold_runs": 3}  # fmt: skip
GOALS = {
    "ingest_vs_raw": ">= 0.9",
    "ingest_vs_llamaindex": ">= 1.5",
    "ndcg_delta": ">= -0.005",
    "resync_speedup": ">= 50",
    "query_p50_ms": "<= 30",
    "query_p99_ms": "<= 100",
    "peak_rss_mb": "<= 2048",
}


def measure_ingest(sizes: dict[str, Any], work: Path, threads: int, fp32: bytes, log) -> dict[str, Any]:
    """raw embedder, our ingest, its unchanged re-run, and the llama-index baseline on the same folder."""
    import connectors
    import rag
    from bench.baseline import run_llamaindex
    from rag.chunking import chunk_document
    from rag.indexing import embed_text

    out: dict[str, Any] = {}
    folder = write_corpus(load_corpus(sizes["ingest_docs"]), work / "corpus")
    files = sorted(folder.iterdir())
    out["docs"] = len(files)
    settings = rag.load_settings(data_dir=work / "ours", collection="bench", embed_threads=threads)
    index = rag.open_index(settings)
    size, overlap = settings.chunk_size, settings.chunk_overlap
    # The same texts our ingest embeds, prepared outside the timer: the embedder alone is the floor.
    texts = [embed_text(c.text, c.metadata) for f in files for c in chunk_document(connectors.load(f), size, overlap)]
    index.embedder.embed(["warm up"])  # model load is not ingest speed, for either side
    log(f"raw embed: {len(texts)} chunks")
    with timed() as raw:
        index.embedder.embed(texts)
    log("our ingest")
    with timed() as ours:
        report = index.ingest([folder])
    log("unchanged re-run")
    with timed() as again:
        second = index.ingest([folder])
    log("llama-index baseline")
    runner = OnnxRunner(fp32, threads)
    runner.embed(["warm up"])
    base = run_llamaindex(folder, work / "baseline", runner, size, overlap)
    n = report.chunks_added
    out.update(
        chunks=n,
        raw_embed_chunks_per_s=len(texts) / raw.wall,
        raw_cpu_ms_per_chunk=1000 * raw.cpu / len(texts),
        ingest_chunks_per_s=n / ours.wall,
        ingest_cpu_ms_per_chunk=1000 * ours.cpu / max(n, 1),
        ingest_seconds=ours.wall,
        ingest_vs_raw=(n / ours.wall) / (len(texts) / raw.wall),
        llamaindex_chunks=base["chunks"],
        llamaindex_chunks_per_s=base["chunks"] / base["wall"],
        llamaindex_cpu_ms_per_chunk=1000 * base["cpu"] / max(base["chunks"], 1),
        llamaindex_seconds=base["wall"],
        # Same documents in, both indexes searchable out: time for the folder is the fair comparison, since the
        # two splitters cut a different number of chunks (both counts are printed).
        ingest_vs_llamaindex=base["wall"] / ours.wall,
        ingest_vs_llamaindex_cpu=base["cpu"] / ours.cpu,  # the same, in process CPU time: less moved by others' load
        resync_seconds=again.wall,
        resync_speedup=ours.wall / max(again.wall, 1e-9),
        resync_unchanged=second.unchanged,
    )
    return out


def measure_quality(sizes: dict[str, Any], threads: int, fp32: bytes, fp32_how: str, work: Path, log) -> dict:
    """nDCG@10 of our default graph minus the fp32 model's, on SciFact train (see bench/quality.py)."""
    import rag
    from bench.quality import evaluate, load_queries
    from rag.embeddings import make_embedder

    queries, qrels = load_queries(sizes["quality_queries"])
    relevant = sorted({d for ids in qrels.values() for d in ids})
    corpus = load_corpus(sizes["quality_docs"], must=relevant)
    log(f"quality: {len(corpus)} abstracts, {len(queries)} queries, fp32 graph")
    runner = OnnxRunner(fp32, threads)
    fp32_ndcg, _ = evaluate("fp32", runner.embed, corpus, queries, qrels)
    ours = make_embedder(rag.load_settings(embed_threads=threads))  # what main's settings pick by default
    variant = ours.identity.variant
    log(f"quality: our default graph ({variant})")
    ndcg, vectors = evaluate(variant, ours.embed, corpus, queries, qrels)
    return {
        "quality_docs": len(corpus),
        "quality_queries": len(queries),
        "fp32_reference": fp32_how,
        "embedder_variant": variant,
        "ndcg_fp32": fp32_ndcg,
        "ndcg_default": ndcg,
        "ndcg_delta": ndcg - fp32_ndcg,
        "_vectors": vectors,
        "_corpus": corpus,
    }


def measure_scale(sizes: dict[str, Any], quality: dict[str, Any], work: Path, log) -> dict[str, Any]:
    import numpy as np

    np.save(work / "base.npy", quality["_vectors"])
    (work / "base.json").write_text(json.dumps(quality["_corpus"]), encoding="utf-8")
    log(f"scale: {sizes['scale_chunks']} chunks, {sizes['queries']} queries (own process)")
    cmd = [
        sys.executable,
        str(Path(__file__).with_name("scale.py")),
        "--chunks", str(sizes["scale_chunks"]),
        "--vectors", str(work / "base.npy"),
        "--corpus", str(work / "base.json"),
        "--queries", str(sizes["queries"]),
        "--out", str(work / "scale.json"),
    ]  # fmt: skip
    subprocess.run(cmd, check=True)
    return {f"scale_{k}" if k in ("chunks", "queries") else k: v for k, v in json.loads(
        (work / "scale.json").read_text()).items()}  # fmt: skip


def measure_cold_start(work: Path, runs: int = 3) -> dict[str, float]:
    """Best wall time of `rag --help` and of `rag search` (fresh process each) on a small existing index."""
    exe = shutil.which("rag", path=str(Path(sys.executable).parent)) or "rag"
    env = {**os.environ, "RAG_DATA_DIR": str(work / "ours"), "RAG_COLLECTION": "bench"}
    out = {}
    for name, args in (("cli_help_s", ["--help"]), ("cli_search_s", ["search", "vitamin D deficiency", "--json"])):
        best = float("inf")
        for _ in range(runs):
            t0 = time.perf_counter()
            subprocess.run([exe, *args], env=env, check=True, capture_output=True)
            best = min(best, time.perf_counter() - t0)
        out[name] = best
    return out


def run(quick: bool = False, sizes: dict[str, Any] | None = None, threads: int = 2, allow_download: bool = True,
        log=lambda msg: None) -> dict[str, Any]:  # fmt: skip
    """Every measurement, in one process run (the scale part in a child process); returns the result dict."""
    sizes = {**(QUICK if quick else FULL), **(sizes or {})}
    started = time.perf_counter()
    fp32, fp32_how = fp32_reference(allow_download)
    result: dict[str, Any] = {"mode": "quick" if quick else "full", "sizes": sizes, "threads": threads,
                              "cpus": os.cpu_count()}  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="rag-bench-") as tmp:
        work = Path(tmp)
        result.update(measure_ingest(sizes, work, threads, fp32, log))
        quality = measure_quality(sizes, threads, fp32, fp32_how, work, log)
        result.update(measure_scale(sizes, quality, work, log))
        result.update({k: v for k, v in quality.items() if not k.startswith("_")})
        if sizes["cold_runs"]:
            result.update(measure_cold_start(work, sizes["cold_runs"]))
    result["seconds"] = time.perf_counter() - started
    result["goals"] = GOALS
    return result


ROWS = [
    ("docs", "abstracts ingested (SciFact, one .txt each)", "{:.0f}"),
    ("chunks", "our chunks (llama-index: see below)", "{:.0f}"),
    ("raw_embed_chunks_per_s", "embedder alone, chunks/s", "{:.1f}"),
    ("raw_cpu_ms_per_chunk", "embedder alone, CPU-ms/chunk", "{:.1f}"),
    ("ingest_chunks_per_s", "rag ingest, chunks/s", "{:.1f}"),
    ("ingest_cpu_ms_per_chunk", "rag ingest, CPU-ms/chunk", "{:.1f}"),
    ("ingest_vs_raw", "ingest / embedder alone", "{:.2f}"),
    ("llamaindex_chunks", "llama-index chunks", "{:.0f}"),
    ("llamaindex_chunks_per_s", "llama-index + Chroma, chunks/s", "{:.1f}"),
    ("llamaindex_cpu_ms_per_chunk", "llama-index, CPU-ms/chunk", "{:.1f}"),
    ("ingest_vs_llamaindex", "llama-index time / ours, same folder", "{:.2f}"),
    ("ingest_vs_llamaindex_cpu", "  the same in CPU time", "{:.2f}"),
    ("resync_speedup", "first ingest / unchanged re-run", "{:.0f}"),
    ("embedder_variant", "our default graph", "{}"),
    ("fp32_reference", "reference graph", "{}"),
    ("ndcg_fp32", "nDCG@10 fp32 (SciFact train, dense)", "{:.4f}"),
    ("ndcg_default", "nDCG@10 our default", "{:.4f}"),
    ("ndcg_delta", "nDCG@10 ours - fp32", "{:+.4f}"),
    ("scale_chunks", "chunks in the query collection", "{:.0f}"),
    ("synthetic_chunks", "  of which synthetic near-copies", "{:.0f}"),
    ("insert_chunks_per_s", "store add (HNSW), chunks/s", "{:.0f}"),
    ("first_search_s", "first search (model load), s", "{:.1f}"),
    ("update_write_s", "write 100 chunks into the big collection, s", "{:.2f}"),
    ("update_search_ms", "  then the next search, ms", "{:.0f}"),
    ("keyword_rebuild_s", "keyword index rebuilt whole (not needed), s", "{:.1f}"),
    ("query_p50_ms", "search p50, ms (embed+hybrid+fusion)", "{:.1f}"),
    ("query_p99_ms", "search p99, ms", "{:.1f}"),
    ("dense_p50_ms", "dense-only search p50, ms", "{:.1f}"),
    ("peak_rss_mb", "peak RSS of the query process, MiB", "{:.0f}"),
    ("cli_help_s", "`rag --help` cold, s", "{:.2f}"),
    ("cli_search_s", "`rag search` cold, s", "{:.2f}"),
    ("seconds", "whole run, s", "{:.0f}"),
]


def table(result: dict[str, Any]) -> str:
    lines = [f"rag-plugin bench ({result['mode']}, {result['threads']} ONNX threads, {result['cpus']} CPUs)", ""]
    lines.append(f"| {'metric':<44} | {'value':>14} | goal |")
    lines.append(f"|{'-' * 46}|{'-' * 16}|------|")
    for key, label, fmt in ROWS:
        if result.get(key) is None:
            continue
        lines.append(f"| {label:<44} | {fmt.format(result[key]):>14} | {GOALS.get(key, '')} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller sizes, under 10 minutes on 2 cores")
    parser.add_argument("--json", action="store_true", help="print the result as JSON instead of the table")
    parser.add_argument("--threads", type=int, default=2, help="ONNX Runtime threads for every embedder")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results.json", help="where to write JSON")
    args = parser.parse_args(argv)
    result = run(args.quick, threads=args.threads, log=lambda msg: print(f"[bench] {msg}", file=sys.stderr))
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2) if args.json else table(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
