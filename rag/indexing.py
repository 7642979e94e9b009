"""Ingest as a sync: new sources are added, changed ones replace their chunks, unchanged ones are skipped, and
files that disappeared from a folder given again are removed.

How a run goes (the manifest, `rag.manifest`, is what makes re-runs cheap and interrupts harmless):

1. discover the files; reconcile the manifest with the store (redo documents a killed run left *pending*;
   rebuild the manifest from the chunks' metadata if it is missing or disagrees with the store);
2. a producer thread decides per file: same size + mtime as recorded → unchanged without reading it; else same
   sha256 of the bytes → unchanged without parsing it; else load, parse and chunk it;
3. the calling thread embeds chunks of several documents per call, then writes each batch in the crash-safe order
   pending → delete old chunks → upsert new ones → done, while the producer already parses the next files and a
   writer thread does the store's part of one batch while the next is embedded;
4. documents whose files vanished from a folder given again are removed; the store's generation is bumped, which
   commits the keyword index (it took every write as it happened, `rag.keyword`).
"""

from __future__ import annotations

import hashlib
import queue
import threading
import time
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import connectors
from rag.chunking import chunk_document
from rag.documents import Chunk, Document, document_id_for
from rag.errors import SourceError, UnsupportedFormat
from rag.manifest import DONE, PENDING, Entry, Manifest
from rag.types import IngestEvent, IngestReport

if TYPE_CHECKING:
    import numpy as np

    from rag.embeddings import Embedder
    from rag.store import ChromaStore

Progress = Callable[[IngestEvent], None]
# Chunks embedded and written together: big enough that one embed call and one upsert serve several small files,
# small enough that an interrupt loses little work and the progress bar moves.
DEFAULT_BATCH_CHUNKS = 512
_FIRST_BATCH = 32
# Files parsed ahead of the embedder; bounds the memory the producer may fill.
_QUEUE_FILES = 64
# Manifest meta keys: the store generation the manifest matches, and "a run is writing" (set until it finishes).
_GENERATION, _DIRTY = "store_generation", "dirty"


def embed_text(text: str, metadata: dict[str, Any]) -> str:
    """What the embedder sees for a chunk: its title and heading give a short chunk the context it lacks."""
    head = " > ".join(str(p) for p in (metadata.get("title"), metadata.get("heading")) if p)
    return f"{head}\n{text}" if head else text


@dataclass(slots=True)
class _Unchanged:
    source: str
    touch: tuple[str, int, int] | None = None  # (document_id, size, mtime_ns): bytes same, stat new


@dataclass(slots=True)
class _Failed:
    source: str
    error: str
    document_id: str = ""


@dataclass(slots=True)
class _Work:
    source: str
    doc: Document
    chunks: list[Chunk]
    size: int | None
    mtime_ns: int | None
    previous: Entry | None

    def entry(self) -> Entry:
        prev = self.previous
        return Entry(
            self.doc.document_id,
            self.doc.source,
            self.doc.sha256,
            tuple(c.id for c in self.chunks),
            PENDING,
            self.size,
            self.mtime_ns,
            prev_sha256=(prev.sha256 if prev.done else prev.prev_sha256) if prev else None,
        )

    @property
    def status(self) -> str:
        prev = self.previous
        return "updated" if prev is not None and (prev.done or prev.prev_sha256) else "added"


_Result = _Unchanged | _Failed | _Work


def ingest(
    sources: Iterable[str | Path],
    store: ChromaStore,
    embedder: Embedder,
    chunk_size: int,
    chunk_overlap: int,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    progress: Progress | None = None,
    *,
    manifest: Manifest | None = None,
    batch_chunks: int = DEFAULT_BATCH_CHUNKS,
    overlap: bool = True,
    options: connectors.LoadOptions | None = None,
) -> IngestReport:
    """Sync `sources` into `store`; bad sources are reported in the result, never raised.

    Without a `manifest` (a file per data dir, see `Index.ingest`) one is kept in memory for the run, rebuilt
    from the store: correct, but every file is then hashed. The caller holds the data dir's write lock.
    """
    own = manifest is None
    if manifest is None:
        manifest = Manifest(":memory:", store.name)
    try:
        return _Run(store, embedder, manifest, chunk_size, chunk_overlap, progress, batch_chunks, options).run(
            [str(s) for s in sources], include, exclude, overlap
        )
    finally:
        if own:
            manifest.close()


class _Run:
    def __init__(
        self,
        store: ChromaStore,
        embedder: Embedder,
        manifest: Manifest,
        chunk_size: int,
        chunk_overlap: int,
        progress: Progress | None,
        batch_chunks: int,
        options: connectors.LoadOptions | None = None,
    ) -> None:
        self.options = options  # size limits, PDF passwords, web rules: connectors never read settings
        self.store, self.embedder, self.manifest = store, embedder, manifest
        self.chunk_size, self.chunk_overlap = chunk_size, chunk_overlap
        self.progress = progress
        self.batch_chunks = max(1, batch_chunks)
        self.report = IngestReport()
        self.started = time.perf_counter()
        self.done = self.total = self.chunks_done = 0
        self.dirty = False  # set once this run has written anything
        self.entries: dict[str, Entry] = {}
        self._writer: ThreadPoolExecutor | None = None
        self._pending: tuple[list[_Work], list[Entry], Future[None]] | None = None

    def run(self, sources: list[str], include: Sequence[str], exclude: Sequence[str], overlap: bool) -> IngestReport:
        found: list[Path | str] = []
        for item in connectors.discover(sources, include, exclude):
            if isinstance(item, UnsupportedFormat):
                self.report.skipped.append({"source": item.source, "reason": item.reason})
            elif isinstance(item, SourceError):
                self.report.failed.append({"source": item.source, "error": item.reason})
            else:
                found.append(item)
        left_dirty = self.manifest.get_meta(_DIRTY) is not None
        self.entries = reconcile(self.store, self.manifest)
        seen = {_document_id(p) for p in found}
        work: list[Path | str] = list(found)
        # Documents a killed run left half-written are finished now, even if this run names other sources.
        for entry in [e for e in self.entries.values() if not e.done and e.document_id not in seen]:
            if "://" in entry.source or Path(entry.source).is_file():
                work.append(entry.source if "://" in entry.source else Path(entry.source))
                seen.add(entry.document_id)
            else:
                self._write_started()
                self.manifest.remove([entry.document_id])  # its chunks went in reconcile()
                self.report.deleted += 1 if entry.prev_sha256 else 0
        self.total = len(work)
        results = _produced(work, self._inspect) if overlap else iter(map(self._inspect, work))
        try:
            self._consume(results)
            self._finish_pending()
        finally:
            if isinstance(results, Generator):
                results.close()  # on an error, stop the producer now, not when the traceback is freed
            self._stop_writer()
        self._delete_vanished(sources, seen)
        if self.dirty or left_dirty:
            self.store.bump_generation()
            self.manifest.set_meta(_GENERATION, str(self.store.generation()))
            self.manifest.set_meta(_DIRTY, None)
        self.report.seconds = round(time.perf_counter() - self.started, 3)
        return self.report

    def _consume(self, results: Iterator[_Result]) -> None:
        """Unchanged and failed files are reported at once; changed ones are written in batches of chunks."""
        batch: list[_Work] = []
        pending_chunks = 0
        # Batches ramp up (32, 64, … to `batch_chunks`): embedding starts after the first few files are parsed,
        # the first progress shows within a second, and a small folder is not one batch the writer thread
        # cannot overlap with anything.
        limit = min(self.batch_chunks, _FIRST_BATCH)
        for result in results:
            if isinstance(result, _Work):
                batch.append(result)
                pending_chunks += len(result.chunks)
                if pending_chunks >= limit:
                    self._write(batch)
                    batch, pending_chunks = [], 0
                    limit = min(self.batch_chunks, limit * 2)
            elif isinstance(result, _Unchanged):
                if result.touch:
                    self.manifest.touch(*result.touch)
                self.report.unchanged += 1
                self._event(result.source, "unchanged")
            else:
                left = self.entries.get(result.document_id)
                if left is not None and not left.done:  # half-written before, unreadable now: forget it
                    self.manifest.remove([left.document_id])
                    del self.entries[left.document_id]
                self.report.failed.append({"source": result.source, "error": result.error})
                self._event(result.source, "failed", detail=result.error)
        # The last batch in halves: only a small last write is left with no embedding to overlap it.
        while len(batch) > 1 and pending_chunks > _FIRST_BATCH:
            half, count = 0, 0
            while count < pending_chunks / 2 and half < len(batch) - 1:
                count += len(batch[half].chunks)
                half += 1
            self._write(batch[:half])
            batch, pending_chunks = batch[half:], pending_chunks - count
        self._write(batch)

    # --- per file, in the producer thread: no store or manifest access, only the entries read at start ---------
    def _inspect(self, item: Path | str) -> _Result:
        """Decide one source: unchanged (by stat, else by hash), failed, or parsed and chunked work."""
        name, document_id = str(item), _document_id(item)
        size = mtime_ns = None
        if isinstance(item, Path):
            try:
                st = item.stat()  # before reading: a write after this moves mtime, so the next run looks again
                size, mtime_ns = st.st_size, st.st_mtime_ns
            except OSError as exc:
                return _Failed(name, f"cannot access: {exc.strerror or exc}", document_id)
        entry = self.entries.get(document_id)
        touch = None
        if entry is not None and entry.done and isinstance(item, Path) and size is not None and mtime_ns is not None:
            if entry.same_stat(size, mtime_ns):
                return _Unchanged(name)
            touch = (entry.document_id, size, mtime_ns)
            try:
                if _sha256_file(item) == entry.sha256:
                    return _Unchanged(name, touch)
            except OSError as exc:
                return _Failed(name, f"cannot read: {exc.strerror or exc}", document_id)
        try:
            doc = connectors.load(item, self.options)
        except SourceError as exc:
            return _Failed(name, exc.reason, document_id)
        except Exception as exc:  # a parser bug must cost one file, not the batch
            return _Failed(name, f"unexpected {type(exc).__name__}: {exc}", document_id)
        entry = self.entries.get(doc.document_id)
        if entry is not None and entry.done and doc.sha256 == entry.sha256:
            # A source without a stat (a URL) whose content is the same, or a file changed back meanwhile.
            return _Unchanged(name, touch)
        chunks = chunk_document(doc, self.chunk_size, self.chunk_overlap)
        if not chunks:
            return _Failed(name, "empty: no text to index", document_id)
        return _Work(name, doc, chunks, size, mtime_ns, entry)

    # --- writing: embedding in the calling thread, the store's write in a writer thread -------------------------
    def _write(self, batch: list[_Work]) -> None:
        """Embed a batch of documents, then write it: pending → delete old → upsert new → done.

        The store's part (Chroma's upsert and HNSW insert, the keyword index) runs in a writer thread while the
        next batch is embedded, so ingest costs little more than embedding alone (bench/run.py `ingest_vs_raw`;
        Chroma holds the GIL while it writes, ≈ 0.4 ms a chunk, and the embedding waits meanwhile — see
        rag/store.py and docs/performance.md).
        One batch at most is in flight, and the manifest is only touched here, in order: a batch is marked
        pending before its store write starts and done after it finished, so a crash still leaves it redoable.
        """
        if not batch:
            return
        chunks = [c for w in batch for c in w.chunks]
        vectors = self.embedder.embed([embed_text(c.text, c.metadata) for c in chunks])
        self._finish_pending()
        entries = [w.entry() for w in batch]
        self._write_started()
        self.manifest.put(entries)
        if self._writer is None:
            self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rag-store-writer")
        self._pending = (batch, entries, self._writer.submit(self._store_batch, batch, chunks, vectors))

    def _store_batch(self, batch: list[_Work], chunks: list[Chunk], vectors: np.ndarray) -> None:
        for w in batch:
            if w.previous is not None:
                self.store.delete_document(w.doc.document_id)
        self.store.add(chunks, vectors)

    def _finish_pending(self) -> None:
        """Wait for the batch in flight (re-raising its error here), then mark it done and report it."""
        if self._pending is None:
            return
        batch, entries, future = self._pending
        self._pending = None
        future.result()
        self.manifest.mark_done(entries)
        for w, entry in zip(batch, entries, strict=True):
            self.entries[entry.document_id] = replace(entry, state=DONE, prev_sha256=None)
            status = w.status
            setattr(self.report, status, getattr(self.report, status) + 1)
            self.report.chunks_added += len(w.chunks)
            self.chunks_done += len(w.chunks)
            self._event(w.source, status, len(w.chunks))

    def _stop_writer(self) -> None:
        """On the way out, even by an error: no store write may outlive the run (it stays pending if unfinished)."""
        if self._writer is not None:
            self._writer.shutdown(wait=True)
            self._writer = None

    def _write_started(self) -> None:
        if not self.dirty:
            self.manifest.set_meta(_DIRTY, "1")
            self.dirty = True

    def _delete_vanished(self, sources: list[str], seen: set[str]) -> None:
        """Remove documents indexed from under a folder given now whose files no longer exist."""
        folders = [Path(s).resolve() for s in sources if Path(s).is_dir()]
        if not folders:
            return
        for entry in list(self.entries.values()):
            if entry.document_id in seen:
                continue
            src = Path(entry.source)
            if any(src.is_relative_to(folder) for folder in folders) and not src.exists():
                self._write_started()
                self.store.delete_document(entry.document_id)
                self.manifest.remove([entry.document_id])
                del self.entries[entry.document_id]
                self.report.deleted += 1

    def _event(self, source: str, status: str, chunks: int = 0, detail: str = "") -> None:
        self.done += 1
        if self.progress:
            seconds = time.perf_counter() - self.started
            self.progress(IngestEvent(source, status, self.done, self.total, chunks, detail, self.chunks_done, seconds))


def reconcile(store: ChromaStore, manifest: Manifest) -> dict[str, Entry]:
    """Bring the manifest in line with the store, and return its entries.

    Documents left pending by an interrupted run lose whatever chunks they have (they are redone). If the
    manifest was made for another state of the store — missing, another generation (a reindex, another
    writer), or a different chunk count — it is rebuilt from the chunks' own metadata.
    """
    entries = manifest.entries()
    for entry in entries.values():
        if not entry.done:
            store.delete_document(entry.document_id)
    expected = sum(len(e.chunk_ids) for e in entries.values() if e.done)
    generation = str(store.generation())
    untracked = int(manifest.get_meta("untracked_chunks") or 0)
    if manifest.get_meta(_GENERATION) != generation or store.count() != expected + untracked:
        entries = _rebuild(store, manifest, entries)
        manifest.set_meta(_GENERATION, generation)
    return entries


def _rebuild(store: ChromaStore, manifest: Manifest, old: dict[str, Entry]) -> dict[str, Entry]:
    """Manifest rows from the store's chunks; a document missing chunks is deleted and left pending (redone).

    A document whose bytes the old manifest knew (same sha256) keeps its recorded stat, so the next run still
    needs no read. Documents a client upserted through the API (`origin: api`) are left out: no folder sync
    may touch them, and their chunks are only counted, so the next run's check still balances.
    """
    docs: dict[str, dict[str, Any]] = {}
    untracked = 0
    for row in store.iter_chunks():
        meta = row["metadata"] or {}
        document_id = meta.get("document_id")
        if not document_id or meta.get("origin") == "api":
            untracked += 1
            continue
        doc = docs.setdefault(str(document_id), {"meta": meta, "ids": {}})
        doc["ids"][int(meta.get("ordinal", len(doc["ids"])))] = row["id"]
    entries = {k: e for k, e in old.items() if not e.done}  # still to be redone; their chunks are gone
    for document_id, doc in docs.items():
        meta, ids = doc["meta"], doc["ids"]
        n_chunks = int(meta.get("n_chunks", len(ids)))
        source, sha = str(meta.get("source", "")), str(meta.get("sha256", ""))
        if sorted(ids) == list(range(n_chunks)):
            chunk_ids = tuple(ids[i] for i in range(n_chunks))
            known = old.get(document_id)
            if known is not None and known.done and known.sha256 == sha:
                entries[document_id] = replace(known, chunk_ids=chunk_ids)
            else:  # mtime is not known at ns precision: the next run hashes the file once, then records its stat
                entries[document_id] = Entry(document_id, source, sha, chunk_ids, DONE, size=meta.get("size"))
        else:
            store.delete_document(document_id)
            entries[document_id] = Entry(document_id, source, sha, (), PENDING, prev_sha256=sha)
    manifest.replace_all(entries.values())
    manifest.set_meta("untracked_chunks", str(untracked) if untracked else None)
    return entries


def _document_id(item: Path | str) -> str:
    """The id `connectors.load` will give this source: of the absolute path for a file, else of the string."""
    return document_id_for(str(item.resolve()) if isinstance(item, Path) else str(item))


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


_END = object()


def _produced(items: list[Path | str], inspect: Callable[[Path | str], _Result]) -> Iterator[_Result]:
    """`map(inspect, items)`, computed by a thread running ahead, so parsing overlaps embedding and writing.

    Exceptions of `inspect` are re-raised here; leaving the loop early (an error while writing) stops the thread.
    """
    q: queue.Queue[Any] = queue.Queue(maxsize=_QUEUE_FILES)
    stop = threading.Event()

    def put(obj: Any) -> bool:
        while not stop.is_set():
            try:
                q.put(obj, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if stop.is_set() or not put(inspect(item)):
                    return
        except BaseException as exc:  # handed to the consumer, which re-raises it
            put(_Crashed(exc))
            return
        put(_END)

    thread = threading.Thread(target=produce, name="rag-ingest-parse", daemon=True)
    thread.start()
    try:
        while True:
            got = q.get()
            if got is _END:
                return
            if isinstance(got, _Crashed):
                raise got.exc
            yield got
    finally:
        stop.set()
        thread.join()


@dataclass(slots=True)
class _Crashed:
    exc: BaseException


def upsert_documents(
    docs: Sequence[Document], store: ChromaStore, embedder: Embedder, chunk_size: int, chunk_overlap: int
) -> list[str]:
    """Store documents a client gave with their own ids; each one replaces every old chunk of its id.

    All new chunks are embedded in one batch. A document whose text and metadata are unchanged (same hash, all
    chunks present) is not re-embedded. Returns the document ids in input order.
    """
    todo: list[tuple[Document, list[Chunk], bool]] = []
    for doc in {d.document_id: d for d in docs}.values():  # the same id twice: the last one wins
        state = store.document_state(doc.document_id)
        if state is not None and state.sha256 == doc.sha256 and state.complete:
            continue
        todo.append((doc, chunk_document(doc, chunk_size, chunk_overlap), state is not None))
    texts = [embed_text(c.text, c.metadata) for _, chunks, _ in todo for c in chunks]
    vectors = embedder.embed(texts) if texts else None
    start = 0
    for doc, chunks, existed in todo:
        if existed:
            store.delete_document(doc.document_id)
        if chunks and vectors is not None:
            store.add(chunks, vectors[start : start + len(chunks)])
            start += len(chunks)
    if todo:
        store.bump_generation()
    return [doc.document_id for doc in docs]


def load_upload(filename: str, data: bytes, options: connectors.LoadOptions | None = None) -> Document:
    """Read an uploaded file's bytes with the connector for its suffix (via a private temporary file)."""
    import tempfile

    suffix = Path(filename).suffix.lower()
    if not connectors.base.loader_for(Path(f"upload{suffix}")):
        supported = ", ".join(sorted(connectors.SUPPORTED_SUFFIXES))
        raise UnsupportedFormat(filename, f"unsupported file type '{suffix or filename}' (supported: {supported})")
    name = Path(filename).name
    if name in ("", ".", ".."):
        name = f"upload{suffix}"
    with tempfile.TemporaryDirectory(prefix="rag-upload-") as tmp:
        path = Path(tmp) / name  # the file's own name: loaders take a title from it
        path.write_bytes(data)
        try:
            return connectors.load(path, options)
        except SourceError as exc:
            raise type(exc)(filename, exc.reason) from exc
