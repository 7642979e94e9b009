"""Plain text: one section, any encoding."""

from __future__ import annotations

from pathlib import Path

from connectors.base import DEFAULT_OPTIONS, LoadOptions, register
from connectors.encoding import UndecodableText, decode_text
from rag.documents import Section
from rag.errors import SourceError

_MIME = {".rst": "text/x-rst"}


@register(".txt", ".text", ".log", ".rst", mimes=("text/plain", "text/x-rst"))
def load_text(path: Path, data: bytes, options: LoadOptions = DEFAULT_OPTIONS) -> tuple[list[Section], str, str]:
    text = decode_or_fail(path, data).strip()
    return ([Section(text)] if text else []), path.stem, _MIME.get(path.suffix.lower(), "text/plain")


def decode_or_fail(path: Path, data: bytes) -> str:
    """`decode_text` with its failure turned into the SourceError every loader raises."""
    try:
        return decode_text(data)
    except UndecodableText as exc:
        raise SourceError(str(path), str(exc)) from exc
