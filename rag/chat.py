"""The answer pipeline: retrieve → number the chunks → LLM (streamed) or extractive → resolve citations."""

from __future__ import annotations

from collections.abc import Iterator

from rag import extractive
from rag.citations import resolve, says_not_found
from rag.embeddings import Embedder
from rag.errors import LLMError
from rag.llm import ChatLLM
from rag.prompts import NOT_FOUND_MESSAGE, build_messages
from rag.types import Answer, AnswerStream, SearchResult


def answer_stream(question: str, results: list[SearchResult], embedder: Embedder, llm: ChatLLM | None) -> AnswerStream:
    """Answer `question` from `results` (already retrieved, best first); see `AnswerStream`."""
    warnings: list[str] = []
    if not results:
        text = f"{NOT_FOUND_MESSAGE} Nothing in the index matches it."
        return AnswerStream(results, iter([text]), lambda t: Answer(question, t, "extractive", False, [], results))
    if llm is None:
        return _extractive(question, results, embedder, warnings)

    def finish(text: str) -> Answer:
        citations, invalid = resolve(text, results)
        if invalid:
            warnings.append(f"the answer cites blocks that do not exist: {invalid}")
        return Answer(question, text, "llm", not says_not_found(text), citations, results, warnings)

    deltas = llm.stream(build_messages(question, results))
    try:
        first = next(deltas, "")
    except LLMError as exc:
        # An unreachable LLM should not leave the user without an answer: say so, and answer extractively.
        warnings.append(f"{exc} Answered extractively instead.")
        return _extractive(question, results, embedder, warnings)
    return AnswerStream(results, _chain(first, deltas), finish)


def _chain(first: str, rest: Iterator[str]) -> Iterator[str]:
    if first:
        yield first
    yield from rest


def _extractive(question: str, results: list[SearchResult], embedder: Embedder, warnings: list[str]) -> AnswerStream:
    picks = extractive.best_sentences(question, results, embedder)
    if picks:
        text = extractive.compose(picks)
    else:
        text = f"{NOT_FOUND_MESSAGE} The closest passages are listed as sources."

    def finish(t: str) -> Answer:
        citations, _ = resolve(t, results)
        return Answer(question, t, "extractive", bool(picks), citations, results, warnings)

    return AnswerStream(results, iter([text]), finish)
