"""The HTTP API's app factory and server.

    create_app(index)                  → a FastAPI app over one `rag.Index` (tests build their own)
    make_server(index, host, port)     → a uvicorn.Server, after refusing a non-loopback bind without a token

Layers, outermost first: CORS (only when origins are configured) → loopback guard (only without a token) →
bearer auth → body-size cap → routes.
Every error is JSON: `{"error": name, "message": …}` (under `/v1`, OpenAI's `{"error": {"message", "type"}}`).
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from fastapi import Depends, FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPBearer
from starlette.exceptions import HTTPException as StarletteHTTPException

from rag.api import openai_compat, plugin
from rag.api.security import BearerAuth, BodyLimit, LoopbackGuard, check_bind, error_body
from rag.errors import RagError

if TYPE_CHECKING:
    import uvicorn

    from rag.index import Index

log = logging.getLogger("rag.api")

_STATUS_NAMES = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    413: "PayloadTooLarge",
    415: "UnsupportedMediaType",
}


def _error(request: Request, status: int, name: str, message: str, **extra: Any) -> JSONResponse:
    body = error_body(request.url.path, status, name, message)
    if extra and "message" in body:
        body.update(extra)
    return JSONResponse(jsonable_encoder(body), status_code=status)


def create_app(index: Index) -> FastAPI:
    """The API over `index`; auth, caps and CORS come from `index.settings`."""
    from rag import __version__

    s = index.settings
    token = s.api_token.get_secret_value() if s.api_token else None
    app = FastAPI(
        title="rag-plugin",
        version=__version__,
        description=(
            "A retrieval plugin for LLM chat applications: the retrieval plugin's `/upsert`, `/upsert-file`, "
            "`/query`, `/delete`, and an OpenAI-compatible `/v1/chat/completions` answering with cited sources. "
            "Every route but `/health` needs `Authorization: Bearer <RAG_API_TOKEN>` when a token is set."
        ),
        docs_url=None if token else "/docs",  # the page could not fetch the schema without the token
        redoc_url=None,
    )
    app.state.index = index
    app.state.started = time.time()
    bearer = HTTPBearer(auto_error=False, description="RAG_API_TOKEN")  # documents the scheme; BearerAuth checks
    app.include_router(plugin.router, dependencies=[Depends(bearer)])
    app.include_router(openai_compat.router, dependencies=[Depends(bearer)], responses=plugin.ERRORS)

    @app.get("/health")
    async def health() -> dict[str, Any]:
        """Liveness, open without a token; says nothing about the index's contents."""
        return {"status": "ok", "version": __version__}

    @app.exception_handler(RagError)
    async def rag_error(request: Request, exc: RagError) -> JSONResponse:
        return _error(request, exc.http_status, exc.name, str(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'] if p != 'body') or 'body'}: {e['msg']}" for e in exc.errors()
        )
        return _error(
            request, 422, "ValidationError", f"The request does not match the schema: {problems}", detail=exc.errors()
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        name = _STATUS_NAMES.get(exc.status_code, "HTTPError")
        return _error(request, exc.status_code, name, str(exc.detail))

    @app.exception_handler(Exception)
    async def crash(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s", request.url.path)
        # The message may hold paths or internals: the client gets the type, the log the rest.
        return _error(
            request, 500, "InternalError", f"Unexpected {type(exc).__name__}; the server log has the details."
        )

    limit = int(s.api_max_request_mb * 1_000_000)
    upload = int(s.api_max_file_mb * 1_000_000) + 1_000_000  # room for the multipart envelope and metadata
    app.add_middleware(BodyLimit, default=limit, per_path={"/upsert-file": upload})
    app.add_middleware(BearerAuth, token=token)
    if token is None:
        app.add_middleware(LoopbackGuard, allowed_origins=s.api_cors_origins)
    if s.api_cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=s.api_cors_origins,
            allow_methods=["GET", "POST", "DELETE", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type"],
        )
    return app


def make_server(index: Index, host: str = "127.0.0.1", port: int = 8000, log_level: str = "info") -> uvicorn.Server:
    """A uvicorn server for `create_app(index)`; raises ConfigError for a non-loopback host without a token."""
    import uvicorn

    token = index.settings.api_token.get_secret_value() if index.settings.api_token else None
    check_bind(host, token)
    config = uvicorn.Config(create_app(index), host=host, port=port, log_level=log_level, lifespan="off")
    return uvicorn.Server(config)
