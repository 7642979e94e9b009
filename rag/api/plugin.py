"""The retrieval plugin's routes: `/upsert`, `/upsert-file`, `/query`, `/delete` — thin, over `rag.Index`.

Every call into the index blocks (embedding, Chroma), so it runs in a worker thread: the event loop keeps
answering other requests meanwhile.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, File, Form, Request, UploadFile
from starlette.concurrency import run_in_threadpool

from rag.api.models import (
    DeleteRequest,
    DeleteResponse,
    DocumentChunkWithScore,
    ErrorResponse,
    QueryRequest,
    QueryResponse,
    QueryResult,
    UpsertRequest,
    UpsertResponse,
)
from rag.errors import ConfigError, RagError
from rag.records import plugin_metadata, plugin_where

if TYPE_CHECKING:
    from rag.index import Index

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse, "description": text}
    for code, text in [
        (400, "Invalid request (e.g. top_k over the cap)"),
        (401, "Missing or invalid bearer token"),
        (413, "Request or file too large"),
        (422, "Request does not match the schema"),
    ]
}

router = APIRouter(responses=ERRORS)


class PayloadTooLarge(RagError):
    """A file over `api_max_file_mb` (the body cap leaves room for the multipart envelope; the file is exact)."""

    http_status = 413


def _index(request: Request) -> Index:
    return request.app.state.index  # type: ignore[no-any-return]


@router.post("/upsert", response_model=UpsertResponse, response_model_exclude_none=True)
async def upsert(body: UpsertRequest, request: Request) -> UpsertResponse:
    """Store documents; re-upserting an id replaces every old chunk of it. Returns the document ids."""
    docs = [d.model_dump(exclude_none=True, mode="json") for d in body.documents]
    ids = await run_in_threadpool(_index(request).upsert_texts, docs)
    return UpsertResponse(ids=ids)


@router.post("/upsert-file", response_model=UpsertResponse, response_model_exclude_none=True)
async def upsert_file(
    request: Request,
    file: Annotated[UploadFile, File(description="A .txt, .md, .html or .pdf file.")],
    metadata: Annotated[str | None, Form(description='Optional JSON, e.g. {"author": "ann"}.')] = None,
) -> UpsertResponse:
    """Index an uploaded file; its `source_id` defaults to the file name, so uploading it again replaces it."""
    index = _index(request)
    try:
        meta = json.loads(metadata) if metadata else {}
    except json.JSONDecodeError as exc:
        raise ConfigError(f'metadata must be a JSON object, e.g. {{"author": "ann"}}: {exc}') from exc
    if not isinstance(meta, dict):
        raise ConfigError('metadata must be a JSON object, e.g. {"author": "ann"}.')
    limit = int(index.settings.api_max_file_mb * 1_000_000)
    data = await file.read(limit + 1)
    if len(data) > limit:
        raise PayloadTooLarge(f"The file is larger than the {limit / 1e6:g} MB limit (api_max_file_mb).")
    document_id = await run_in_threadpool(index.upsert_file, file.filename or "upload", data, meta)
    return UpsertResponse(ids=[document_id])


@router.post("/query", response_model=QueryResponse, response_model_exclude_none=True)
async def query(body: QueryRequest, request: Request) -> QueryResponse:
    """Accepts search query objects array each with query and optional filter. Break down complex questions
    into sub-questions. Refine results by criteria, e.g. time / source, don't do this often. Split queries if
    ResponseTooLargeError occurs. Results are best first; higher score is more relevant."""
    index = _index(request)
    s = index.settings
    if len(body.queries) > s.api_max_queries:
        raise ConfigError(f"{len(body.queries)} queries in one request; the limit is {s.api_max_queries}.")
    ks = [3 if q.top_k is None else q.top_k for q in body.queries]
    for k in ks:
        if not 1 <= k <= s.api_max_top_k:
            raise ConfigError(f"top_k must be between 1 and {s.api_max_top_k} (api_max_top_k), got {k}.")
    wheres = [
        plugin_where(q.filter.model_dump(exclude_none=True, mode="json")) if q.filter else None for q in body.queries
    ]
    found = await run_in_threadpool(index.search_many, [q.query for q in body.queries], ks, wheres)
    return QueryResponse(
        results=[
            QueryResult(
                query=q.query,
                results=[
                    DocumentChunkWithScore.model_validate(
                        {"id": r.id, "text": r.text, "score": r.score, "metadata": plugin_metadata(r.metadata)}
                    )
                    for r in hits
                ],
            )
            for q, hits in zip(body.queries, found, strict=True)
        ]
    )


@router.delete("/delete", response_model=DeleteResponse)
async def delete(body: DeleteRequest, request: Request) -> DeleteResponse:
    """Delete documents by id, by filter (both given: those matching both), or everything (`delete_all`)."""
    where = plugin_where(body.filter.model_dump(exclude_none=True, mode="json")) if body.filter else None
    if not (body.ids or where or body.delete_all):
        raise ConfigError("Give one of ids, a non-empty filter, or delete_all: true.")
    await run_in_threadpool(_index(request).delete, body.ids, where, bool(body.delete_all))
    return DeleteResponse(success=True)
