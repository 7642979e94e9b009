"""The composition root: builds the embedder, store, keyword index, retriever and LLM from one `Settings`.

Everything the CLI, the UI and the HTTP API do goes through `Index`; nothing else wires components together.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rag import records
from rag.chat import ChatConfig, answer_stream, standalone_question
from rag.clusters import Clustering
from rag.embedding_map import EmbeddingMap, build_map
from rag.embeddings import Embedder, make_embedder
from rag.errors import ConfigError
from rag.filters import build_where
from rag.keyword import KeywordIndex
from rag.llm import ChatLLM
from rag.lock import write_lock
from rag.manifest import FILE_NAME as MANIFEST_FILE
from rag.manifest import Manifest
from rag.offline import ensure_offline_env
from rag.reindex import ReindexJob
from rag.retrieval import FusionConfig, Retriever
from rag.settings import Settings, load_settings
from rag.store import ChromaStore
from rag.types import Answer, AnswerStream, IngestEvent, IngestReport, SearchResult

if TYPE_CHECKING:
    import numpy as np

    import connectors
    from rag.cost import CostEstimate

# rag.indexing and rag.cost import the connectors (pypdf, lxml, python-docx, …, ~0.2 s): they are imported where
# they are used, so `rag search` and `rag ask` start without them.

# Short writes (API upserts, deletes, UI removals) queue this long behind another writer before `IndexBusy`.
WRITE_WAIT_S = 10.0


class Index:
    """One collection, ready to ingest into and to answer from. Build it with `open_index()`."""

    def __init__(self, settings: Settings, embedder: Embedder | None = None, check_embedder: bool = True) -> None:
        ensure_offline_env()
        self.settings = settings
        self.embedder = embedder or make_embedder(settings)
        # The RAG_EMBED_MODEL value recorded on collections, so a mismatch can name it; unknown for a given embedder.
        self._embed_model = "" if embedder is not None else settings.embed_model
        self.store = ChromaStore(
            settings.collection,
            self.embedder.identity,
            path=None if settings.chroma_url else settings.chroma_dir,
            url=settings.chroma_url,
            check_embedder=check_embedder,
            embed_model=self._embed_model,
        )
        self._swap_lock = threading.Lock()
        self._before_swap: tuple[Settings, Embedder, str] | None = None
        self.keyword = KeywordIndex(self.store, settings.data_dir / "keyword")
        self.retriever = Retriever(self.store, self.embedder, self.keyword, FusionConfig.from_settings(settings))
        # One writer at a time (embedded Chroma, one process); readers never wait for it.
        self._write_lock = threading.Lock()
        self._manifest_db: Manifest | None = None

    def ingest(
        self,
        sources: Iterable[str | Path],
        include: Sequence[str] = (),
        exclude: Sequence[str] = (),
        progress: Callable[[IngestEvent], None] | None = None,
    ) -> IngestReport:
        """Sync files, folders and http(s) URLs into the index (see `rag.indexing`); bad sources are reported.

        Holds the data dir's write lock meanwhile: a second ingest or reindex gets `IndexBusy` naming this one;
        other writes through this Index (uploads, API upserts) wait for it.
        """
        with self._writing("ingest"):
            from rag import indexing

            return indexing.ingest(
                sources,
                self.store,
                self.embedder,
                self.settings.chunk_size,
                self.settings.chunk_overlap,
                include,
                exclude,
                progress,
                manifest=self._manifest(),
                # As many chunks as the embedder sorts by length at once (its window), so ingest pads no more than
                # embedding alone does; progress then moves every ~15 s on 2 cores.
                batch_chunks=self.settings.embed_batch_size * 16,
                options=self.load_options(),
            )

    @contextmanager
    def _writing(self, command: str, short: bool = False) -> Iterator[None]:
        """One writer at a time: this Index's threads, then every process on the data dir. A `short` write
        (upsert, delete) queues up to `WRITE_WAIT_S` behind another process and shares the lock with an ingest
        into another collection of this process. The keyword index is published when the write ends, even by
        an error."""
        wait = WRITE_WAIT_S if short else 0.0
        with self._write_lock, write_lock(self.settings.data_dir, command, wait=wait, join=short):
            try:
                yield
            finally:
                self.keyword.release()

    def load_options(self) -> connectors.LoadOptions:
        """The connectors' limits and secrets, from settings (connectors never read settings themselves)."""
        import connectors

        s = self.settings
        mb = 1024 * 1024
        return connectors.LoadOptions(
            max_file_bytes=int(s.max_file_mb * mb),
            max_unpacked_bytes=int(s.max_unpacked_mb * mb),
            pdf_passwords={glob: pw.get_secret_value() for glob, pw in s.pdf_passwords.items()},
            allow_private=s.web_allow_private,
            allow_hosts=tuple(s.web_allow_hosts),
            timeout=s.web_timeout,
        )

    def _manifest(self) -> Manifest:
        """The manifest beside the store (opened on the first ingest: read-only commands never create it)."""
        if self._manifest_db is None:
            self._manifest_db = Manifest(self.settings.data_dir / MANIFEST_FILE, self.settings.collection)
        return self._manifest_db

    def estimate_cost(
        self, sources: Iterable[str | Path], include: Sequence[str] = (), exclude: Sequence[str] = ()
    ) -> CostEstimate:
        """Tokens, chunks and price of what `ingest(sources)` would embed (nothing is embedded or written)."""
        from rag import cost

        return cost.estimate(sources, self.settings, include, exclude, store=self.store)

    def search(
        self,
        query: str,
        top_k: int | None = None,
        mode: str | None = None,
        filters: dict[str, Any] | None = None,
        mmr: bool | None = None,
    ) -> list[SearchResult]:
        """The best chunks for `query`, best first (higher score is better); filters as in `Retriever.search`."""
        return self.retriever.search(
            query, top_k or self.settings.top_k, mode or self.settings.search_mode, filters, mmr
        )

    def similar(self, source: str, top_k: int = 5) -> list[dict[str, Any]]:
        """Documents most like an indexed one ("more like this"), best first; see `rag.similarity`."""
        from rag import similarity

        return similarity.similar(self.store, source, top_k)

    def duplicates(self, threshold: float = 0.95, level: str = "document") -> list[dict[str, Any]]:
        """Near-duplicate document (or chunk) pairs at cosine ≥ `threshold`, most alike first."""
        from rag import similarity

        return similarity.duplicates(self.store, threshold, level)

    def search_many(
        self,
        queries: Sequence[str],
        top_k: int | Sequence[int | None] | None = None,
        filters: Sequence[dict[str, Any] | None] | None = None,
        mode: str | None = None,
    ) -> list[list[SearchResult]]:
        """Several searches, their query embeddings computed in one batch; `top_k`/`filters` per query or shared.

        `filters` are `rag.filters` where clauses (see `rag.records.plugin_where` for the retrieval plugin's).
        """
        mode = mode or self.settings.search_mode
        ks = [top_k] * len(queries) if top_k is None or isinstance(top_k, int) else list(top_k)
        wheres = list(filters) if filters is not None else [None] * len(queries)
        retriever = self.retriever  # one snapshot: a model swap must never pair one model's vectors with another's
        wanted = mode != "keyword" and any(q.strip() for q in queries)
        vectors = retriever.embedder.embed(list(queries)) if wanted else None
        return [
            retriever.search(
                q, k or self.settings.top_k, mode, where, embedding=vectors[i] if vectors is not None else None
            )
            for i, (q, k, where) in enumerate(zip(queries, ks, wheres, strict=True))
        ]

    def upsert_texts(self, documents: Iterable[dict[str, Any]]) -> list[str]:
        """Store texts under the client's ids, as the retrieval plugin's `/upsert` does; returns the ids.

        Each item is `{"id"?, "text", "metadata"?: {"source"?, "source_id"?, "url"?, "created_at"?, "author"?}}`.
        Re-upserting an id replaces all its old chunks.

        >>> index.upsert_texts([{"id": "memo-1", "text": "Lunch at noon."}])  # doctest: +SKIP
        ['memo-1']
        """
        from rag import indexing

        docs = [records.text_document(item) for item in documents]
        with self._writing("upsert", short=True):
            return indexing.upsert_documents(
                docs, self.store, self.embedder, self.settings.chunk_size, self.settings.chunk_overlap
            )

    def upsert_file(self, filename: str, data: bytes, metadata: dict[str, Any] | None = None) -> str:
        """Index an uploaded file's bytes (any supported format); returns its document id.

        `metadata` is the plugin's; `source_id` defaults to the file name, so re-uploading a file of the same
        name replaces it.
        """
        from rag import indexing

        name = Path(filename or "upload").name
        doc = records.uploaded_document(indexing.load_upload(name, data, self.load_options()), name, metadata)
        with self._writing("upsert", short=True):
            return indexing.upsert_documents(
                [doc], self.store, self.embedder, self.settings.chunk_size, self.settings.chunk_overlap
            )[0]

    def delete(
        self, ids: Sequence[str] | None = None, filters: dict[str, Any] | None = None, delete_all: bool = False
    ) -> None:
        """Delete documents by id, by a where clause (both: the documents matching both), or everything.

        Chroma selects the chunks to delete from its metadata index; nothing is scanned here.
        """
        if delete_all:
            where: dict[str, Any] | None = {"document_id": {"$ne": ""}}  # every chunk has one
        else:
            clauses = ([{"document_id": {"$in": list(ids)}}] if ids else []) + ([filters] if filters else [])
            where = None if not clauses else clauses[0] if len(clauses) == 1 else {"$and": clauses}
        if where is None:
            return
        with self._writing("delete", short=True):
            self.store.delete_where(where)
            self.store.bump_generation()

    def ask_stream(
        self,
        question: str,
        top_k: int | None = None,
        use_llm: bool | None = None,
        mode: str | None = None,
        filters: dict[str, Any] | None = None,
        *,
        history: Sequence[dict[str, str]] | None = None,
    ) -> AnswerStream:
        """Retrieve (as `search` does), then answer piece by piece; `use_llm=False` forces an extractive answer.

        `history` is the conversation so far, `[{"role": "user"|"assistant", "content": str}, ...]`, oldest first:
        a follow-up ("and when did he leave?") is rewritten into a standalone question before retrieval (by the LLM,
        or without one by joining it to the previous question), and the answer sees the recent turns.
        """
        started = time.perf_counter()
        want_llm = self.settings.llm_configured if use_llm is None else use_llm and self.settings.llm_configured
        llm = self._llm() if want_llm else None
        config = self._chat_config()
        asked, warnings = standalone_question(question, history or [], llm, config)
        retriever = self.retriever  # one snapshot: the vector below and the collection searched share a model
        vector = retriever.embedder.embed_query(asked)  # once, for the search and for the not-found gate
        k, how = top_k or self.settings.top_k, mode or self.settings.search_mode
        results = retriever.search(asked, k, how, filters, embedding=vector)
        return answer_stream(
            question,
            results,
            retriever.embedder,
            llm,
            history=history,
            relevance=self.relevance(asked, filters, vector) if results else None,
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

    def relevance(
        self, query: str, filters: dict[str, Any] | None = None, embedding: np.ndarray | None = None
    ) -> float | None:
        """Cosine similarity of `query` to its closest chunk, whatever the search mode: the "not found" signal.

        Fused (RRF) scores are ranks, not comparable across queries, so the gate uses the dense similarity.
        `embedding` is the query's vector when the caller has it already.
        """
        vector = self.embedder.embed_query(query) if embedding is None else embedding
        closest = self.store.query(vector, 1, build_where(filters, self.settings.filter_date_field))
        return closest[0].score if closest else None

    def documents(self) -> list[dict[str, Any]]:
        """The indexed documents, by source: document_id, source, title, mime, mtime and their chunk count."""
        return self.store.document_stats()

    def remove_document(self, document_id: str) -> int:
        """Remove one document's chunks from the index (its file stays); returns how many were removed."""
        with self._writing("delete", short=True):
            state = self.store.document_state(document_id)
            if state is None:
                return 0
            self.store.delete_document(document_id)
            self.store.bump_generation()
            return state.present

    def embedding_map(self, question: str | None = None, highlight: Sequence[str] = ()) -> EmbeddingMap:
        """A 2-D (PCA) map of the collection's chunks, with `question` placed among them and `highlight` ids
        (e.g. the chunks an answer retrieved) marked. Computed once per change of the collection, then cached."""
        where = self.settings.chroma_url or str(self.settings.chroma_dir.resolve())
        key = (where, self.store.name, self.embedder.identity.key(), str(self.store.generation()))
        vector = self.embedder.embed_query(question) if question and question.strip() else None
        return build_map(self.store, key, vector, question, highlight)

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

    def clusters(self, k: int | str | None = "auto", n_terms: int = 5) -> Clustering:
        """Group the documents by meaning (k-means; k='auto' picks k by silhouette), each named by its terms."""
        from rag.clusters import cluster_documents, parse_k

        chosen = None if k is None else parse_k(k)
        return cluster_documents(self.store.iter_chunks(embeddings=True), chosen, n_terms)

    def start_reindex(self, to: str | None = None, progress: Callable[[int, int], None] | None = None) -> ReindexJob:
        """Re-embed every chunk (with model `to`, else the configured one) in a background thread.

        Searches keep using the old collection until the new one is complete; then this Index switches to it
        (and to the new embedder) at once, and the old one stays as `<name>.previous` for `rollback()`.
        """
        if to is None:
            return ReindexJob(self, self.settings, self.embedder, self._embed_model, progress).start()
        settings = self.settings.model_copy(update={"embed_model": to})
        return ReindexJob(self, settings, make_embedder(settings), to, progress).start()

    def reindex(self, progress: Callable[[int, int], None] | None = None, *, to: str | None = None) -> int:
        """Re-embed every chunk and wait for it (see `start_reindex`); returns the chunk count."""
        return self.start_reindex(to, progress).wait().chunks

    def rollback(self) -> str:
        """Restore the collection the last reindex replaced; returns its embedder key.

        This Index switches back to the embedder that made it when it knows it (the one it replaced, or the
        recorded RAG_EMBED_MODEL); otherwise searches raise `EmbedderMismatch` until the model is set back.
        """
        with self._swap_lock:
            restored = self.store.rollback()
            current = (self.settings, self.embedder, self._embed_model)
            before = self._before_swap or current
            if before[1].identity.key() != restored:
                before = self._embedder_for(restored) or current
            self._before_swap = current
            self._adopt(*before)
        return restored

    def _embedder_for(self, key: str) -> tuple[Settings, Embedder, str] | None:
        """Settings and embedder matching embedder `key`, built from the model the live collection recorded."""
        model = self.store.recorded_embed_model()
        if not model:
            return None
        settings = self.settings.model_copy(update={"embed_model": model})
        embedder = make_embedder(settings)
        return (settings, embedder, model) if embedder.identity.key() == key else None

    def _swap_in(self, settings: Settings, embedder: Embedder, embed_model: str, incoming: str) -> None:
        """Swap collection `incoming` in and use it with `embedder`; searches in flight finish on the old one."""
        with self._swap_lock:
            old = self.store.generation()
            self.store.follow_swaps = False  # old handles (in-flight searches) keep the old vectors
            self.store.swap_in(incoming)
            self._before_swap = (self.settings, self.embedder, self._embed_model)
            self._adopt(settings, embedder, embed_model)
            self.keyword.carried_over(old)  # same chunks, new vectors: no keyword rebuild

    def _adopt(self, settings: Settings, embedder: Embedder, embed_model: str) -> None:
        self._embed_model = embed_model
        store = ChromaStore(
            settings.collection,
            embedder.identity,
            path=None if settings.chroma_url else settings.chroma_dir,
            url=settings.chroma_url,
            check_embedder=False,
            embed_model=embed_model,
        )
        keyword = KeywordIndex(store, settings.data_dir / "keyword")
        retriever = Retriever(store, embedder, keyword, FusionConfig.from_settings(settings))
        # One tuple assignment: a search reads `self.retriever` once and so sees one consistent pair.
        self.settings, self.embedder, self.store, self.keyword, self.retriever = (
            settings,
            embedder,
            store,
            keyword,
            retriever,
        )

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
