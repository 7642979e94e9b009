"""One chat turn: question → streamed answer with linked citation markers, and the sources panel beside it.

No gradio here: `chat_turn` is a generator of plain states, which the page pushes to the browser as they come.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from rag import ConfigError, RagError
from ui.render import EMPTY_SOURCES, link_citations, rows_from_citations, rows_from_results, sources_html

if TYPE_CHECKING:
    from rag import Index

Message = dict[str, Any]
MODES = ("hybrid", "dense", "keyword")
ANY = "(any)"
SEARCHING = '<div class="rag-sources"><p class="rag-muted">Searching the documents…</p></div>'


@dataclass(slots=True)
class AskOptions:
    """The settings panel: how many chunks, which retrieval, which documents, and whether the LLM answers."""

    top_k: int | None = None
    mode: str | None = None
    source: str | None = None
    mime: str | None = None
    use_llm: bool | None = None
    since: str = ""  # "YYYY-MM-DD": only documents modified on or after that day (UTC)

    def filters(self) -> dict[str, Any] | None:
        """Metadata filters for `ask_stream`: equalities, and `mtime >= day` in Chroma's operator form (which
        `rag.filters` applies to the keyword side too)."""
        found: dict[str, Any] = {k: v for k, v in (("source", self.source), ("mime", self.mime)) if v and v != ANY}
        if self.since and self.since.strip():
            try:
                day = datetime.strptime(self.since.strip(), "%Y-%m-%d").replace(tzinfo=UTC)
            except ValueError as exc:
                raise ConfigError(f"'Modified since' must be a date like 2025-01-31, got {self.since!r}.") from exc
            found["mtime"] = {"$gte": day.timestamp()}
        return found or None


@dataclass(slots=True)
class TurnResult:
    """What the map needs from the last turn: the question and the chunks retrieved for it."""

    question: str = ""
    result_ids: list[str] = field(default_factory=list)
    cited_sources: list[str] = field(default_factory=list)


def chat_turn(
    index: Index, message: str, history: list[Message] | None, options: AskOptions | None = None
) -> Iterator[tuple[list[Message], str, TurnResult]]:
    """Successive (chat history, sources panel HTML, turn) states, the answer growing delta by delta.

    The first state shows the question at once; the second has the retrieved chunks in the panel and an empty
    answer; the last has the cited chunks (or, when nothing was cited, the closest passages, said plainly to be
    uncited).
    """
    opts = options or AskOptions()
    question = message.strip()
    earlier = [{"role": m["role"], "content": str(m["content"])} for m in history or [] if m.get("content")]
    history = [*(history or []), {"role": "user", "content": question}, {"role": "assistant", "content": ""}]
    turn = TurnResult(question)
    yield history, SEARCHING, turn  # the question shows at once, whatever the retrieval and the LLM take
    try:
        # Earlier turns let a follow-up ("and when did he leave?") be rewritten into a standalone question.
        stream = index.ask_stream(
            question, opts.top_k, opts.use_llm, mode=opts.mode, filters=opts.filters(), history=earlier
        )
        turn.result_ids = [r.id for r in stream.results]
        # The chunks are known before the first word: show them while the answer is written.
        retrieved = sources_html(rows_from_results(stream.results), "Retrieved")
        yield history, retrieved, turn
        text = ""
        for delta in stream:
            text += delta
            history = [*history[:-1], {"role": "assistant", "content": text}]
            yield history, retrieved, turn
        answer = stream.answer
    except RagError as exc:
        yield [*history[:-1], {"role": "assistant", "content": f"⚠️ {exc}"}], EMPTY_SOURCES, turn
        return
    content = link_citations(answer.answer)
    if answer.warnings:
        content += "\n\n" + "\n".join(f"> ⚠️ {w}" for w in answer.warnings)
    history = [*history[:-1], {"role": "assistant", "content": content}]
    if answer.citations:
        panel = sources_html(rows_from_citations(answer.citations, answer.results, answer.answer), "Sources")
        turn.cited_sources = list(dict.fromkeys(c.source for c in sorted(answer.citations, key=lambda c: c.n)))
    elif not answer.results:
        panel = sources_html([], "Sources")
    else:
        panel = sources_html(rows_from_results(answer.results), "Closest passages (not cited)")
    yield history, panel, turn
