"""Resolve the `[n]` markers of an answer to the numbered context blocks it was given."""

from __future__ import annotations

import re
from collections.abc import Sequence

from rag.types import Citation, SearchResult

# [1], [1, 3], [1][2] and [1-2] all cite.
_MARKER = re.compile(r"\[(\d+(?:\s*[,;–-]\s*\d+)*)\]")
_NOT_FOUND = re.compile(
    r"\b(do(?:es)? not contain|don't contain|doesn't contain|not (?:found|mentioned|present) in|"
    r"no information|cannot find|can't find|could not find|not in the (?:documents|context))\b",
    re.IGNORECASE,
)


def cited_numbers(answer: str) -> list[int]:
    """Every block number the answer cites, in order of first use."""
    seen: list[int] = []
    for match in _MARKER.finditer(answer):
        for part in re.split(r"\s*[,;]\s*", match.group(1)):
            bounds = [int(x) for x in re.split(r"\s*[–-]\s*", part) if x]
            numbers = range(bounds[0], bounds[-1] + 1) if len(bounds) == 2 and bounds[1] - bounds[0] < 20 else bounds
            for n in numbers:
                if n not in seen:
                    seen.append(n)
    return seen


def resolve(answer: str, context: Sequence[SearchResult]) -> tuple[list[Citation], list[int]]:
    """Citations for markers that point at a block, and the numbers that point at none (flagged, not kept)."""
    citations, invalid = [], []
    for n in cited_numbers(answer):
        if 1 <= n <= len(context):
            r = context[n - 1]
            heading = r.metadata.get("heading")
            citations.append(Citation(n, r.id, r.source, r.page, r.text, str(heading) if heading else None))
        else:
            invalid.append(n)
    return citations, invalid


def says_not_found(answer: str) -> bool:
    """True when the answer states that the documents lack the answer (and cites nothing)."""
    return bool(_NOT_FOUND.search(answer)) and not cited_numbers(answer)
