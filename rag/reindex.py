"""Safe model switches: re-embed a collection's chunks (no re-parsing) into a new collection while the old one keeps
serving, swap by rename when complete, keep the old one as `<name>.previous` for `rollback()`.

    job = index.start_reindex(to="openai:text-embedding-3-small")   # a thread; searches go on meanwhile
    job.done, job.total                                               # progress
    report = job.wait()                                               # chunks, tokens, usd, from, to
    index.rollback()                                                  # the old collection (and model) back

Chunks added to the live collection while a reindex runs may be missed by it (it pages through a moving
collection); run `rag ingest` again afterwards, which re-adds anything missing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rag.embeddings import Embedder
    from rag.index import Index
    from rag.settings import Settings

Progress = Callable[[int, int], None]


@dataclass
class ReindexReport:
    collection: str
    chunks: int
    from_embedder: str  # the key recorded on the collection before
    to_embedder: str
    embed_model: str  # the RAG_EMBED_MODEL value that now matches the collection ("" if a hand-given embedder)
    tokens: int  # counted (cl100k_base) only for a paid API, else 0
    usd: float
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["from"], out["to"] = out.pop("from_embedder"), out.pop("to_embedder")
        return out


class ReindexJob:
    """One reindex in a background thread. `wait()` returns its report or raises what it raised."""

    def __init__(
        self, index: Index, settings: Settings, embedder: Embedder, embed_model: str, progress: Progress | None
    ) -> None:
        self._index = index
        self._settings = settings
        self._embedder = embedder
        self._embed_model = embed_model  # the RAG_EMBED_MODEL value to record ("" when not known)
        self._progress = progress
        self.total = index.store.count()
        self.done = 0
        self.report: ReindexReport | None = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="rag-reindex", daemon=True)

    def start(self) -> ReindexJob:
        self._thread.start()
        return self

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def wait(self, timeout: float | None = None) -> ReindexReport:
        self._thread.join(timeout)
        if self.error is not None:
            raise self.error
        if self.report is None:
            raise TimeoutError("the reindex is still running")
        return self.report

    def _run(self) -> None:
        try:
            self.report = self._reindex()
        except BaseException as exc:  # handed to wait(): a background thread must not swallow it
            self.error = exc

    def _reindex(self) -> ReindexReport:
        from rag.chunking import get_encoding
        from rag.cost import price_per_million
        from rag.indexing import embed_text
        from rag.lock import write_lock

        started = time.perf_counter()
        store = self._index.store
        before = store.recorded_embedder()
        price = price_per_million(self._settings)
        enc = get_encoding() if price > 0 else None
        tokens = 0
        page_size = max(self._settings.embed_batch_size * 8, 256)

        def embed(rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], Any]:
            nonlocal tokens
            texts = [embed_text(r["text"], r["metadata"]) for r in rows]
            if enc is not None:
                tokens += sum(len(enc.encode_ordinary(t)) for t in texts)
            vectors = self._embedder.embed(texts)
            self.done += len(rows)
            if self._progress:
                self._progress(self.done, self.total)
            return rows, vectors

        def pages() -> Iterator[tuple[list[dict[str, Any]], Any]]:
            rows: list[dict[str, Any]] = []
            for row in store.iter_chunks(batch=page_size):
                rows.append(row)
                if len(rows) == page_size:
                    yield embed(rows)
                    rows = []
            if rows:
                yield embed(rows)

        # Writes through this Index wait for the build and swap, so no chunk added meanwhile is left behind.
        with self._index._write_lock, write_lock(self._settings.data_dir, "reindex"):
            incoming = store.build_replacement(self._embedder.identity, pages(), self._embed_model)
            self._index._swap_in(self._settings, self._embedder, self._embed_model, incoming)
        return ReindexReport(
            collection=store.name,
            chunks=self.done,
            from_embedder=before,
            to_embedder=self._embedder.identity.key(),
            embed_model=self._embed_model,
            tokens=tokens,
            usd=round(tokens * price / 1_000_000, 6),
            seconds=round(time.perf_counter() - started, 3),
        )
