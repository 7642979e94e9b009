"""The small error tree every entry point shares.

    RagError                    base: `name`, `http_status`, a message that says what to do next
    ├── ConfigError             a setting is invalid or contradicts another (400)
    ├── SourceError             one source could not be read; reported per source, never fatal to a batch (422)
    │   └── UnsupportedFormat   no connector for this file type (415)
    ├── StoreError              the index cannot be opened or written (503)
    │   ├── EmbedderMismatch    the collection was built by another embedder (409)
    │   └── IndexBusy           another ingest or reindex is writing to the same data dir (409)
    ├── EmbeddingError          the embedder failed (model missing, endpoint down) (502)
    └── LLMError                the LLM endpoint failed (502)

Third-party exceptions are translated into these once, at the adapter that calls the library, so the CLI can
print them without a traceback and the HTTP API can return them as JSON.
"""

from __future__ import annotations


class RagError(Exception):
    """Base of every error rag-plugin raises on purpose."""

    http_status: int = 500

    @property
    def name(self) -> str:
        return type(self).__name__

    def to_dict(self) -> dict[str, str]:
        return {"error": self.name, "message": str(self)}


class ConfigError(RagError):
    http_status = 400


class SourceError(RagError):
    """A source (file, folder entry, URL) that could not be turned into documents."""

    http_status = 422

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.reason = reason


class UnsupportedFormat(SourceError):
    http_status = 415


class StoreError(RagError):
    http_status = 503


class EmbedderMismatch(StoreError):
    http_status = 409


class IndexBusy(StoreError):
    """Another process (or thread) holds the data dir's write lock; the message names it."""

    http_status = 409


class EmbeddingError(RagError):
    http_status = 502


class LLMError(RagError):
    http_status = 502


__all__ = [
    "ConfigError",
    "EmbedderMismatch",
    "EmbeddingError",
    "IndexBusy",
    "LLMError",
    "RagError",
    "SourceError",
    "StoreError",
    "UnsupportedFormat",
]
