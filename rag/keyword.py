"""BM25 keyword search over the collection's chunks (bm25s, English stemming and stop words).

Chroma has no lexical ranking, and dense retrieval misses exact names, numbers and rare terms, so hybrid search
needs this. The index is derived data: rebuilt from the store when the store's generation changes, and cached on
disk under `RAG_DATA_DIR/keyword/` so a new process does not rebuild it.
"""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rag.store import ChromaStore


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

    def _ensure(self) -> None:
        generation = self._store.generation()
        if generation == self._generation:
            return
        import bm25s
        import Stemmer

        self._stemmer = self._stemmer or Stemmer.Stemmer("english")
        stamp = self._dir / "stamp.json"
        if stamp.is_file() and json.loads(stamp.read_text()).get("generation") == generation:
            try:
                self._bm25 = bm25s.BM25.load(str(self._dir / "bm25"))
                self._ids = json.loads((self._dir / "ids.json").read_text())
                self._generation = generation
                return
            except (OSError, ValueError):
                pass  # a damaged cache is rebuilt below
        ids, texts = [], []
        for row in self._store.iter_chunks():
            ids.append(row["id"])
            texts.append(row["text"] or "")
        bm25 = None
        if texts:
            bm25 = bm25s.BM25()
            bm25.index(_tokenize(texts, self._stemmer), show_progress=False)
        self._bm25, self._ids, self._generation = bm25, ids, generation
        if bm25 is not None:
            self._save(bm25, ids, generation)

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
