"""PPTX via python-pptx: one section per slide (`page` = slide number, `heading` = the slide's title) with the text
of every shape in order (grouped shapes and tables included, a table row per line) and the speaker notes.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pptx
from pptx.enum.shapes import MSO_SHAPE_TYPE
from pptx.exc import PackageNotFoundError

from connectors.archive import open_zip
from connectors.base import DEFAULT_OPTIONS, LoadOptions, register
from rag.documents import Section
from rag.errors import SourceError

_MIME = "application/vnd.openxmlformats-officedocument.presentationml.presentation"


@register(".pptx", ".pptm", mimes=(_MIME,))
def load_pptx(path: Path, data: bytes, options: LoadOptions = DEFAULT_OPTIONS) -> tuple[list[Section], str, str]:
    open_zip(path, data, "PPTX", options).close()  # zip errors and bombs are refused before python-pptx reads
    try:
        deck = pptx.Presentation(io.BytesIO(data))
    except PackageNotFoundError as exc:
        raise SourceError(str(path), "not a valid PPTX (not a PowerPoint package)") from exc
    except ValueError as exc:  # a renamed DOCX or XLSX
        raise SourceError(str(path), f"not a valid PPTX: {exc}") from exc
    except KeyError as exc:
        raise SourceError(str(path), f"not a valid PPTX: part {exc} is missing") from exc
    sections: list[Section] = []
    first_title = ""
    for number, slide in enumerate(deck.slides, start=1):
        title = _slide_title(slide)
        first_title = first_title or title
        lines: list[str] = []
        for shape in slide.shapes:
            lines.extend(_shape_lines(shape, 0))
        notes = _notes(slide)
        if notes:
            lines.append(f"Notes: {notes}")
        if lines:
            sections.append(Section("\n".join(lines), page=number, heading=title or None))
    title = (deck.core_properties.title or "").strip()
    if title == "PowerPoint Presentation":  # PowerPoint's placeholder, not a title anyone chose
        title = ""
    title = title or first_title or path.stem
    return sections, title, _MIME


def _slide_title(slide: Any) -> str:
    try:
        shape = slide.shapes.title
        return " ".join(shape.text_frame.text.split()) if shape is not None and shape.has_text_frame else ""
    except (KeyError, AttributeError, ValueError):
        return ""


def _shape_lines(shape: Any, depth: int) -> list[str]:
    if shape.shape_type == MSO_SHAPE_TYPE.GROUP and depth < 10:
        return [line for inner in shape.shapes for line in _shape_lines(inner, depth + 1)]
    if getattr(shape, "has_table", False):
        rows = []
        for row in shape.table.rows:
            cells = [" ".join(c.text.split()) for c in row.cells]
            if any(cells):
                rows.append(" | ".join(c for c in cells if c))
        return rows
    if getattr(shape, "has_text_frame", False):
        return [p for p in (" ".join(para.text.split()) for para in shape.text_frame.paragraphs) if p]
    return []


def _notes(slide: Any) -> str:
    try:
        if not slide.has_notes_slide:
            return ""
        frame = slide.notes_slide.notes_text_frame
        return " ".join(frame.text.split()) if frame is not None else ""
    except (KeyError, AttributeError, ValueError):
        return ""
