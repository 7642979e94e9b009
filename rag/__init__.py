"""rag-plugin: keeps a Chroma index of your documents current and answers questions with cited sources.

The public API (the CLI, the UI and the HTTP API use nothing else)::

    import rag
    index = rag.open_index(data_dir="rag-data", collection="default")
    report = index.ingest(["docs/"])            # a sync: unchanged files are skipped
    hits = index.search("refund policy", top_k=5)
    answer = index.ask("What is the refund policy?")
    print(answer.answer, [c.source for c in answer.citations])
    index.documents(); index.remove_document(document_id)      # what the collection holds
    rag.list_collections(); rag.delete_collection("old")        # the collections of the data dir
    index.embedding_map("refund policy")                        # 2-D PCA map of the chunks, question placed

Imports of heavy libraries happen when an index is opened, never at `import rag`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from rag.errors import (
    ConfigError,
    EmbedderMismatch,
    EmbeddingError,
    IndexBusy,
    LLMError,
    RagError,
    SourceError,
    StoreError,
    UnsupportedFormat,
)
from rag.settings import Settings, load_settings
from rag.types import Answer, AnswerStream, Citation, IngestEvent, IngestReport, SearchResult

if TYPE_CHECKING:
    from rag.collections import delete_collection, list_collections
    from rag.embedding_map import EmbeddingMap, MapPoint
    from rag.index import Index

__version__ = "0.1.0"


def open_index(settings: Settings | None = None, **overrides: Any) -> Index:
    """Open (creating if needed) a collection; `overrides` are Settings fields, e.g. `collection="notes"`."""
    from rag.index import open_index as _open

    return _open(settings, **overrides)


def search(
    query: str,
    top_k: int | None = None,
    mode: str | None = None,
    filters: dict[str, Any] | None = None,
    **overrides: Any,
) -> list[SearchResult]:
    """One-call retrieval with no llama-index knowledge: `rag.search("refund policy", collection="notes")`.

    Opens the configured index (Settings `overrides`), returns the best chunks, best first (higher score = better).
    For many queries, keep an `open_index()` and call its `search()` instead.
    """
    return open_index(**overrides).search(query, top_k=top_k, mode=mode, filters=filters)


def demo_corpus() -> Path:
    """The small document set bundled with the package, for `rag ui --demo` and first steps."""
    return Path(__file__).parent / "demo"


def __getattr__(name: str) -> Any:
    if name == "Index":  # lazily, so `import rag` stays light
        from rag.index import Index

        return Index
    if name in ("list_collections", "delete_collection"):
        from rag import collections

        return getattr(collections, name)
    if name in ("EmbeddingMap", "MapPoint"):
        from rag import embedding_map

        return getattr(embedding_map, name)
    raise AttributeError(f"module 'rag' has no attribute {name!r}")


__all__ = [
    "Answer",
    "AnswerStream",
    "Citation",
    "ConfigError",
    "EmbedderMismatch",
    "EmbeddingError",
    "EmbeddingMap",
    "Index",
    "IndexBusy",
    "IngestEvent",
    "IngestReport",
    "LLMError",
    "MapPoint",
    "RagError",
    "SearchResult",
    "Settings",
    "SourceError",
    "StoreError",
    "UnsupportedFormat",
    "__version__",
    "delete_collection",
    "demo_corpus",
    "list_collections",
    "load_settings",
    "open_index",
    "search",
]
