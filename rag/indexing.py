"""Ingest as a sync: new sources are added, changed ones replace their chunks, unchanged ones are skipped, and
files that disappeared from a folder given again are removed.

Interrupt-safe without a journal: every chunk records its document's content hash and chunk count, so a document
counts as indexed only when all its chunks are present with the current hash; a half-written one is redone.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import connectors
from rag.chunking import chunk_document
from rag.documents import document_id_for
from rag.errors import SourceError, UnsupportedFormat
from rag.types import IngestEvent, IngestReport

if TYPE_CHECKING:
    from rag.embeddings import Embedder
    from rag.store import ChromaStore

Progress = Callable[[IngestEvent], None]


def embed_text(text: str, metadata: dict[str, Any]) -> str:
    """What the embedder sees for a chunk: its title and heading give a short chunk the context it lacks."""
    head = " > ".join(str(p) for p in (metadata.get("title"), metadata.get("heading")) if p)
    return f"{head}\n{text}" if head else text


def ingest(
    sources: Iterable[str | Path],
    store: ChromaStore,
    embedder: Embedder,
    chunk_size: int,
    chunk_overlap: int,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    progress: Progress | None = None,
    options: connectors.LoadOptions | None = None,
) -> IngestReport:
    started = time.perf_counter()
    report = IngestReport()
    sources = [str(s) for s in sources]
    found: list[Path | str] = []  # files, and http(s) URLs as given
    for item in connectors.discover(sources, include, exclude):
        if isinstance(item, UnsupportedFormat):
            report.skipped.append({"source": item.source, "reason": item.reason})
        elif isinstance(item, SourceError):
            report.failed.append({"source": item.source, "error": item.reason})
        else:
            found.append(item)
    changed = False
    total = len(found)
    for done, path in enumerate(found, start=1):
        status, chunks, detail = _sync_one(path, store, embedder, chunk_size, chunk_overlap, options)
        if status == "failed":
            report.failed.append({"source": str(path), "error": detail})
        else:
            setattr(report, status, getattr(report, status) + 1)
            report.chunks_added += chunks
            changed = changed or status != "unchanged"
        if progress:
            progress(IngestEvent(str(path), status, done, total, chunks, detail))
    deleted = _delete_vanished(sources, found, store, include, exclude)
    report.deleted = len(deleted)
    if changed or deleted:
        store.bump_generation()
    report.seconds = round(time.perf_counter() - started, 3)
    return report


def _sync_one(
    path: Path | str,
    store: ChromaStore,
    embedder: Embedder,
    size: int,
    overlap: int,
    options: connectors.LoadOptions | None = None,
) -> tuple[str, int, str]:
    """Index one file or URL; returns (status, chunks written, error). Never raises for a bad source."""
    try:
        doc = connectors.load(path, options)
    except SourceError as exc:
        return "failed", 0, exc.reason
    except Exception as exc:  # a parser bug must cost one file, not the batch
        return "failed", 0, f"unexpected {type(exc).__name__}: {exc}"
    state = store.document_state(doc.document_id)
    if state is not None and state.sha256 == doc.sha256 and state.complete:
        return "unchanged", 0, ""
    chunks = chunk_document(doc, size, overlap)
    if not chunks:
        return "failed", 0, "empty: no text to index"
    vectors = embedder.embed([embed_text(c.text, c.metadata) for c in chunks])
    if state is not None:
        store.delete_document(doc.document_id)
    store.add(chunks, vectors)
    return ("updated" if state is not None else "added"), len(chunks), ""


def _delete_vanished(
    sources: list[str], found: list[Path | str], store: ChromaStore, include: Sequence[str], exclude: Sequence[str]
) -> list[str]:
    """Remove documents indexed from under a folder given now whose files are gone.

    Only for a plain folder walk: with include/exclude globs a file left out is not known to be gone.
    """
    folders = [Path(s).resolve() for s in sources if not connectors.is_url(s) and Path(s).is_dir()]
    if not folders or include or exclude:
        return []
    seen = {document_id_for(str(p.resolve())) for p in found if isinstance(p, Path)}
    gone = []
    for document_id, source in store.document_sources().items():
        if document_id in seen:
            continue
        src = Path(source)
        if any(src.is_relative_to(folder) for folder in folders) and not src.exists():
            store.delete_document(document_id)
            gone.append(source)
    return gone
