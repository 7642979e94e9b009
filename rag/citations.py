"""Resolve the `[n]` markers of an answer to the numbered context blocks, and check each cited claim.

A marker that points at no block is dropped and flagged. Each sentence that cites a block is checked against
that block: it is *supported* when most of its content words (stemmed) occur in the block, or when it is close in
meaning to one of the block's sentences (embedding cosine) — and, either way, every number it states occurs in
the block (a changed year or amount is the commonest unfaithful citation). The quoted span of a citation is the
block's sentence closest to the claim.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from rag.extractive import _words, sentences
from rag.types import Citation, SearchResult

# [1], [1, 3], [1][2] and [1-2] all cite.
_MARKER = re.compile(r"\[(\d+(?:\s*[,;–-]\s*\d+)*)\]")
_CLAIM_END = re.compile(r"""[.!?]["'”’)]*(?:\s*\[\d+(?:\s*[,;–-]\s*\d+)*\])*(?=\s|$)|\n\s*\n""")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_NOT_FOUND = re.compile(
    r"\b(do(?:es)? not contain|don't contain|doesn't contain|not (?:found|mentioned|present) in|"
    r"no information|cannot find|can't find|could not find|not in the (?:documents|context))\b",
    re.IGNORECASE,
)
LEXICAL_SUPPORT = 0.5  # share of a claim's content words found in its block
SEMANTIC_SUPPORT = 0.7  # cosine between the claim and the block's closest sentence


@dataclass(frozen=True, slots=True)
class Claim:
    """One sentence of the answer and the blocks it cites, with the verdict for each."""

    text: str
    cited: tuple[int, ...]
    supported: dict[int, bool]
    quotes: dict[int, str]


def _numbers_in(marker_body: str) -> list[int]:
    out: list[int] = []
    for part in re.split(r"\s*[,;]\s*", marker_body):
        bounds = [int(x) for x in re.split(r"\s*[–-]\s*", part) if x]
        out.extend(range(bounds[0], bounds[-1] + 1) if len(bounds) == 2 and bounds[1] - bounds[0] < 20 else bounds)
    return out


def cited_numbers(answer: str) -> list[int]:
    """Every block number the answer cites, in order of first use."""
    seen: list[int] = []
    for match in _MARKER.finditer(answer):
        for n in _numbers_in(match.group(1)):
            if n not in seen:
                seen.append(n)
    return seen


def split_claims(answer: str) -> list[tuple[str, list[int]]]:
    """The answer's sentences, each without its markers, with the block numbers it cites."""
    out, start = [], 0
    ends = [m.end() for m in _CLAIM_END.finditer(answer)] + [len(answer)]
    for end in ends:
        piece = answer[start:end]
        start = end
        cited = cited_numbers(piece)
        text = re.sub(r"\s+([.,;:!?])", r"\1", " ".join(_MARKER.sub("", piece).split()))
        if text or cited:
            out.append((text, cited))
    return out


def _numbers(text: str) -> set[str]:
    return {n.replace(",", "") for n in _NUMBER.findall(text)}


def _support(claim: str, block: str, embedder: object | None) -> tuple[bool, str]:
    """Whether `block` supports `claim`, and the block's sentence closest to it (the quoted span)."""
    claim_words = _words(claim)
    candidates = sentences(block) or [" ".join(block.split())]
    overlaps = [len(claim_words & _words(s)) for s in candidates]
    best = max(range(len(candidates)), key=lambda i: overlaps[i])
    if not _numbers(claim) <= _numbers(block):
        return False, candidates[best]
    if not claim_words or len(claim_words & _words(block)) / len(claim_words) >= LEXICAL_SUPPORT:
        return True, candidates[best]
    if embedder is not None:
        vectors = embedder.embed(candidates)  # type: ignore[attr-defined]
        sims = vectors @ embedder.embed_query(claim)  # type: ignore[attr-defined]
        i = int(sims.argmax())
        return float(sims[i]) >= SEMANTIC_SUPPORT, candidates[i]
    return False, candidates[best]


def check(answer: str, context: Sequence[SearchResult], embedder: object | None = None) -> list[Claim]:
    """Every cited sentence of `answer`, checked against each block it cites (blocks that exist)."""
    claims = []
    for text, cited in split_claims(answer):
        valid = tuple(n for n in cited if 1 <= n <= len(context))
        if not valid:
            continue
        verdicts, quotes = {}, {}
        for n in valid:
            verdicts[n], quotes[n] = _support(text, context[n - 1].text, embedder)
        claims.append(Claim(text, valid, verdicts, quotes))
    return claims


def resolve(
    answer: str, context: Sequence[SearchResult], claims: Sequence[Claim] = ()
) -> tuple[list[Citation], list[int]]:
    """Citations for markers that point at a block, and the numbers that point at none (flagged, not kept).

    With `claims` (from `check`), a citation is `supported` only if every sentence citing its block is, and its
    `quote` is the span quoted for the first of them.
    """
    citations, invalid = [], []
    for n in cited_numbers(answer):
        if 1 <= n <= len(context):
            r = context[n - 1]
            heading = r.metadata.get("heading")
            mine = [c for c in claims if n in c.supported]
            supported = all(c.supported[n] for c in mine)
            quote = mine[0].quotes[n] if mine else ""
            citations.append(
                Citation(n, r.id, r.source, r.page, r.text, str(heading) if heading else None, supported, quote)
            )
        else:
            invalid.append(n)
    return citations, invalid


def says_not_found(answer: str) -> bool:
    """True when the answer states that the documents lack the answer (and cites nothing)."""
    return bool(_NOT_FOUND.search(answer)) and not cited_numbers(answer)
