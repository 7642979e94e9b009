"""rag-plugin's hybrid search as a llama-index retriever, for chat engines and query engines built with llama-index.

    import rag
    from rag.llama_retriever import RagRetriever
    from llama_index.core.chat_engine import ContextChatEngine

    retriever = RagRetriever(rag.open_index(collection="notes"), top_k=5)
    engine = ContextChatEngine.from_defaults(retriever=retriever, llm=my_llm)

The only module that imports llama-index's retriever types; `rag.search()`-style use needs none of this.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from llama_index.core.retrievers import BaseRetriever
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

if TYPE_CHECKING:
    from rag.index import Index
    from rag.types import SearchResult


def to_node(result: SearchResult) -> NodeWithScore:
    """One search result as a llama-index node: the chunk id is the node id, its metadata (source, page…) kept."""
    meta = dict(result.metadata)
    node = TextNode(
        id_=result.id,
        text=result.text,
        metadata=meta,
        # Long metadata (hashes, counts) would crowd the LLM's context; show it only the useful fields.
        excluded_llm_metadata_keys=[k for k in meta if k not in ("source", "title", "page", "heading")],
        excluded_embed_metadata_keys=list(meta),
    )
    return NodeWithScore(node=node, score=result.score)


class RagRetriever(BaseRetriever):
    """Hybrid (or dense / keyword) retrieval over an `Index`, best first, one node per chunk (unique ids)."""

    def __init__(
        self,
        index: Index,
        top_k: int | None = None,
        mode: str | None = None,
        filters: dict[str, Any] | None = None,
        mmr: bool | None = None,
        **kwargs: Any,
    ) -> None:
        self._index = index
        self._top_k = top_k
        self._mode = mode
        self._filters = filters
        self._mmr = mmr
        super().__init__(**kwargs)

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        results = self._index.search(
            query_bundle.query_str, top_k=self._top_k, mode=self._mode, filters=self._filters, mmr=self._mmr
        )
        return [to_node(r) for r in results]

    async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        # Embedding and the Chroma/BM25 lookups block; a worker thread keeps the event loop free meanwhile.
        return await asyncio.to_thread(self._retrieve, query_bundle)
