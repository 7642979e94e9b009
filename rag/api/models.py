"""Request and response models of the HTTP API.

The retrieval-plugin models follow the published OpenAPI schema of openai/chatgpt-retrieval-plugin (field
names, types and defaults, `top_k` default 3) so its clients work unchanged; responses leave out null fields so
that validators of that schema (which declares none nullable) accept them.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Source(str, Enum):  # noqa: UP042 (the plugin's schema names this enum; StrEnum renders the same)
    email = "email"
    file = "file"
    chat = "chat"


class DocumentMetadata(BaseModel):
    source: Source | None = None
    source_id: str | None = None
    url: str | None = None
    created_at: str | None = Field(None, description="Any ISO 8601 date or date-time; no zone means UTC.")
    author: str | None = None


class DocumentChunkMetadata(DocumentMetadata):
    """Also carries `page`, `title` and `heading` when known (extra keys, which the plugin's clients ignore)."""

    model_config = ConfigDict(extra="allow")
    document_id: str | None = None


class DocumentChunkWithScore(BaseModel):
    id: str | None = None
    text: str
    metadata: DocumentChunkMetadata
    embedding: list[float] | None = None
    score: float = Field(description="Higher is more relevant.")


class Document(BaseModel):
    id: str | None = Field(None, description="Your id; re-upserting it replaces the document. Default: a new one.")
    text: str
    metadata: DocumentMetadata | None = None


class DocumentMetadataFilter(BaseModel):
    document_id: str | None = None
    source: Source | None = None
    source_id: str | None = None
    author: str | None = None
    start_date: str | None = Field(None, description="Any ISO 8601 date: created at or after it.")
    end_date: str | None = Field(
        None, description="Any ISO 8601 date: created at or before it (a bare date: that day)."
    )


class Query(BaseModel):
    query: str
    filter: DocumentMetadataFilter | None = None
    top_k: int | None = 3


class QueryResult(BaseModel):
    query: str
    results: list[DocumentChunkWithScore]


class UpsertRequest(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "documents": [
                        {
                            "id": "memo-42",
                            "text": "The meal allowance in Europe is 45 EUR a day.",
                            "metadata": {"source": "email", "author": "finance", "created_at": "2024-05-01"},
                        }
                    ]
                }
            ]
        }
    )
    documents: list[Document]


class UpsertResponse(BaseModel):
    ids: list[str]


class QueryRequest(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "queries": [
                        {"query": "meal allowance in Europe", "top_k": 3},
                        {"query": "refund policy", "filter": {"source": "file", "start_date": "2024-01-01"}},
                    ]
                }
            ]
        }
    )
    queries: list[Query]


class QueryResponse(BaseModel):
    results: list[QueryResult]


class DeleteRequest(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"ids": ["memo-42"]}, {"filter": {"author": "finance"}}, {"delete_all": True}]}
    )
    ids: list[str] | None = Field(None, description="Document ids (as /upsert returned them).")
    filter: DocumentMetadataFilter | None = None
    delete_all: bool | None = False


class DeleteResponse(BaseModel):
    success: bool


class ErrorResponse(BaseModel):
    error: str = Field(description="The error's name, e.g. Unauthorized, ConfigError, PayloadTooLarge.")
    message: str = Field(description="What went wrong and what to do about it.")


# --- OpenAI-compatible chat ---------------------------------------------------------------------------------


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: str
    content: str | list[dict[str, Any]] | None = None

    def text(self) -> str:
        """The message's text; content parts (`[{"type": "text", "text": ...}]`) are joined."""
        if isinstance(self.content, list):
            return "\n".join(str(p.get("text", "")) for p in self.content if p.get("type") == "text")
        return self.content or ""


class ChatCompletionRequest(BaseModel):
    """OpenAI's chat completions request; fields we do not use (temperature, n, …) are accepted and ignored."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "model": "rag",
                    "messages": [{"role": "user", "content": "What is the meal allowance in Europe?"}],
                    "stream": False,
                    "footnotes": True,
                }
            ]
        },
    )
    model: str | None = None
    messages: list[ChatMessage]
    stream: bool | None = False
    top_k: int | None = Field(None, description="Chunks to retrieve (rag extension; default RAG_TOP_K).")
    footnotes: bool | None = Field(None, description="Append a numbered source list (rag extension).")
