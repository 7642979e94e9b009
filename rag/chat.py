"""The answer pipeline: (condense a follow-up) → retrieve → not-found gate → fit the token budget → LLM
(streamed) or extractive → resolve and check citations.

`Index.ask_stream` does the retrieval and calls `standalone_question` and `answer_stream` from here; the UI, the
CLI and the HTTP API all go through it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from rag import extractive
from rag.budget import counter, fit, message_tokens
from rag.citations import check, resolve, says_not_found
from rag.embeddings import Embedder
from rag.errors import LLMError
from rag.llm import ChatLLM
from rag.prompts import NOT_FOUND_MESSAGE, build_messages, condense_messages, context_block, new_boundary
from rag.types import Answer, AnswerStream, SearchResult

# A question that leans on the conversation: a pronoun or "that/there", or an opening "and/but/what about".
_FOLLOW_UP = re.compile(
    r"\b(he|she|it|they|him|her|his|hers|its|their|them|this|that|these|those|there|then|the same|"
    r"the (?:first|second|last|other) one)\b|^\s*(and|but|or|so|also|what about|how about)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class ChatConfig:
    """The settings the pipeline needs (built from `Settings` by the Index)."""

    model: str = "gpt-4o-mini"
    context_window: int = 8192
    answer_reserve: int = 512
    not_found_threshold: float | None = None
    system_prompt: str | None = None
    condense_prompt: str | None = None


def is_follow_up(question: str) -> bool:
    return bool(_FOLLOW_UP.search(question))


def clean_history(history: Sequence[dict[str, str]] | None) -> list[dict[str, str]]:
    """Only user and assistant turns with text (a UI may send system or empty messages)."""
    return [
        {"role": str(m["role"]), "content": str(m["content"])}
        for m in history or ()
        if m.get("role") in ("user", "assistant") and str(m.get("content") or "").strip()
    ]


def fallback_standalone(question: str, history: Sequence[dict[str, str]]) -> str:
    """Without an LLM: a follow-up is searched together with the previous user question, so "and when did he
    leave?" after "Where did Iwan Roberts play?" finds the passages about Iwan Roberts."""
    previous = [m["content"] for m in history if m["role"] == "user"]
    if previous and is_follow_up(question):
        return f"{previous[-1].strip()} {question.strip()}"
    return question


def standalone_question(
    question: str, history: Sequence[dict[str, str]], llm: ChatLLM | None, config: ChatConfig
) -> tuple[str, list[str]]:
    """The question to search for and answer, rewritten from the conversation when there is one."""
    history = clean_history(history)
    if not history:
        return question, []
    if llm is None:
        return fallback_standalone(question, history), []
    count = counter(config.model)
    # Keep the newest turns that fit the window (the rewrite needs little room to answer).
    kept = list(history)
    while kept and message_tokens(condense_messages(question, kept, config.condense_prompt), count) > (
        config.context_window - 128
    ):
        kept.pop(0)
    try:
        text = llm.complete(condense_messages(question, kept, config.condense_prompt))
    except LLMError as exc:
        return fallback_standalone(question, history), [f"{exc} The follow-up was searched with the last question."]
    line = next((ln.strip() for ln in text.strip().splitlines() if ln.strip()), "")
    line = re.sub(r"^(standalone question|question)\s*:\s*", "", line, flags=re.IGNORECASE).strip().strip('"')
    return (line, []) if len(line) >= 3 else (fallback_standalone(question, history), [])


def answer_stream(
    question: str,
    results: list[SearchResult],
    embedder: Embedder,
    llm: ChatLLM | None,
    *,
    history: Sequence[dict[str, str]] | None = None,
    relevance: float | None = None,
    config: ChatConfig | None = None,
    standalone: str | None = None,
    warnings: list[str] | None = None,
    started: float | None = None,
) -> AnswerStream:
    """Answer from `results` (already retrieved for `standalone or question`, best first); see `AnswerStream`.

    `relevance` is the cosine similarity of the question to its closest chunk: below the configured threshold the
    reply is "not found" and no LLM is called; the nearest chunks are still returned as sources.
    """
    config = config or ChatConfig()
    warnings = list(warnings or [])
    asked = standalone or question
    rewritten = standalone if standalone and standalone != question else None

    def stream(text: str, finish_answer: Answer) -> AnswerStream:
        return AnswerStream(results, iter([text]), lambda t: finish_answer, rewritten, started)

    if not results:
        text = f"{NOT_FOUND_MESSAGE} Nothing in the index matches it."
        return stream(text, Answer(question, text, "extractive", False, [], results, warnings, rewritten))
    threshold = config.not_found_threshold
    if relevance is not None and threshold is not None and relevance < threshold:
        text = f"{NOT_FOUND_MESSAGE} The closest passages are listed as sources."
        warnings.append(f"closest passage similarity {relevance:.3f} is below not_found_threshold {threshold}")
        # mode "extractive": no LLM wrote this reply, whatever is configured.
        return stream(text, Answer(question, text, "extractive", False, [], results, warnings, rewritten))
    if llm is None:
        return _extractive(question, asked, results, embedder, warnings, rewritten, started, history)

    count = counter(config.model)
    boundary = new_boundary()
    turns = clean_history(history)
    fixed = build_messages(asked, [], (), config.system_prompt, boundary)
    fitted = fit(
        fixed,
        results,
        turns,
        lambda n, r: count(context_block(n, r, boundary)) + 1,
        count,
        config.context_window,
        config.answer_reserve,
    )
    warnings.extend(fitted.warnings)
    if not fitted.results:
        # Sending the question without context would invite a guess, and might not fit at all: answer without LLM.
        warnings.append("Raise context_window (or lower answer_reserve) to let the LLM answer; answered extractively.")
        return _extractive(question, asked, results, embedder, warnings, rewritten, started, history)
    context = fitted.results
    messages = build_messages(asked, context, fitted.history, config.system_prompt, boundary)
    # Tokens of joined text can differ by one or two from the sum of the parts: check the real prompt.
    while len(context) > 1 and message_tokens(messages, count) > config.context_window - config.answer_reserve:
        context = context[:-1]
        messages = build_messages(asked, context, fitted.history, config.system_prompt, boundary)

    def finish(text: str) -> Answer:
        return _checked(
            question, text, "llm", not says_not_found(text), context, results, embedder, warnings, rewritten
        )

    deltas = llm.stream(messages)
    try:
        first = next(deltas, "")
    except LLMError as exc:
        # An unreachable LLM should not leave the user without an answer: say so, and answer extractively.
        warnings.append(f"{exc} Answered extractively instead.")
        return _extractive(question, asked, results, embedder, warnings, rewritten, started, history)
    return AnswerStream(results, _chain(first, deltas), finish, rewritten, started)


def _checked(
    question: str,
    text: str,
    mode: str,
    found: bool,
    context: list[SearchResult],
    results: list[SearchResult],
    embedder: Embedder,
    warnings: list[str],
    rewritten: str | None,
) -> Answer:
    """The final Answer: citations resolved, invalid markers and unsupported claims flagged."""
    claims = check(text, context, embedder)
    citations, invalid = resolve(text, context, claims)
    if invalid:
        warnings.append(f"the answer cites blocks that do not exist: {invalid}")
    unsupported = [{"claim": c.text, "n": n} for c in claims for n, ok in c.supported.items() if not ok]
    if unsupported:
        warnings.append(
            f"{len({u['claim'] for u in unsupported})} of {len(claims)} cited sentences are not supported by the "
            f"block they cite: {[u['n'] for u in unsupported]}"
        )
    answer = Answer(question, text, mode, found, citations, results, warnings, rewritten)  # type: ignore[arg-type]
    answer.unsupported = unsupported
    answer.claims = len(claims)
    return answer


def _chain(first: str, rest: Iterator[str]) -> Iterator[str]:
    if first:
        yield first
    yield from rest


def _extractive(
    question: str,
    asked: str,
    results: list[SearchResult],
    embedder: Embedder,
    warnings: list[str],
    rewritten: str | None,
    started: float | None,
    history: Sequence[dict[str, str]] | None,
) -> AnswerStream:
    """Sentences picked from the chunks. In a conversation, what was already said is not repeated, and when the
    follow-up was only joined to the previous question, the sentence is scored mainly against the new words."""
    said = {s for m in clean_history(history) if m["role"] == "assistant" for s in extractive.sentences(m["content"])}
    joined = rewritten is not None and rewritten == fallback_standalone(question, clean_history(history))
    picks = extractive.best_sentences(question if joined else asked, results, embedder, exclude=said)
    if picks:
        text = extractive.compose(picks)
    else:
        text = f"{NOT_FOUND_MESSAGE} The closest passages are listed as sources."

    def finish(t: str) -> Answer:
        return _checked(question, t, "extractive", bool(picks), results, results, embedder, warnings, rewritten)

    return AnswerStream(results, iter([text]), finish, rewritten, started)
