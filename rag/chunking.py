"""Token-exact chunking that keeps sentences whole where it can.

Why not llama-index's SentenceSplitter: we need each chunk's page/heading and the exact character span it covers
(for quoting sources), and an overlap that is exact in tokens; the splitter returns bare strings.

The method: tokenize a section once with tiktoken (`cl100k_base`, shipped offline inside llama-index-core), map
sentence ends to token positions, then cut windows of at most `size` tokens that end on the last sentence boundary
inside the window (else on a word boundary, else exactly at `size`). The next window starts `overlap` tokens
before the previous end, moved forward to a sentence start if one lies inside the overlap. Chunk text is the
section's own text between the two token offsets, so nothing is re-encoded or altered.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterator
from functools import lru_cache
from typing import TYPE_CHECKING

from rag.documents import Chunk, Document, Section
from rag.offline import ensure_offline_env

if TYPE_CHECKING:
    import tiktoken

ENCODING = "cl100k_base"
# A sentence ends at . ! ? (optionally followed by closing quotes/brackets) before whitespace, or at a blank line
# or before a list item. The boundary is placed before the whitespace: tiktoken attaches a space to the next word.
_SENTENCE_END = re.compile(r"""[.!?…]["'”’)\]]*(?:\[\d+\])*(?=\s)|\n\s*\n|\n(?=\s*(?:[-*•]|\d+[.)])\s)""")


@lru_cache(maxsize=1)
def get_encoding() -> tiktoken.Encoding:
    """The tokenizer used for chunk sizes and token budgets; loads from the offline cache."""
    ensure_offline_env()
    import tiktoken

    return tiktoken.get_encoding(ENCODING)


def count_tokens(text: str) -> int:
    return len(get_encoding().encode_ordinary(text))


def split_section(text: str, size: int, overlap: int) -> list[tuple[int, int]]:
    """Character spans `(start, end)` of the chunks of `text`; each covers at most `size` tokens."""
    if overlap >= size:
        raise ValueError("overlap must be smaller than size")
    enc = get_encoding()
    tokens = enc.encode_ordinary(text)
    if not tokens:
        return []
    _, offsets = enc.decode_with_offsets(tokens)
    n = len(tokens)
    offsets.append(len(text))  # offsets[i] = char start of token i; offsets[n] = end of text
    sentence_starts = sorted({bisect.bisect_left(offsets, m.end()) for m in _SENTENCE_END.finditer(text)} - {0, n})
    line_starts = sorted({bisect.bisect_left(offsets, m.end()) for m in re.finditer(r"\n", text)} - {0, n})
    tiers = (sentence_starts, line_starts)
    spans: list[tuple[int, int]] = []
    start = 0
    while start < n:
        end = min(start + size, n)
        if end < n:
            end = _best_cut(offsets, text, tiers, start, end, size)
        spans.append((offsets[start], offsets[end]))
        if end >= n:
            break
        start = _overlap_start(tiers, max(end - overlap, start + 1), end)
    return [(a, b) for a, b in spans if text[a:b].strip()]


def _overlap_start(tiers: tuple[list[int], ...], earliest: int, end: int) -> int:
    """Begin the next chunk at a sentence (else line) start inside the overlap, else exactly `overlap` back."""
    for starts in tiers:
        i = bisect.bisect_left(starts, earliest)
        if i < len(starts) and starts[i] < end:
            return starts[i]
    return earliest


def _best_cut(offsets: list[int], text: str, boundaries: tuple[list[int], ...], start: int, end: int, size: int) -> int:
    """Where to end a full window: the last sentence end in its second half, else line end, else word boundary."""
    floor = start + max(1, size // 2)
    for starts in boundaries:
        i = bisect.bisect_right(starts, end) - 1
        if i >= 0 and starts[i] > floor:
            return starts[i]
    for j in range(end, floor, -1):
        if text[offsets[j] : offsets[j] + 1].isspace() or text[offsets[j] - 1 : offsets[j]].isspace():
            return j
    return end


def chunk_document(doc: Document, size: int, overlap: int) -> list[Chunk]:
    """All chunks of a document, in reading order; ids are `{document_id}_{ordinal}`."""
    pieces = list(_iter_pieces(doc.sections, size, overlap))
    chunks = []
    for ordinal, (section, text) in enumerate(pieces):
        meta: dict[str, str | int | float] = {
            "source": doc.source,
            "document_id": doc.document_id,
            "title": doc.title,
            "mime": doc.mime,
            "ordinal": ordinal,
            "n_chunks": len(pieces),
            "sha256": doc.sha256,
        }
        if section.page is not None:
            meta["page"] = section.page
        if section.heading:
            meta["heading"] = section.heading
        if doc.mtime is not None:
            meta["mtime"] = doc.mtime
        if doc.size is not None:
            meta["size"] = doc.size
        meta.update(doc.extra)  # metadata a client gave (rag.records), e.g. author and created_at
        chunks.append(Chunk(f"{doc.document_id}_{ordinal}", text, doc.document_id, ordinal, meta))
    return chunks


def _iter_pieces(sections: list[Section], size: int, overlap: int) -> Iterator[tuple[Section, str]]:
    for section in sections:
        for a, b in split_section(section.text, size, overlap):
            yield section, section.text[a:b].strip()
