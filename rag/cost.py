"""What an ingest will cost before it is spent: the chunks a paid embedding API would be sent, counted with tiktoken.

    est = index.estimate_cost(["docs/"])      # or estimate(sources, settings, store=None)
    print(est.tokens, est.chunks, f"${est.usd:.4f}")

The estimate runs the real connectors and chunker (no embedding), skips documents the index already holds
unchanged (ingest would skip them too), and counts exactly the text ingest would send: `embed_text` of each chunk,
truncated at the API's 8,191 tokens. OpenAI's embedding models all use `cl100k_base`. Local models cost 0.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import connectors
from rag.chunking import chunk_document, get_encoding
from rag.embeddings import OPENAI_MAX_TOKENS
from rag.errors import SourceError, UnsupportedFormat
from rag.settings import Settings

if TYPE_CHECKING:
    from rag.store import ChromaStore


@dataclass
class CostEstimate:
    """Tokens and price of embedding what an ingest of `sources` would embed."""

    model: str
    documents: int = 0  # documents that would be embedded (new or changed)
    unchanged: int = 0  # already indexed with the same content: skipped, free
    chunks: int = 0
    tokens: int = 0
    price_per_million: float = 0.0
    failed: list[dict[str, str]] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)

    @property
    def usd(self) -> float:
        return self.tokens * self.price_per_million / 1_000_000

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "usd": round(self.usd, 6)}

    def summary(self) -> str:
        price = f"${self.usd:.4f} at ${self.price_per_million:g}/1M tokens" if self.price_per_million else "free"
        return (
            f"{self.documents} documents to embed ({self.unchanged} unchanged), {self.chunks} chunks, "
            f"{self.tokens:,} tokens with {self.model}: {price}"
        )


def price_per_million(settings: Settings) -> float:
    """USD per million tokens of the configured embedder: from `embed_prices` for 'openai:' models, else 0."""
    prefix, _, model = settings.embed_model.strip().partition(":")
    if prefix != "openai":
        return 0.0
    return float(settings.embed_prices.get(model.strip(), 0.0))


def estimate(
    sources: Iterable[str | Path],
    settings: Settings,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    store: ChromaStore | None = None,
) -> CostEstimate:
    """Walk and chunk `sources` as ingest would, counting the tokens of what would be embedded."""
    from rag.indexing import embed_text  # what ingest sends for a chunk (read-only use of the sync module)

    enc = get_encoding()
    est = CostEstimate(model=settings.embed_model, price_per_million=price_per_million(settings))
    for item in connectors.discover([str(s) for s in sources], include, exclude):
        if isinstance(item, UnsupportedFormat):
            est.skipped.append({"source": item.source, "reason": item.reason})
            continue
        if isinstance(item, SourceError):
            est.failed.append({"source": item.source, "error": item.reason})
            continue
        try:
            doc = connectors.load(item)
        except SourceError as exc:
            est.failed.append({"source": exc.source, "error": exc.reason})
            continue
        if store is not None:
            state = store.document_state(doc.document_id)
            if state is not None and state.sha256 == doc.sha256 and state.complete:
                est.unchanged += 1
                continue
        chunks = chunk_document(doc, settings.chunk_size, settings.chunk_overlap)
        if not chunks:
            continue
        est.documents += 1
        est.chunks += len(chunks)
        est.tokens += sum(
            min(len(enc.encode_ordinary(embed_text(c.text, c.metadata))), OPENAI_MAX_TOKENS) for c in chunks
        )
    return est


def estimate_reindex(store: ChromaStore, settings: Settings) -> CostEstimate:
    """Tokens and price of re-embedding every chunk of `store` with the embedder `settings` names."""
    from rag.indexing import embed_text

    enc = get_encoding()
    est = CostEstimate(model=settings.embed_model, price_per_million=price_per_million(settings))
    documents: set[str] = set()
    for row in store.iter_chunks():
        documents.add(str(row["metadata"].get("document_id", "")))
        est.chunks += 1
        est.tokens += min(len(enc.encode_ordinary(embed_text(row["text"] or "", row["metadata"]))), OPENAI_MAX_TOKENS)
    est.documents = len(documents)
    return est
