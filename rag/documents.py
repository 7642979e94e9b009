"""The document type connectors produce and indexing consumes.

A document is a list of sections so that structure survives chunking: a PDF gives one section per page, Markdown
and HTML one per heading, plain text a single section. Chunks never cross a section boundary, so every chunk can
say which page or heading it came from.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Section:
    """A run of text with the place it came from: a PDF page (1-based) or a heading path ("Intro > Scope")."""

    text: str
    page: int | None = None
    heading: str | None = None


@dataclass(slots=True)
class Document:
    """What a connector returns for one source.

    `source` is the path or URL as found; `document_id` is stable for a source (so re-ingesting replaces, never
    duplicates); `sha256` is of the source's bytes (so unchanged sources can be skipped).
    """

    source: str
    sections: list[Section]
    title: str = ""
    mime: str = "text/plain"
    sha256: str = ""
    mtime: float | None = None
    size: int | None = None
    document_id: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.document_id:
            self.document_id = document_id_for(self.source)
        if not self.sha256:
            self.sha256 = hashlib.sha256(self.text.encode("utf-8")).hexdigest()

    @property
    def text(self) -> str:
        return "\n\n".join(s.text for s in self.sections)


def document_id_for(source: str) -> str:
    """A short stable id for a source string (absolute path or URL)."""
    return hashlib.sha1(source.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class Chunk:
    """One indexed piece of a document; `id` is `{document_id}_{ordinal}`."""

    id: str
    text: str
    document_id: str
    ordinal: int
    metadata: dict[str, Any]
