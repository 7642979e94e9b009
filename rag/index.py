"""The composition root: builds the embedder, store, keyword index, retriever and LLM from one `Settings`.

Everything the CLI, the UI and the HTTP API do goes through `Index`; nothing else wires components together.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from rag import indexing
from rag.chat import ChatConfig, answer_stream, standalone_question
from rag.embeddings import Embedder, make_embedder
from rag.errors import ConfigError
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

    def ask_stream(
        self,
        question: str,
        top_k: int | None = None,
        use_llm: bool | None = None,
        *,
        history: Sequence[dict[str, str]] | None = None,
        filters: dict[str, Any] | None = None,
    ) -> AnswerStream:
        """Retrieve, then answer piece by piece; `use_llm=False` forces an extractive answer.

        `history` is the conversation so far, `[{"role": "user"|"assistant", "content": str}, ...]`, oldest first:
        a follow-up ("and when did he leave?") is rewritten into a standalone question before retrieval (by the LLM,
        or without one by joining it to the previous question), and the answer sees the recent turns.
        """
        started = time.perf_counter()
        want_llm = self.settings.llm_configured if use_llm is None else use_llm and self.settings.llm_configured
        llm = self._llm() if want_llm else None
        config = self._chat_config()
        asked, warnings = standalone_question(question, history or [], llm, config)
        results = self.search(asked, top_k, filters=filters)
        return answer_stream(
            question,
            results,
            self.embedder,
            llm,
            history=history,
            relevance=self.relevance(asked, filters) if results else None,
            config=config,
            standalone=asked,
            warnings=warnings,
            started=started,
        )

    def ask(
        self,
        question: str,
        top_k: int | None = None,
        use_llm: bool | None = None,
        *,
        history: Sequence[dict[str, str]] | None = None,
        filters: dict[str, Any] | None = None,
    ) -> Answer:
        """A complete answer with its citations; with no LLM configured, an extractive one."""
        return self.ask_stream(question, top_k, use_llm, history=history, filters=filters).answer

    def chat(
        self,
        messages: Sequence[dict[str, str]],
        top_k: int | None = None,
        use_llm: bool | None = None,
        *,
        filters: dict[str, Any] | None = None,
    ) -> AnswerStream:
        """Answer the last user message of an OpenAI-style `messages` list, the earlier ones being the history.

        >>> stream = index.chat([{"role": "user", "content": "Who founded Orbis?"}])   # doctest: +SKIP
        >>> for delta in stream: print(delta, end="")   # doctest: +SKIP
        """
        turns = [m for m in messages if m.get("role") in ("user", "assistant")]
        if not turns or turns[-1]["role"] != "user":
            raise ConfigError("chat() needs a conversation that ends with a user message.")
        return self.ask_stream(str(turns[-1]["content"]), top_k, use_llm, history=turns[:-1], filters=filters)

    def relevance(self, query: str, filters: dict[str, Any] | None = None) -> float | None:
        """Cosine similarity of `query` to its closest chunk, whatever the search mode: the "not found" signal.

        Fused (RRF) scores are ranks, not comparable across queries, so the gate uses the dense similarity.
        """
        from rag.retrieval import _chroma_where

        closest = self.store.query(self.embedder.embed_query(query), 1, _chroma_where(filters))
        return closest[0].score if closest else None

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

    def _chat_config(self) -> ChatConfig:
        s = self.settings
        return ChatConfig(
            s.llm_model, s.context_window, s.answer_reserve, s.not_found_threshold, s.system_prompt, s.condense_prompt
        )

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
