"""The baseline a user would time us against: llama-index's own ingestion pipeline into Chroma.

SimpleDirectoryReader → IngestionPipeline(SentenceSplitter at our chunk size and overlap, all-MiniLM-L6-v2 as a
full-precision ONNX `BaseEmbedding` with llama-index's default batching of 10 texts, unsorted) → ChromaVectorStore
in a fresh persistent Chroma. Needs the `[bench]` extra (llama-index-vector-stores-chroma).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from bench.common import OnnxRunner, timed


def make_embedding(runner: OnnxRunner) -> Any:
    from llama_index.core.base.embeddings.base import BaseEmbedding

    class OnnxMiniLM(BaseEmbedding):
        """all-MiniLM-L6-v2 fp32 on onnxruntime, the way a llama-index user would wrap it."""

        def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
            return runner.embed(texts, batch=len(texts), sort=False).tolist()

        def _get_text_embedding(self, text: str) -> list[float]:
            return self._get_text_embeddings([text])[0]

        def _get_query_embedding(self, query: str) -> list[float]:
            return self._get_text_embedding(query)

        async def _aget_query_embedding(self, query: str) -> list[float]:
            return self._get_query_embedding(query)

    return OnnxMiniLM(model_name="all-MiniLM-L6-v2-fp32-onnx")  # embed_batch_size stays at its default (10)


def run_llamaindex(folder: Path, workdir: Path, runner: OnnxRunner, chunk_size: int, overlap: int) -> dict[str, Any]:
    """Ingest `folder` the llama-index way; returns chunks, wall and CPU seconds (reading files included)."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings
    from llama_index.core import SimpleDirectoryReader
    from llama_index.core.ingestion import IngestionPipeline
    from llama_index.core.node_parser import SentenceSplitter
    from llama_index.vector_stores.chroma import ChromaVectorStore

    settings = ChromaSettings(anonymized_telemetry=False)
    client = chromadb.PersistentClient(path=str(workdir / "chroma"), settings=settings)
    collection = client.get_or_create_collection("baseline", metadata={"hnsw:space": "cosine"})
    pipeline = IngestionPipeline(
        transformations=[SentenceSplitter(chunk_size=chunk_size, chunk_overlap=overlap), make_embedding(runner)],
        vector_store=ChromaVectorStore(chroma_collection=collection),
    )
    # It warns once per file that optional readers (PDF, DOCX…) are missing; plain .txt needs none of them.
    logging.getLogger("llama_index.core.readers.file.base").setLevel(logging.ERROR)
    with timed() as t:
        documents = SimpleDirectoryReader(str(folder)).load_data(show_progress=False)
        nodes = pipeline.run(documents=documents, show_progress=False)
    return {"chunks": len(nodes), "stored": collection.count(), "wall": t.wall, "cpu": t.cpu}
