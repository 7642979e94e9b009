"""Pure formatting for the chat UI: sources → HTML, the status line → Markdown. No gradio here, so it tests fast.

Everything that comes from a document (file names, headings, snippets) is escaped: an indexed page may contain
markup, and the UI must show it as text, never run it.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rag import Citation, SearchResult

SNIPPET_CHARS = 240
NO_LLM = "no LLM: extractive answers"
EMPTY_SOURCES = '<div class="rag-sources"><p class="rag-muted">Sources of the answer appear here.</p></div>'

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~])")
_SENTENCE = re.compile(r"[^.!?]+(?:[.!?]+|$)\s*")
_MARKER = re.compile(r"\[\d+(?:\s*[,;–-]\s*\d+)*\]")
_MD_HEADING = re.compile(r"^[ \t]{0,3}#{1,6}[ \t]+", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class SourceRow:
    """One line of the sources panel."""

    n: int
    source: str
    location: str | None
    snippet: str
    score: float | None
    text: str = ""  # the whole chunk, for "full passage"
    quote: str = ""  # the sentence of `snippet` the answer draws on, highlighted


def file_name(source: str) -> str:
    """The last part of a path or URL: `/docs/a/guide.md` → `guide.md`, `https://x.org/p/` → `p`."""
    name = re.split(r"[\\/]", source.split("?", 1)[0].split("#", 1)[0].rstrip("/\\"))[-1]
    return name or source


def snippet(text: str, limit: int = SNIPPET_CHARS, focus: str = "") -> str:
    """Whitespace and Markdown heading marks dropped, cut at a word with an ellipsis when over `limit` characters.

    With `focus` (the answer), a long chunk is shown from the sentence sharing most words with it, so the panel
    shows the evidence rather than the chunk's opening lines.
    """
    flat = " ".join(_MD_HEADING.sub("", text).split())
    if len(flat) <= limit:
        return flat
    start = _focus_start(flat, focus) if focus else 0
    if start and len(flat) - start < limit:  # near the end: show the last `limit` characters, from a word
        start = max(0, flat.find(" ", len(flat) - limit) + 1)
    if start:
        return "…" + snippet(flat[start:], limit)
    cut = flat[:limit]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:") + "…"


def _words(text: str) -> set[str]:
    return {w for w in re.findall(r"\w+", text.lower()) if len(w) > 2}


def _focus_start(flat: str, focus: str) -> int:
    """Offset of the sentence of `flat` sharing most words with `focus` (0 when the best is the first or none)."""
    wanted = _words(_MARKER.sub("", focus))
    best, best_score = 0, 0
    for match in _SENTENCE.finditer(flat):
        score = len(_words(match.group()) & wanted)
        if score > best_score:
            best, best_score = match.start(), score
    return best


def location(page: int | None, heading: str | None) -> str | None:
    if page is not None:
        return f"page {page}"
    return heading or None


def rows_from_results(results: Sequence[SearchResult]) -> list[SourceRow]:
    """Rows for retrieved chunks, numbered as the answer numbers them ([1] is the first result)."""
    return [
        SourceRow(n, r.source, location(r.page, _opt_str(r.metadata.get("heading"))), snippet(r.text), r.score, r.text)
        for n, r in enumerate(results, start=1)
    ]


def rows_from_citations(
    citations: Sequence[Citation], results: Sequence[SearchResult], answer: str = ""
) -> list[SourceRow]:
    """Rows for the chunks an answer cites; the score comes from the retrieved chunk the marker points at.

    The snippet of a long chunk starts at the sentence most like `answer` (the evidence, not the opening lines).
    """
    scores = {r.id: r.score for r in results}
    rows = []
    for c in sorted(citations, key=lambda c: c.n):
        shown = snippet(c.text, focus=answer)
        rows.append(
            SourceRow(c.n, c.source, location(c.page, c.heading), shown, scores.get(c.id), c.text, quote(shown, answer))
        )
    return rows


def quote(shown: str, answer: str) -> str:
    """The sentence of `shown` sharing most words (at least two) with `answer`: the evidence to highlight."""
    wanted = _words(_MARKER.sub("", answer))
    best, best_score = "", 1
    for match in _SENTENCE.finditer(shown.lstrip("…")):
        score = len(_words(match.group()) & wanted)
        if score > best_score:
            best, best_score = match.group().strip(), score
    return best


def link_citations(text: str) -> str:
    """`[1]` and `[1, 2]` in an answer become links to the source cards `#rag-src-1`, `#rag-src-2`."""

    def link(match: re.Match[str]) -> str:
        numbers = re.findall(r"\d+", match.group())
        return "".join(f"[\\[{n}\\]](#rag-src-{n})" for n in numbers)

    return _MARKER.sub(link, text)


def sources_html(rows: Sequence[SourceRow], title: str = "Sources") -> str:
    """The sources panel: a heading, then one block per row. All document text is escaped."""
    if not rows:
        return EMPTY_SOURCES
    items = []
    for row in rows:
        where = f' <span class="rag-muted">· {html.escape(row.location)}</span>' if row.location else ""
        score = f' <span class="rag-score">· score {row.score:.3f}</span>' if row.score is not None else ""
        shown = html.escape(row.snippet)
        if row.quote and html.escape(row.quote) in shown:
            mark = html.escape(row.quote)
            shown = shown.replace(mark, f"<mark>{mark}</mark>", 1)
        full = (
            f'<details class="rag-full"><summary>Full passage</summary><div>{html.escape(row.text)}</div></details>'
            if row.text and row.text.strip() != row.snippet
            else ""
        )
        items.append(
            f'<li class="rag-source" id="rag-src-{row.n}">'
            f'<div><b>[{row.n}]</b> <span class="rag-file" title="{html.escape(row.source, quote=True)}">'
            f"{html.escape(file_name(row.source))}</span>{where}{score}</div>"
            f'<div class="rag-snippet">{shown}</div>{full}'
            "</li>"
        )
    return (
        f'<div class="rag-sources"><h3>{html.escape(title)}</h3><ol class="rag-source-list">{"".join(items)}</ol></div>'
    )


def md_escape(text: str) -> str:
    """Text shown literally inside Markdown (collection and model names come from user settings)."""
    return _MD_SPECIAL.sub(r"\\\1", text)


def status_markdown(status: Mapping[str, Any]) -> str:
    """`Index.status()` as one line: collection, counts, embedder, and which LLM answers (or that none does)."""
    docs = int(status.get("documents", 0))
    chunks = int(status.get("chunks", 0))
    embedder = status.get("embedder") or {}
    llm = status.get("llm")
    parts = [
        f"Collection **{md_escape(str(status.get('collection', '?')))}**",
        f"{docs} document{'s' if docs != 1 else ''}",
        f"{chunks} chunk{'s' if chunks != 1 else ''}",
        f"embedder {md_escape(str(embedder.get('name', '?')))}",
        f"LLM {md_escape(str(llm))}" if llm else NO_LLM,
    ]
    return " · ".join(parts)


def _opt_str(value: Any) -> str | None:
    return str(value) if value else None
