"""BM25 keyword search over the collection's chunks (bm25s, English stemming and stop words).

Chroma has no lexical ranking, and dense retrieval misses exact names, numbers and rare terms, so hybrid search
needs this. The index is derived data, so it cannot drift for long: it is rebuilt from the store when the store's
generation changes (every ingest, update or delete bumps it), and it is verified against the store's ids when
first loaded in a process and whenever the chunk count differs — so a crash between writing chunks and bumping the
generation is caught on the next open. It is cached on disk under `RAG_DATA_DIR/keyword/` so a new process does
not rebuild it.

Chunks are indexed with their document title and heading in front, as the embedder sees them: a title carries
the words a question uses (measured on SciFact, README "Retrieval quality").
"""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rag.store import ChromaStore


def keyword_text(text: str, metadata: dict[str, Any]) -> str:
    """What BM25 indexes for a chunk: title and heading, then the text."""
    head = " ".join(str(p) for p in (metadata.get("title"), metadata.get("heading")) if p)
    return f"{head}\n{text}" if head else text


def _tokenize(texts: list[str], stemmer: Any) -> list[list[str]]:
    import bm25s

    return bm25s.tokenize(texts, stopwords="en", stemmer=stemmer, return_ids=False, show_progress=False)


class KeywordIndex:
    """BM25 over one collection; `search()` returns `(chunk_id, score)` pairs, best first, scores > 0 only."""

    def __init__(self, store: ChromaStore, cache_dir: Path) -> None:
        self._store = store
        self._dir = cache_dir / store.name
        self._lock = threading.Lock()
        self._generation: int | None = None
        self._bm25: Any = None
        self._ids: list[str] = []
        self._stemmer: Any = None

    def size(self) -> int:
        """How many chunks the index holds."""
        with self._lock:
            self._ensure()
            return len(self._ids)

    def _ensure(self) -> None:
        generation = self._store.generation()
        if generation == self._generation and self._store.count() == len(self._ids):
            return
        import bm25s
        import Stemmer

        self._stemmer = self._stemmer or Stemmer.Stemmer("english")
        stamp = self._dir / "stamp.json"
        if stamp.is_file() and json.loads(stamp.read_text()).get("generation") == generation:
            try:
                ids = json.loads((self._dir / "ids.json").read_text())
                if set(ids) == self._store_ids():  # verify on open: a crash may have left the stamp stale
                    self._bm25 = bm25s.BM25.load(str(self._dir / "bm25"))
                    self._ids = ids
                    self._generation = generation
                    return
            except (OSError, ValueError):
                pass  # a damaged or stale cache is rebuilt below
        ids, texts = [], []
        for row in self._store.iter_chunks():
            ids.append(row["id"])
            texts.append(keyword_text(row["text"] or "", row["metadata"] or {}))
        bm25 = None
        if texts:
            bm25 = bm25s.BM25()
            bm25.index(_tokenize(texts, self._stemmer), show_progress=False)
        self._bm25, self._ids, self._generation = bm25, ids, generation
        if bm25 is not None:
            self._save(bm25, ids, generation)

    def _store_ids(self) -> set[str]:
        return {row["id"] for row in self._store.iter_chunks(batch=5000)}

    def _save(self, bm25: Any, ids: list[str], generation: int) -> None:
        tmp = self._dir.with_name(self._dir.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        bm25.save(str(tmp / "bm25"))
        (tmp / "ids.json").write_text(json.dumps(ids))
        (tmp / "stamp.json").write_text(json.dumps({"generation": generation}))
        shutil.rmtree(self._dir, ignore_errors=True)
        tmp.rename(self._dir)

    def search(self, query: str, k: int) -> list[tuple[str, float]]:
        with self._lock:
            self._ensure()
            if self._bm25 is None or not self._ids:
                return []
            tokens = _tokenize([query], self._stemmer)
            if not tokens or not tokens[0]:
                return []
            docs, scores = self._bm25.retrieve(tokens, k=min(k, len(self._ids)), show_progress=False)
        return [(self._ids[int(d)], float(s)) for d, s in zip(docs[0], scores[0], strict=True) if s > 0]
