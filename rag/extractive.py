"""Answers without an LLM: the sentences of the retrieved chunks that best match the question, cited.

Each candidate sentence is scored by its embedding similarity to the question plus the share of the question's
content words it contains (names and numbers matter; embeddings blur them), with a small bonus for coming from a
higher-ranked chunk.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from rag.embeddings import Embedder
from rag.types import SearchResult

MAX_SENTENCES = 80
NUMBER_BONUS = 0.15
FRAGMENT_PENALTY = 0.1
WRAP_WIDTH = 50  # a line at least this long that ends mid-sentence was wrapped: it continues on the next line
_SPLIT = re.compile(r"(?<=[.!?…])[\"'”’)\]]*(?:\[\d+\])*\s+|\n\s*\n")
_WORD = re.compile(r"\w+", re.UNICODE)
_STOP = frozenset(
    "a an and are as at be by did do does for from had has have how i in is it its of on or so that the their them "
    "there these they this to was were what when where which who whom whose why will with you your".split()
)


@dataclass(frozen=True, slots=True)
class Pick:
    n: int
    sentence: str
    score: float


_ASKS_FOR_NUMBER = re.compile(r"\b(when|(what|which) (year|date|day)|how (many|much|old|long|far|tall|high))\b", re.I)
_HAS_NUMBER = re.compile(r"\d")


@lru_cache(maxsize=1)
def _stemmer() -> Any:
    import Stemmer  # PyStemmer, already needed by the keyword index

    return Stemmer.Stemmer("english")


def _words(text: str) -> set[str]:
    """Content words, stemmed, so "erupt" in a question meets "erupted" in a sentence."""
    words = [w.lower() for w in _WORD.findall(text) if w.lower() not in _STOP]
    return set(_stemmer().stemWords(words))


def sentences(text: str) -> list[str]:
    out = []
    for block in _blocks(text):
        for piece in _SPLIT.split(block):
            s = " ".join(piece.split())
            if len(s) >= 20 and len(s.split()) >= 4:
                out.append(s)
    return out


def _blocks(text: str) -> list[str]:
    """Join wrapped lines back into paragraphs, but keep short lines (headings, table cells) on their own.

    Text extracted from PDFs and web pages wraps sentences across lines, while infoboxes and headings are short
    lines without a full stop; gluing those onto the next sentence would make a poor quoted answer.
    """
    blocks: list[list[str]] = []
    previous = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped:
            previous = ""
            continue
        wrapped = len(previous) >= WRAP_WIDTH and not previous.endswith((".", "!", "?", ":"))
        if blocks and wrapped:
            blocks[-1].append(stripped)
        else:
            blocks.append([stripped])
        previous = stripped
    return [" ".join(lines) for lines in blocks]


def best_sentences(
    question: str,
    context: Sequence[SearchResult],
    embedder: Embedder,
    limit: int = 2,
    exclude: Collection[str] = (),
) -> list[Pick]:
    """Up to `limit` sentences, best first, each with the 1-based number of its context block.

    Sentences in `exclude` (those already given earlier in the conversation) are not picked again.
    """
    candidates: list[tuple[int, str]] = []
    # A sentence that holds all the content words of something already said would only repeat it.
    said_words = [w for w in (_words(re.sub(r"\[\d+\]", "", e)) for e in exclude) if len(w) >= 3]
    for n, result in enumerate(context, start=1):
        for s in sentences(result.text):
            if any(said <= _words(s) for said in said_words):
                continue
            candidates.append((n, s))
            if len(candidates) >= MAX_SENTENCES:
                break
    if not candidates:
        return []
    q_words = _words(question)
    wants_number = bool(_ASKS_FOR_NUMBER.search(question))
    vectors = embedder.embed([s for _, s in candidates])
    dense = vectors @ embedder.embed_query(question)
    picks = []
    for (n, s), sim in zip(candidates, dense, strict=True):
        words = _words(s)
        if len(words - q_words) < 2:  # only repeats the question: it cannot be the answer
            continue
        overlap = len(q_words & words) / len(q_words) if q_words else 0.0
        score = float(sim) + 0.5 * overlap + 0.05 / n
        if wants_number and _HAS_NUMBER.search(s):
            score += NUMBER_BONUS  # "when…?", "how many…?" are answered by a sentence that holds a number
        if not s.endswith((".", "!", "?", '"', "”", ")")):
            score -= FRAGMENT_PENALTY  # a title or table row, not a sentence that states something
        picks.append(Pick(n, s, score))
    if not picks:
        return []
    picks.sort(key=lambda p: -p.score)
    chosen: list[Pick] = []
    for p in picks:
        if len(chosen) >= limit:
            break
        if all(p.sentence != c.sentence for c in chosen):
            chosen.append(p)
    # A second sentence only if it is nearly as good as the first: a weak one dilutes the answer.
    return [c for c in chosen if c.score >= chosen[0].score * 0.8]


def compose(picks: Sequence[Pick]) -> str:
    return " ".join(f"{p.sentence} [{p.n}]" for p in picks)


def relevance(picks: Sequence[Pick]) -> float:
    return picks[0].score if picks else 0.0
