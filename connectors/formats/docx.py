"""DOCX via python-docx: paragraphs and tables in reading order, one section per heading (its path kept), and the
page headers and footers as a last section. Tables become one line per row, cells apart by " | " (nested tables
and merged cells included, each merged cell once).
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import docx
from docx.opc.exceptions import PackageNotFoundError

from connectors.archive import open_zip
from connectors.base import DEFAULT_OPTIONS, LoadOptions, register
from rag.documents import Section
from rag.errors import SourceError

_HEADING = re.compile(r"^(?:heading|überschrift|titre|título)\s*(\d)$", re.IGNORECASE)
_MIME = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


@register(".docx", ".docm", mimes=(_MIME,))
def load_docx(path: Path, data: bytes, options: LoadOptions = DEFAULT_OPTIONS) -> tuple[list[Section], str, str]:
    open_zip(path, data, "DOCX", options).close()  # zip errors and bombs are refused before python-docx reads
    try:
        document = docx.Document(io.BytesIO(data))
    except PackageNotFoundError as exc:
        raise SourceError(str(path), "not a valid DOCX (not a Word package)") from exc
    except ValueError as exc:  # "file '…' is not a Word file, content type is …": a renamed PPTX or XLSX
        raise SourceError(str(path), f"not a valid DOCX: {exc}") from exc
    except KeyError as exc:
        raise SourceError(str(path), f"not a valid DOCX: part {exc} is missing") from exc
    builder = _Builder()
    for block in document.iter_inner_content():
        if isinstance(block, docx.table.Table):
            builder.lines.extend(_table_lines(block))
            continue
        text = block.text.strip()
        level = _heading_level(block)
        if level is not None and text:
            builder.heading(level, text)
        elif text:
            builder.lines.append(text)
    builder.flush()
    sections = builder.sections
    margins = _headers_and_footers(document)
    if margins:
        sections.append(Section("\n".join(margins), heading="Headers and footers"))
    title = (document.core_properties.title or "").strip() or builder.first_title or path.stem
    return sections, title, _MIME


class _Builder:
    def __init__(self) -> None:
        self.sections: list[Section] = []
        self.stack: list[tuple[int, str]] = []
        self.lines: list[str] = []
        self.first_title = ""

    def heading(self, level: int, text: str) -> None:
        self.flush()
        while self.stack and self.stack[-1][0] >= level:
            self.stack.pop()
        self.stack.append((level, text))
        self.lines.append(text)
        if level <= 1 and not self.first_title:
            self.first_title = text

    def flush(self) -> None:
        heading = " > ".join(t for _, t in self.stack) or None
        if self.lines and not (heading and self.lines == [self.stack[-1][1]]):
            self.sections.append(Section("\n".join(self.lines), heading=heading))
        self.lines = []


def _heading_level(paragraph: Any) -> int | None:
    try:
        name = (paragraph.style.name or "") if paragraph.style is not None else ""
    except (KeyError, AttributeError):  # a style id that the styles part does not define
        return None
    if name.lower() == "title":
        return 0
    match = _HEADING.match(name.strip())
    return int(match.group(1)) if match else None


def _table_lines(table: Any, depth: int = 0) -> list[str]:
    lines: list[str] = []
    for row in table.rows:
        cells: list[str] = []
        nested: list[str] = []
        seen: set[int] = set()
        for cell in row.cells:
            if id(cell._tc) in seen:  # a merged cell is returned once per grid column it spans
                continue
            seen.add(id(cell._tc))
            text = " ".join(p.text.strip() for p in cell.paragraphs if p.text.strip())
            if text:
                cells.append(text)
            if depth < 3:
                for inner in cell.tables:
                    nested.extend(_table_lines(inner, depth + 1))
        if cells:
            lines.append(" | ".join(cells))
        lines.extend(nested)
    return lines


def _headers_and_footers(document: Any) -> list[str]:
    lines: list[str] = []
    for section in document.sections:
        for part in (section.header, section.footer):
            try:
                if part.is_linked_to_previous and lines:
                    continue
                texts = [p.text.strip() for p in part.paragraphs if p.text.strip()]
            except (KeyError, AttributeError, ValueError):
                continue
            lines.extend(t for t in texts if t not in lines)
    return lines
