"""The token budget of one LLM request: what of the retrieved context and of the conversation fits the window.

The window is the model's context size (setting `context_window`) minus the tokens kept free for the answer
(`answer_reserve`). The system prompt and the question always go in. Then, in this order of priority:

1. the best-ranked chunk — whole, or if even it alone does not fit, cut after its last complete sentence that
   does (and flagged), never mid-sentence;
2. the conversation history, newest first, up to `history_share` of what is left (oldest turns are dropped);
3. the other chunks in rank order, each whole, until the next one no longer fits (a lower-ranked chunk never
   jumps ahead of a higher-ranked one that did not fit).

Tokens are counted with tiktoken's encoding for the configured model (o200k_base for the gpt-4o family,
cl100k_base otherwise: both ship offline), plus the per-message overhead of the chat format.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING

from rag.offline import ensure_offline_env
from rag.types import SearchResult

if TYPE_CHECKING:
    import tiktoken

MESSAGE_OVERHEAD = 4  # <|start|>role\n … <|end|> per message, as OpenAI counts them
REPLY_PRIMER = 3  # every reply is primed with <|start|>assistant<|message|>
_OFFLINE_ENCODINGS = ("o200k_base", "cl100k_base")
_SENTENCE_END = re.compile(r"""[.!?…]["'”’)\]]*(?=\s)|\n\s*\n""")


@lru_cache(maxsize=8)
def encoding_for(model: str) -> tiktoken.Encoding:
    """tiktoken's encoding for `model`, limited to the encodings available offline (unknown models: cl100k)."""
    ensure_offline_env()
    import tiktoken

    try:
        name = tiktoken.encoding_name_for_model(model)
    except KeyError:
        name = "cl100k_base"
    return tiktoken.get_encoding(name if name in _OFFLINE_ENCODINGS else "cl100k_base")


def counter(model: str) -> Callable[[str], int]:
    enc = encoding_for(model)
    return lambda text: len(enc.encode_ordinary(text))


def message_tokens(messages: Sequence[dict[str, str]], count: Callable[[str], int]) -> int:
    """Tokens a list of chat messages takes in the window (content + role + format overhead)."""
    return sum(MESSAGE_OVERHEAD + count(m.get("content", "")) + count(m.get("role", "")) for m in messages) + (
        REPLY_PRIMER
    )


@dataclass(slots=True)
class Fitted:
    """What made it into the prompt; `warnings` say what was left out and why."""

    results: list[SearchResult]
    history: list[dict[str, str]]
    warnings: list[str] = field(default_factory=list)


def truncate_at_sentence(text: str, max_tokens: int, count: Callable[[str], int]) -> str:
    """The longest prefix of `text` ending at a sentence end that fits `max_tokens` ('' if not even one does)."""
    best = ""
    for match in _SENTENCE_END.finditer(text):
        prefix = text[: match.end()].rstrip()
        if count(prefix) > max_tokens:
            break
        best = prefix
    return best


def fit(
    fixed: Sequence[dict[str, str]],
    results: Sequence[SearchResult],
    history: Sequence[dict[str, str]],
    block_tokens: Callable[[int, SearchResult], int],
    count: Callable[[str], int],
    window: int,
    reserve: int,
    history_share: float = 0.25,
) -> Fitted:
    """Choose the chunks and history turns that fit; see the module docstring for the order.

    `fixed` are the messages that always go in (system prompt, question, fence instructions) measured without
    the context; `block_tokens(n, result)` is the cost of the result as context block n.
    """
    warnings: list[str] = []
    available = window - reserve - message_tokens(fixed, count)
    if available <= 0:
        return Fitted([], [], [f"the question alone fills the context window ({window} tokens): no context sent"])
    kept: list[SearchResult] = []
    if results:
        first = results[0]
        cost = block_tokens(1, first)
        if cost > available:
            overhead = cost - count(first.text)
            text = truncate_at_sentence(first.text, available - overhead, count)
            if text:
                first = SearchResult(first.id, text, first.score, first.metadata)
                cost = block_tokens(1, first)
                warnings.append(f"the best chunk was cut after its last sentence that fits the window ({window})")
            else:
                cost = 0
                warnings.append(f"not even one sentence of the best chunk fits the window ({window} tokens)")
        if cost:
            kept.append(first)
            available -= cost
    kept_history: list[dict[str, str]] = []
    history_room = int(available * history_share) if len(results) > 1 else available
    for message in reversed(history):
        cost = message_tokens([message], count) - REPLY_PRIMER
        if cost > history_room:
            break
        kept_history.insert(0, message)
        history_room -= cost
        available -= cost
    if len(kept_history) < len(history):
        warnings.append(f"{len(history) - len(kept_history)} oldest conversation messages left out to fit the window")
    for result in results[1:]:
        if not kept:
            break
        cost = block_tokens(len(kept) + 1, result)
        if cost > available:
            break
        kept.append(result)
        available -= cost
    if results and len(kept) < len(results):
        warnings.append(f"{len(results) - len(kept)} lower-ranked chunks left out to fit the window ({window})")
    return Fitted(kept, kept_history, warnings)
