"""OpenAI-compatible chat: `POST /v1/chat/completions` (plain or streamed as server-sent events) and
`GET /v1/models`, so any OpenAI-compatible front end or the `openai` client can use rag as its "model".

The answer is retrieval-augmented from the index: the last user message is the question. The cited chunks come
back in an extra `sources` field (in the last chunk of a stream) and, when asked (`footnotes`), as a numbered list
appended to the text.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from rag.api.models import ChatCompletionRequest
from rag.errors import ConfigError, RagError
from rag.records import plugin_metadata

if TYPE_CHECKING:
    from rag.index import Index
    from rag.types import Answer, AnswerStream

router = APIRouter(prefix="/v1")


@router.get("/models")
async def models(request: Request) -> dict[str, Any]:
    """The one model this server offers: the index, answering with citations."""
    index: Index = request.app.state.index
    return {
        "object": "list",
        "data": [
            {
                "id": index.settings.api_model_name,
                "object": "model",
                "created": int(request.app.state.started),
                "owned_by": "rag-plugin",
            }
        ],
    }


@router.post("/chat/completions", response_model=None)
async def chat_completions(body: ChatCompletionRequest, request: Request) -> JSONResponse | StreamingResponse:
    """Answer the last user message from the index (earlier turns as history), with cited `sources`."""
    index: Index = request.app.state.index
    s = index.settings
    question = next((m.text() for m in reversed(body.messages) if m.role == "user"), "").strip()
    if not question:
        raise ConfigError("The messages hold no user message with text: nothing to answer.")
    top_k = body.top_k or s.top_k
    if not 1 <= top_k <= s.api_max_top_k:
        raise ConfigError(f"top_k must be between 1 and {s.api_max_top_k} (api_max_top_k), got {top_k}.")
    footnotes = s.api_footnotes if body.footnotes is None else body.footnotes
    model = body.model or s.api_model_name
    # Earlier user/assistant turns are the history: a follow-up is rewritten into a standalone question.
    turns = [{"role": m.role, "content": m.text()} for m in body.messages if m.role in ("user", "assistant")]
    while turns and turns[-1]["role"] != "user":
        turns.pop()
    stream = await run_in_threadpool(index.chat, turns, top_k)
    meta = {"id": f"chatcmpl-{uuid.uuid4().hex}", "created": int(time.time()), "model": model}
    if not body.stream:
        answer = await run_in_threadpool(lambda: stream.answer)
        text = answer.answer + (footnote_text(answer) if footnotes else "")
        return JSONResponse(
            {
                **meta,
                "object": "chat.completion",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                "sources": sources(answer),
            }
        )
    # A sync generator: Starlette iterates it in a worker thread, so the LLM's pace never blocks the loop.
    return StreamingResponse(
        _events(stream, meta, footnotes),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _events(stream: AnswerStream, meta: dict[str, Any], footnotes: bool) -> Iterator[str]:
    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        body = {
            **meta,
            "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        return f"data: {json.dumps({**body, **extra}, ensure_ascii=False)}\n\n"

    yield chunk({"role": "assistant", "content": ""})
    try:
        for piece in stream:
            yield chunk({"content": piece})
        answer = stream.answer
        if footnotes and answer.citations:
            yield chunk({"content": footnote_text(answer)})
        yield chunk({}, "stop", sources=sources(answer))
    except RagError as exc:  # the status line is sent already: report in-band, as OpenAI does
        yield f"data: {json.dumps({'error': {'message': str(exc), 'type': exc.name, 'code': exc.http_status}})}\n\n"
    yield "data: [DONE]\n\n"


def sources(answer: Answer) -> list[dict[str, Any]]:
    """The cited chunks, numbered as in the answer, with plugin-style metadata (source_id, url, page, …)."""
    by_id = {r.id: r for r in answer.results}
    out = []
    for c in answer.citations:
        item = c.to_dict()
        hit = by_id.get(c.id)
        if hit is not None:
            item["score"] = hit.score
            item["metadata"] = plugin_metadata(hit.metadata)
        out.append(item)
    return out


def footnote_text(answer: Answer) -> str:
    """`Sources:` then one line per citation: `[n] title or source, p. N` (a URL when there is one)."""
    if not answer.citations:
        return ""
    by_id = {r.id: r for r in answer.results}
    lines = []
    for c in answer.citations:
        meta = by_id[c.id].metadata if c.id in by_id else {}
        where = str(meta.get("url") or c.source)
        title = str(meta.get("title") or "")
        label = f"{title} ({where})" if title and title != where else where
        if c.page is not None:
            label += f", p. {c.page}"
        elif c.heading:
            label += f" › {c.heading}"
        lines.append(f"[{c.n}] {label}")
    return "\n\nSources:\n" + "\n".join(lines)
