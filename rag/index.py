"""The composition root: builds the embedder, store, keyword index, retriever and LLM from one `Settings`.

Everything the CLI, the UI and the HTTP API do goes through `Index`; nothing else wires components together.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from rag.chat import answer_stream
from rag.embeddings import Embedder, make_embedder
from rag.keyword import KeywordIndex
from rag.llm import ChatLLM
from rag.offline import ensure_offline_env
from rag.retrieval import Retriever
from rag.settings import Settings, load_settings
from rag.store import ChromaStore
from rag.types import Answer, AnswerStream, IngestEvent, IngestReport, SearchResult


class Index:
    """One collection, ready to ingest into and to answer from. Build it with `open_index()`."""

    def __init__(self, settings: Settings, embedder: Embedder | None = None, check_embedder: bool = True) -> None:
        ensure_offline_env()
        self.settings = settings
        self.embedder = embedder or make_embedder(settings)
        self.store = ChromaStore(
            settings.collection,
            self.embedder.identity,
            path=None if settings.chroma_url else settings.chroma_dir,
            url=settings.chroma_url,
            check_embedder=check_embedder,
        )
        self.keyword = KeywordIndex(self.store, settings.data_dir / "keyword")
        self.retriever = Retriever(self.store, self.embedder, self.keyword)

    def ingest(
        self,
        sources: Iterable[str | Path],
        include: Sequence[str] = (),
        exclude: Sequence[str] = (),
        progress: Callable[[IngestEvent], None] | None = None,
    ) -> IngestReport:
        """Sync files and folders into the index (see `rag.indexing`); bad sources are reported, not raised."""
        from rag import indexing  # here, not at the top: the file parsers cost `rag search` ~1 s of start-up

        return indexing.ingest(
            sources,
            self.store,
            self.embedder,
            self.settings.chunk_size,
            self.settings.chunk_overlap,
            include,
            exclude,
            progress,
        )

    def search(
        self, query: str, top_k: int | None = None, mode: str | None = None, filters: dict[str, Any] | None = None
    ) -> list[SearchResult]:
        """The best chunks for `query`, best first (higher score is better)."""
        return self.retriever.search(query, top_k or self.settings.top_k, mode or self.settings.search_mode, filters)

    def ask_stream(self, question: str, top_k: int | None = None, use_llm: bool | None = None) -> AnswerStream:
        """Retrieve, then answer piece by piece; `use_llm=False` forces an extractive answer."""
        results = self.search(question, top_k)
        want_llm = self.settings.llm_configured if use_llm is None else use_llm and self.settings.llm_configured
        return answer_stream(question, results, self.embedder, self._llm() if want_llm else None)

    def ask(self, question: str, top_k: int | None = None, use_llm: bool | None = None) -> Answer:
        """A complete answer with its citations; with no LLM configured, an extractive one."""
        return self.ask_stream(question, top_k, use_llm).answer

    def status(self) -> dict[str, Any]:
        """The `rag status --json` shape."""
        identity = self.embedder.identity
        return {
            "collection": self.settings.collection,
            "documents": len(self.store.document_sources()),
            "chunks": self.store.count(),
            "embedder": {"name": identity.name, "dimension": identity.dimension, **identity.to_dict()},
            "store": self.store.kind,
            "data_dir": str(self.settings.data_dir.resolve()),
            "llm": self.settings.llm_model if self.settings.llm_configured else None,
        }

    def reindex(self, progress: Callable[[int, int], None] | None = None) -> int:
        """Re-embed every chunk with the configured embedder (after a model change); returns the chunk count.

        The old collection is replaced only once the new one is complete.
        """
        from rag import indexing

        total = self.store.count()
        batch = max(self.settings.embed_batch_size * 8, 256)

        def pages() -> Iterable[tuple[list[dict[str, Any]], Any]]:
            rows: list[dict[str, Any]] = []
            done = 0
            for row in self.store.iter_chunks(batch=batch):
                rows.append(row)
                if len(rows) == batch:
                    yield rows, self.embedder.embed([indexing.embed_text(r["text"], r["metadata"]) for r in rows])
                    done += len(rows)
                    if progress:
                        progress(done, total)
                    rows = []
            if rows:
                yield rows, self.embedder.embed([indexing.embed_text(r["text"], r["metadata"]) for r in rows])
                if progress:
                    progress(total, total)

        # Pages are read from the old collection while the new one is written; the old one is dropped only after.
        self.store.recreate_as(self.embedder.identity, iter(pages()))
        return total

    def _llm(self) -> ChatLLM:
        s = self.settings
        key = s.openai_api_key.get_secret_value() if s.openai_api_key else None
        return ChatLLM(s.llm_model, s.openai_base_url, key, s.llm_timeout, s.llm_temperature)


def open_index(settings: Settings | None = None, *, check_embedder: bool = True, **overrides: Any) -> Index:
    """Open (creating if needed) the configured collection.

    >>> index = open_index(data_dir="rag-data", collection="notes")   # doctest: +SKIP
    >>> index.ingest(["docs/"]); index.ask("What is the refund policy?").answer   # doctest: +SKIP
    """
    if settings is None:
        settings = load_settings(**overrides)
    elif overrides:
        settings = settings.model_copy(update={k: v for k, v in overrides.items() if v is not None})
    return Index(settings, check_embedder=check_embedder)
