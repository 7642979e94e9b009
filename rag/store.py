"""The Chroma adapter: the only module that imports chromadb.

Embeddings are always passed in (`embeddings=`, `query_embeddings=`) so Chroma never reaches for its own
downloading default model. The collection's metadata records the embedder identity; opening it with another
embedder raises `EmbedderMismatch`, because vectors of different models are not comparable.

A chunk's text is stored in its metadata (`rag:text`), not in Chroma's `documents`: writing the same text as a
document costs Chroma twice as much (0.81 vs 0.39 ms per chunk measured; turning its full-text index off did not
change that), and Chroma holds Python's GIL while it writes, so every such millisecond stalls the embedding
threads of an ingest (docs/performance.md). Keyword search is ours (tantivy), so nothing is lost; collections
written by earlier versions, with the text in `documents`, are read the same.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar
from urllib.parse import urlparse

import numpy as np

from rag.documents import Chunk
from rag.embeddings import EmbedderIdentity
from rag.errors import ConfigError, EmbedderMismatch, StoreError
from rag.types import SearchResult

T = TypeVar("T")
_clients: dict[str, Any] = {}
_clients_lock = threading.Lock()
# Keys of the collection metadata we own. Chroma metadata values must be str/int/float/bool.
_EMBEDDER_KEY = "rag:embedder"
_GENERATION = "rag:generation"
_EMBED_MODEL = "rag:embed_model"  # the RAG_EMBED_MODEL value that built it, to name in a mismatch message
_TEXT = "rag:text"  # a chunk's text, in its record metadata (see the module docstring)
# Beside collection `x`: `x.reindex` while a reindex builds; `x.previous` after it, what `--rollback` restores.
BUILDING, PREVIOUS = ".reindex", ".previous"


def _client(path: Path | None, url: str | None) -> Any:
    """One client per path/URL per process: Chroma refuses a second PersistentClient on a path with new settings."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    key = url or str(Path(path or ".").resolve())
    with _clients_lock:
        if key in _clients:
            return _clients[key]
        settings = ChromaSettings(anonymized_telemetry=False, allow_reset=False)
        try:
            if url:
                parsed = urlparse(url)
                if parsed.scheme not in ("http", "https") or not parsed.hostname:
                    raise ConfigError(f"RAG_CHROMA_URL must look like http://127.0.0.1:8000, got {url!r}.")
                port = parsed.port or (443 if parsed.scheme == "https" else 8000)
                client = chromadb.HttpClient(
                    host=parsed.hostname, port=port, ssl=parsed.scheme == "https", settings=settings
                )
                client.heartbeat()
            else:
                assert path is not None
                path.mkdir(parents=True, exist_ok=True)
                client = chromadb.PersistentClient(path=str(path), settings=settings)
        except ConfigError:
            raise
        except Exception as exc:  # chromadb raises many types; translate once, here.
            where = f"the Chroma server at {url}" if url else f"the index at {path}"
            hint = "is `chroma run` up?" if url else "check the folder is writable and not used by another version."
            raise StoreError(f"Cannot open {where}: {exc} ({hint})") from exc
        _clients[key] = client
        return client


@dataclass(frozen=True, slots=True)
class DocumentState:
    sha256: str
    n_chunks: int
    present: int

    @property
    def complete(self) -> bool:
        return self.present == self.n_chunks


class StoreListener(Protocol):
    """Told of every write to a collection, after Chroma took it: how derived indexes (BM25) stay in step."""

    def added(self, chunks: Sequence[Chunk]) -> None: ...

    def deleted(self, *, document_id: str | None = None, ids: Collection[str] = ()) -> None: ...

    def committed(self, old: int, new: int) -> None: ...


class ChromaStore:
    """One collection of chunks, their vectors and metadata."""

    def __init__(
        self,
        collection: str,
        identity: EmbedderIdentity,
        path: Path | None = None,
        url: str | None = None,
        check_embedder: bool = True,
        embed_model: str = "",
    ) -> None:
        self.identity = identity
        self.embed_model = embed_model
        self.follow_swaps = True
        self.name = collection
        self.listeners: list[StoreListener] = []
        self.url = url
        self.path = path
        self._client = _client(path, url)
        self._col = self._open(collection, create=True, check=check_embedder)

    @property
    def kind(self) -> str:
        return "server" if self.url else "embedded"

    def _open(self, name: str, create: bool, check: bool = True) -> Any:
        try:
            if create:
                col = self._client.get_or_create_collection(
                    name,
                    metadata=_collection_meta(self.identity, 0, self.embed_model),
                    configuration={"hnsw": {"space": "cosine"}},
                    embedding_function=None,
                )
            else:
                col = self._client.get_collection(name, embedding_function=None)
        except Exception as exc:
            raise StoreError(
                f"Cannot open collection {name!r}: {exc}. Names are 3-512 characters of letters, digits, . _ -"
            ) from exc
        if check:
            self._check_embedder(name, col)
        return col

    def _check_embedder(self, name: str, col: Any) -> None:
        meta = col.metadata or {}
        recorded = meta.get(_EMBEDDER_KEY)
        if recorded and recorded != self.identity.key():
            model = meta.get(_EMBED_MODEL)
            back = f"set RAG_EMBED_MODEL={model}" if model else "set RAG_EMBED_MODEL back to the model that built it"
            raise EmbedderMismatch(
                f"Collection {name!r} was indexed with embedder {recorded!r}, but the configured embedder is "
                f"{self.identity.key()!r}. Run `rag reindex` to re-embed it with the configured model, or {back}."
            )

    # --- writing -------------------------------------------------------------------------------------------
    def add(self, chunks: Sequence[Chunk], embeddings: np.ndarray) -> None:
        if not chunks:
            return
        step = max(1, self._client.get_max_batch_size())
        for i in range(0, len(chunks), step):
            part = chunks[i : i + step]
            self._do(
                lambda col, part=part, i=i: col.upsert(
                    ids=[c.id for c in part],
                    embeddings=embeddings[i : i + step],
                    metadatas=[_stored_meta(c.text, c.metadata) for c in part],
                )
            )
            for listener in self.listeners:
                listener.added(part)

    def delete_document(self, document_id: str) -> None:
        self._do(lambda col: col.delete(where={"document_id": document_id}))
        for listener in self.listeners:
            listener.deleted(document_id=document_id)

    def delete_where(self, where: dict[str, Any]) -> None:
        """Delete the chunks matching a `rag.filters` where clause; Chroma selects them (no scan on our side)."""
        ids = self.ids_where(where) if self.listeners else set()  # listeners have no metadata to match
        self._do(lambda col: col.delete(where=where))
        for listener in self.listeners:
            listener.deleted(ids=ids)

    def bump_generation(self) -> None:
        """Mark the collection changed, so caches built from it (the keyword index) know to rebuild."""
        meta = self._fresh_meta()
        old = int(meta.get(_GENERATION, 0))
        meta[_GENERATION] = old + 1
        meta.pop("hnsw:space", None)  # owned by the configuration; Chroma refuses to modify it
        self._do(lambda col: col.modify(metadata=meta))
        for listener in self.listeners:
            listener.committed(old, old + 1)

    def generation(self) -> int:
        return int(self._fresh_meta().get(_GENERATION, 0))

    def _fresh_meta(self) -> dict[str, Any]:
        """The collection's metadata as stored now (another process or Index may have changed it).

        If a reindex swapped another collection in under this name, this handle follows it (after checking its
        embedder), unless it is pinned (`follow_swaps = False`) to finish in-flight work on the old one.
        """
        if not self.follow_swaps:
            return dict(self._col.metadata or {})
        try:
            col = self._client.get_collection(self.name, embedding_function=None)
        except Exception as exc:
            raise StoreError(f"Collection {self.name!r} disappeared: {exc}. Run `rag ingest` again.") from exc
        if col.id != self._col.id:
            self._check_embedder(self.name, col)
            self._col = col
        return dict(col.metadata or {})

    def _do(self, op: Callable[[Any], T]) -> T:
        """Run `op` on the collection; if a reindex replaced it meanwhile, reopen it by name and retry once."""
        from chromadb.errors import NotFoundError

        try:
            return op(self._col)
        except NotFoundError:
            self._col = self._open(self.name, create=False)
            return op(self._col)

    # --- reading -------------------------------------------------------------------------------------------
    def document_state(self, document_id: str) -> DocumentState | None:
        got = self._do(lambda col: col.get(where={"document_id": document_id}, include=["metadatas"]))
        metas = got["metadatas"] or []
        if not metas:
            return None
        return DocumentState(str(metas[0].get("sha256", "")), int(metas[0].get("n_chunks", 0)), len(metas))

    def count(self) -> int:
        return int(self._do(lambda col: col.count()))

    def iter_chunks(self, batch: int = 1000, embeddings: bool = False) -> Iterator[dict[str, Any]]:
        """Every chunk (`id`, `text`, `metadata`[, `embedding`]), in pages, for rebuilding derived indexes."""
        include = ["documents", "metadatas"] + (["embeddings"] if embeddings else [])
        offset = 0
        while True:
            got = self._do(lambda col, offset=offset: col.get(include=include, limit=batch, offset=offset))
            ids = got["ids"]
            if not ids:
                return
            for j, cid in enumerate(ids):
                text, meta = _split(got["documents"][j], got["metadatas"][j])
                row = {"id": cid, "text": text, "metadata": meta}
                if embeddings:
                    row["embedding"] = got["embeddings"][j]
                yield row
            offset += len(ids)

    def document_sources(self, ingested_only: bool = False) -> dict[str, str]:
        """document_id → source of every indexed document (read from each document's first chunk).

        `ingested_only` leaves out documents a client upserted (`origin: api`), which no folder sync may delete.
        """
        where: dict[str, Any] = {"ordinal": 0}
        if ingested_only:
            where = {"$and": [where, {"origin": {"$ne": "api"}}]}
        got = self._do(lambda col: col.get(where=where, include=["metadatas"]))
        return {str(m["document_id"]): str(m["source"]) for m in got["metadatas"] or []}

    def document_stats(self, batch: int = 2000) -> list[dict[str, Any]]:
        """One row per indexed document (id, source, title, mime, mtime, chunks), from each first chunk's metadata.

        `chunks` is the count the document was split into (`n_chunks`): reading every chunk to count them would
        read every chunk's text.
        """
        docs: dict[str, dict[str, Any]] = {}
        offset = 0
        while True:
            got = self._do(
                lambda col, offset=offset: col.get(
                    where={"ordinal": 0}, include=["metadatas"], limit=batch, offset=offset
                )
            )
            if not got["ids"]:
                break
            for m in got["metadatas"] or []:
                doc_id = str(m.get("document_id", ""))
                docs[doc_id] = {
                    "document_id": doc_id,
                    "source": str(m.get("source", "")),
                    "title": str(m.get("title", "")),
                    "mime": str(m.get("mime", "")),
                    "mtime": m.get("mtime"),
                    "chunks": int(m.get("n_chunks", 1)),
                }
            offset += len(got["ids"])
        return sorted(docs.values(), key=lambda r: r["source"])

    def get(self, ids: Sequence[str]) -> list[SearchResult]:
        if not ids:
            return []
        got = self._do(lambda col: col.get(ids=list(ids), include=["documents", "metadatas"]))
        by_id = {cid: _split(got["documents"][j], got["metadatas"][j]) for j, cid in enumerate(got["ids"])}
        return [SearchResult(cid, by_id[cid][0], 0.0, _public_meta(by_id[cid][1])) for cid in ids if cid in by_id]

    def get_with_vectors(self, ids: Sequence[str]) -> list[tuple[SearchResult, np.ndarray]]:
        """Chunks by id with their stored embeddings, in one read (hybrid search scores keyword-only hits)."""
        if not ids:
            return []
        got = self._do(lambda col: col.get(ids=list(ids), include=["documents", "metadatas", "embeddings"]))
        out = []
        for j, cid in enumerate(got["ids"]):
            text, meta = _split(got["documents"][j], got["metadatas"][j])
            out.append((SearchResult(cid, text, 0.0, _public_meta(meta)), np.asarray(got["embeddings"][j], np.float32)))
        return out

    def ids_where(self, where: dict[str, Any]) -> set[str]:
        """Ids of the chunks matching a `where` clause (to pre-filter lists that have no metadata, like BM25)."""
        got = self._do(lambda col: col.get(where=where, include=[]))
        return set(got["ids"])

    def vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        """Stored embeddings by chunk id (for MMR, "more like this" and duplicate detection)."""
        if not ids:
            return {}
        got = self._do(lambda col: col.get(ids=list(ids), include=["embeddings"]))
        return {cid: np.asarray(got["embeddings"][j], dtype=np.float32) for j, cid in enumerate(got["ids"])}

    def query(self, embedding: np.ndarray, k: int, where: dict[str, Any] | None = None) -> list[SearchResult]:
        """Nearest chunks by cosine similarity (score = 1 - cosine distance), best first."""
        # No count() first (6 ms at 100k chunks): Chroma ≥ 1.0 returns what there is when k exceeds it.
        got = self._do(
            lambda col: col.query(
                query_embeddings=[np.asarray(embedding, dtype=np.float32)],
                n_results=k,
                where=where or None,
                include=["documents", "metadatas", "distances"],
            )
        )
        out = []
        for j, cid in enumerate(got["ids"][0]):
            text, meta = _split(got["documents"][0][j], got["metadatas"][0][j])
            out.append(SearchResult(cid, text, 1.0 - float(got["distances"][0][j]), _public_meta(meta)))
        return out

    # --- reindex: build beside, swap by rename, keep the old one for rollback ---------------------------------
    def build_replacement(
        self, identity: EmbedderIdentity, rows: Iterator[tuple[list[dict[str, Any]], np.ndarray]], embed_model: str = ""
    ) -> str:
        """Write (rows, vectors) pages into `<name>.reindex` under `identity`; returns that collection's name.

        The live collection is not touched, so searches go on and an interrupted reindex loses nothing.
        """
        temp = self.name + BUILDING
        self._drop(temp)
        new = self._client.create_collection(
            temp,
            # Past both generations, so caches of either collection (the keyword index) are rebuilt.
            metadata=_collection_meta(identity, self._max_generation() + 1, embed_model),
            configuration={"hnsw": {"space": "cosine"}},
            embedding_function=None,
        )
        for page, vectors in rows:
            new.upsert(
                ids=[r["id"] for r in page],
                embeddings=vectors,
                metadatas=[_stored_meta(r["text"], r["metadata"]) for r in page],
            )
        return temp

    def swap_in(self, incoming: str) -> None:
        """Make `incoming` the live collection; the live one becomes `<name>.previous` (the one before is dropped).

        Handles opened earlier keep their collection object (Chroma addresses it by id), so a search in flight
        finishes on the old vectors; their next `generation()` check follows the swap.
        """
        previous = self.name + PREVIOUS
        self._drop(previous)
        current = self._client.get_collection(self.name, embedding_function=None)
        current.modify(name=previous)
        self._rename(self._client.get_collection(incoming, embedding_function=None), self.name)

    def rollback(self) -> str:
        """Swap `<name>.previous` back in (the live one becomes `.previous`, so a rollback can be undone).

        Returns the embedder key of the restored collection.
        """
        previous = self.name + PREVIOUS
        try:
            old = self._client.get_collection(previous, embedding_function=None)
        except Exception as exc:
            raise StoreError(
                f"Collection {self.name!r} has no previous version to roll back to (none kept, or already dropped)."
            ) from exc
        generation = self._max_generation() + 1
        current = self._client.get_collection(self.name, embedding_function=None)
        parked = self.name + ".rollback"
        self._drop(parked)
        current.modify(name=parked)
        self._rename(old, self.name)
        current.modify(name=previous)
        meta = {k: v for k, v in (old.metadata or {}).items() if k != "hnsw:space"}
        meta[_GENERATION] = generation
        old.modify(metadata=meta)
        return str(meta.get(_EMBEDDER_KEY, ""))

    def previous_embedder(self) -> str | None:
        """The embedder key of `<name>.previous`, or None when there is none to roll back to."""
        try:
            col = self._client.get_collection(self.name + PREVIOUS, embedding_function=None)
        except Exception:
            return None
        return str((col.metadata or {}).get(_EMBEDDER_KEY, ""))

    def _rename(self, col: Any, name: str) -> None:
        try:
            col.modify(name=name)
        except Exception:
            # Someone opened the name in the instant it was free and so created an empty collection: drop it.
            squatter = self._client.get_collection(name, embedding_function=None)
            if squatter.count():
                raise
            self._client.delete_collection(name)
            col.modify(name=name)

    def _drop(self, name: str) -> None:
        try:
            self._client.delete_collection(name)
        except Exception:  # absent: nothing to drop
            pass

    def _max_generation(self) -> int:
        gens = [self.generation()]
        for suffix in (PREVIOUS, BUILDING):
            try:
                col = self._client.get_collection(self.name + suffix, embedding_function=None)
            except Exception:
                continue
            gens.append(int((col.metadata or {}).get(_GENERATION, 0)))
        return max(gens)

    def recorded_embed_model(self) -> str:
        """The RAG_EMBED_MODEL value recorded on the live collection ("" when not known); never follows a swap."""
        try:
            col = self._client.get_collection(self.name, embedding_function=None)
        except Exception:
            return ""
        return str((col.metadata or {}).get(_EMBED_MODEL, ""))

    def recorded_embedder(self) -> str:
        """The embedder key the collection was built with."""
        return str(self._fresh_meta().get(_EMBEDDER_KEY, ""))


def collection_counts(path: Path | None, url: str | None) -> dict[str, int]:
    """name → chunk count of every collection in the store (a reindex's temporary copy excluded)."""
    client = _client(path, url)
    out: dict[str, int] = {}
    for col in client.list_collections():
        name = col if isinstance(col, str) else col.name
        if name.endswith(".reindex"):
            continue
        out[name] = int(client.get_collection(name, embedding_function=None).count())
    return dict(sorted(out.items()))


def drop_collection(path: Path | None, url: str | None, name: str) -> bool:
    """Delete a collection and its chunks; False when there was none of that name."""
    from chromadb.errors import NotFoundError

    try:
        _client(path, url).delete_collection(name)
    except (NotFoundError, ValueError):
        return False
    return True


def _collection_meta(identity: EmbedderIdentity, generation: int, embed_model: str) -> dict[str, Any]:
    """What a collection records about itself: the embedder that made its vectors, and its change counter."""
    return {
        _EMBEDDER_KEY: identity.key(),
        _GENERATION: generation,
        _EMBED_MODEL: embed_model,
        "rag:embedder_name": identity.name,
        "rag:embedder_dimension": identity.dimension,
    }


def _stored_meta(text: str, meta: dict[str, Any]) -> dict[str, Any]:
    return {**meta, _TEXT: text}


def _split(document: str | None, meta: dict[str, Any] | None) -> tuple[str, dict[str, Any]]:
    """A record's text and its metadata without it (text from `documents` in collections of earlier versions)."""
    out = dict(meta or {})
    text = out.pop(_TEXT, None)
    return (str(text) if text is not None else document or ""), out


def _public_meta(meta: dict[str, Any] | None) -> dict[str, Any]:
    """Chunk metadata as the API shows it: `page` always present (None when unknown), never the stored text."""
    out = dict(meta or {})
    out.pop(_TEXT, None)
    out.setdefault("page", None)
    return out
