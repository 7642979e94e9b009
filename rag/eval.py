"""`rag eval`: measure retrieval on a BEIR-format folder (or SQuAD passages), the numbers the README reports.

The corpus goes through the normal chunk → embed → store path into its own collection, keyed by the corpus bytes
and every setting that changes the index (embedder, chunk size, overlap), so a second run — or a tuning run —
reuses it instead of re-embedding. Metrics come from trec_eval (pytrec-eval-terrier), BEIR conventions: queries
without judgements are skipped, a document's score is its best chunk's.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rag.chunking import chunk_document
from rag.documents import Document, Section
from rag.errors import ConfigError
from rag.indexing import embed_text

if TYPE_CHECKING:
    from rag.embeddings import Embedder
    from rag.index import Index
    from rag.settings import Settings

# Bump when the way a corpus becomes chunks changes, so cached eval indexes are rebuilt.
INGEST_VERSION = 1
RUN_DEPTH = 100  # documents kept per query: recall@100 needs 100
Progress = Callable[[int, int], None]


@dataclass(slots=True)
class Dataset:
    """A corpus (id → (title, text)), queries (id → text) and judgements (query id → {doc id: grade})."""

    name: str
    corpus: dict[str, tuple[str, str]]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]
    fingerprint: str


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    try:
        with path.open(encoding="utf-8") as fh:
            return [json.loads(line) for line in fh if line.strip()]
    except (OSError, ValueError) as exc:
        raise ConfigError(f"Cannot read {path}: {exc}") from exc


def load_beir(folder: str | Path, split: str = "test") -> Dataset:
    """Read `corpus.jsonl`, `queries.jsonl` and `qrels/<split>.tsv` of a BEIR folder."""
    root = Path(folder)
    corpus_file, queries_file, qrels_file = (
        root / "corpus.jsonl",
        root / "queries.jsonl",
        root / "qrels" / f"{split}.tsv",
    )
    if not corpus_file.is_file() or not queries_file.is_file():
        raise ConfigError(f"{root} is not a BEIR folder: it needs corpus.jsonl, queries.jsonl and qrels/{split}.tsv.")
    if not qrels_file.is_file():
        have = sorted(p.stem for p in (root / "qrels").glob("*.tsv")) if (root / "qrels").is_dir() else []
        raise ConfigError(f"No qrels/{split}.tsv in {root}; available splits: {', '.join(have) or 'none'} (--split).")
    corpus = {str(d["_id"]): (str(d.get("title") or ""), str(d.get("text") or "")) for d in _read_jsonl(corpus_file)}
    queries = {str(q["_id"]): str(q["text"]) for q in _read_jsonl(queries_file)}
    qrels: dict[str, dict[str, int]] = {}
    for n, line in enumerate(qrels_file.read_text(encoding="utf-8").splitlines()):
        parts = line.split("\t")
        if len(parts) < 3 or (n == 0 and not parts[2].strip().lstrip("-").isdigit()):
            continue  # header or blank line
        qid, did, grade = parts[0].strip(), parts[1].strip(), int(parts[2])
        if qid in queries and did in corpus:
            qrels.setdefault(qid, {})[did] = grade
    digest = hashlib.sha256(corpus_file.read_bytes()).hexdigest()
    return Dataset(root.name or "beir", corpus, {q: queries[q] for q in qrels}, qrels, digest)


def load_squad(folder: str | Path) -> Dataset:
    """SQuAD passages as a corpus; each answerable question judges its own passage relevant."""
    root = Path(folder)
    passages_file, questions_file = root / "passages.jsonl", root / "questions.jsonl"
    if not passages_file.is_file() or not questions_file.is_file():
        raise ConfigError(f"{root} needs passages.jsonl and questions.jsonl (SQuAD layout).")
    corpus = {str(p["_id"]): (str(p.get("title") or ""), str(p["text"])) for p in _read_jsonl(passages_file)}
    queries: dict[str, str] = {}
    qrels: dict[str, dict[str, int]] = {}
    for q in _read_jsonl(questions_file):
        if q.get("is_impossible") or str(q.get("passage_id")) not in corpus:
            continue
        queries[str(q["id"])] = str(q["question"])
        qrels[str(q["id"])] = {str(q["passage_id"]): 1}
    digest = hashlib.sha256(passages_file.read_bytes()).hexdigest()
    return Dataset(root.name or "squad", corpus, queries, qrels, digest)


def eval_index(settings: Settings, dataset: Dataset, embedder: Embedder | None = None, fresh: bool = False) -> Index:
    """The collection holding `dataset`'s corpus under these settings, built (or finished) if needed."""
    from rag.embeddings import make_embedder
    from rag.index import Index

    embedder = embedder or make_embedder(settings)
    key_src = json.dumps(
        [dataset.fingerprint, embedder.identity.key(), settings.chunk_size, settings.chunk_overlap, INGEST_VERSION]
    )
    key = hashlib.sha256(key_src.encode()).hexdigest()[:12]
    name = re.sub(r"[^A-Za-z0-9_-]", "-", dataset.name)[:40].strip("-_") or "corpus"
    eval_settings = settings.model_copy(update={"data_dir": settings.data_dir / "eval", "collection": f"{name}-{key}"})
    index = Index(eval_settings, embedder=embedder)
    done = eval_settings.data_dir / f"{eval_settings.collection}.done"
    if fresh:
        done.unlink(missing_ok=True)
    if not done.is_file() or fresh:
        ingest_corpus(index, dataset, skip_present=not fresh)
        done.write_text(json.dumps({"documents": len(dataset.corpus)}))
    return index


def corpus_documents(dataset: Dataset) -> list[Document]:
    """The corpus as `Document`s: one section, the title kept as the document title (embedded with each chunk)."""
    return [
        Document(
            source=f"{dataset.name}:{doc_id}",
            sections=[Section(text)],
            title=title,
            mime="text/plain",
            document_id=doc_id,
        )
        for doc_id, (title, text) in dataset.corpus.items()
        if text.strip() or title.strip()
    ]


def ingest_corpus(index: Index, dataset: Dataset, skip_present: bool = True, batch: int = 256) -> int:
    """Chunk, embed and store every document (the ingestion path minus file reading); returns chunks written.

    Resumable: documents already present are skipped, so an interrupted build finishes on the next run.
    """
    present = set(index.store.document_sources()) if skip_present else set()
    docs = [d for d in corpus_documents(dataset) if d.document_id not in present]
    size, overlap = index.settings.chunk_size, index.settings.chunk_overlap
    written, started = 0, time.perf_counter()
    for start in range(0, len(docs), batch):
        part = docs[start : start + batch]
        chunks = [c for d in part for c in chunk_document(d, size, overlap)]
        if not chunks:
            continue
        vectors = index.embedder.embed([embed_text(c.text, c.metadata) for c in chunks])
        index.store.add(chunks, vectors)
        written += len(chunks)
        rate = written / max(time.perf_counter() - started, 1e-9)
        print(
            f"\reval index: {start + len(part)}/{len(docs)} documents, {written} chunks ({rate:.0f} chunks/s)",
            end="",
            file=sys.stderr,
        )
    if docs:
        print(file=sys.stderr)
    index.store.bump_generation()
    return written


def run_queries(
    index: Index,
    dataset: Dataset,
    mode: str,
    depth: int = RUN_DEPTH,
    mmr: bool | None = None,
    progress: Progress | None = None,
) -> dict[str, dict[str, float]]:
    """query id → {doc id: score} for the top `depth` documents, through `Index.search` (the product path)."""
    run: dict[str, dict[str, float]] = {}
    total = len(dataset.queries)
    for n, (qid, text) in enumerate(dataset.queries.items(), start=1):
        # Chunks, not documents: ask for more so that `depth` distinct documents remain after grouping.
        hits = index.search(text, top_k=depth + depth // 2, mode=mode, mmr=mmr)
        run[qid] = to_doc_run([str(h.metadata.get("document_id", h.id)) for h in hits], depth)
        if progress:
            progress(n, total)
    return run


def to_doc_run(doc_ids: list[str], depth: int = RUN_DEPTH) -> dict[str, float]:
    """A ranked list of (chunk) document ids → {doc: score} by first occurrence (best chunk), strictly decreasing
    scores so trec_eval cannot reorder ties by id."""
    out: dict[str, float] = {}
    for did in doc_ids:
        if did not in out:
            out[did] = float(depth - len(out))
            if len(out) == depth:
                break
    return out


def metrics(qrels: dict[str, dict[str, int]], run: dict[str, dict[str, float]]) -> dict[str, float]:
    """nDCG@10, recall@10/100 and MRR@10, averaged over the judged queries (a query with no results scores 0)."""
    import pytrec_eval

    qrels = {q: r for q, r in qrels.items() if r}
    if not qrels:
        raise ConfigError("No judged queries to evaluate: check the qrels file and the split.")
    run = {q: dict(run.get(q) or {}) for q in qrels}
    for ranked in run.values():
        if not ranked:
            ranked["__none__"] = 0.0  # trec_eval drops empty queries; keep them, scoring 0
    full = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10", "recall.10,100"}).evaluate(run)
    top10 = {q: dict(sorted(r.items(), key=lambda kv: -kv[1])[:10]) for q, r in run.items()}
    mrr = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(top10)
    n = len(qrels)
    return {
        "ndcg@10": round(sum(full[q]["ndcg_cut_10"] for q in qrels) / n, 4),
        "recall@10": round(sum(full[q]["recall_10"] for q in qrels) / n, 4),
        "recall@100": round(sum(full[q]["recall_100"] for q in qrels) / n, 4),
        "mrr@10": round(sum(mrr[q]["recip_rank"] for q in qrels) / n, 4),
    }


def evaluate(
    settings: Settings,
    dataset: Dataset,
    mode: str = "hybrid",
    embedder: Embedder | None = None,
    fresh: bool = False,
    mmr: bool | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Build or reuse the eval index, run the queries, and return the `rag eval --json` object."""
    started = time.perf_counter()
    index = eval_index(settings, dataset, embedder, fresh)
    built = time.perf_counter()
    run = run_queries(index, dataset, mode, mmr=mmr, progress=progress)
    result: dict[str, Any] = metrics(dataset.qrels, run)
    result.update(
        {
            "queries": len(dataset.qrels),
            "mode": mode,
            "seconds": round(time.perf_counter() - started, 1),
            "index_seconds": round(built - started, 1),
            "documents": len(dataset.corpus),
            "chunks": index.store.count(),
            "collection": index.settings.collection,
        }
    )
    return result
