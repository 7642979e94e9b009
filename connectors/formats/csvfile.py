"""CSV (and TSV): each row becomes one line of `header: value` pairs, so a chunk of rows still says what each value
means. Any encoding (UTF-16 included) via our text detection; the delimiter is sniffed by the standard library.
Rows are streamed: only the header is held, never the whole table as lists.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from itertools import chain
from pathlib import Path

from connectors.base import DEFAULT_OPTIONS, LoadOptions, register
from connectors.formats.text import decode_or_fail
from rag.documents import Section
from rag.errors import SourceError

_DELIMITERS = ",;\t|"


@register(".csv", ".tsv", mimes=("text/csv", "text/tab-separated-values", "application/csv"))
def load_csv(path: Path, data: bytes, options: LoadOptions = DEFAULT_OPTIONS) -> tuple[list[Section], str, str]:
    text = decode_or_fail(path, data)
    mime = "text/tab-separated-values" if path.suffix.lower() == ".tsv" else "text/csv"
    try:
        lines = list(_records(path, text))
    except csv.Error as exc:
        raise SourceError(str(path), f"not a valid CSV: {exc}") from exc
    return [Section("\n".join(lines))] if lines else [], path.stem, mime


def _records(path: Path, text: str) -> Iterator[str]:
    rows = (
        row for row in csv.reader(io.StringIO(text, newline=""), _dialect(path, text)) if any(c.strip() for c in row)
    )
    head = [row for _, row in zip(range(2), rows, strict=False)]
    if not head:
        return
    # A caption row ("Stanley Cups,,") above the real header: keep it as a line of its own.
    while len(head) == 2 and _filled(head[0]) == 1 < _filled(head[1]):
        yield next(c for c in head[0] if c.strip()).strip()
        head = [head[1], *[row for _, row in zip(range(1), rows, strict=False)]]
    header = [h.strip() for h in head[0]]
    if len(head) == 1:  # a header alone is all the text there is
        yield " | ".join(h for h in header if h)
        return
    for row in chain(head[1:], rows):
        pairs = []
        for i, value in enumerate(row):
            value = value.strip()
            if value:
                name = header[i] if i < len(header) and header[i] else f"column {i + 1}"
                pairs.append(f"{name}: {value}")
        if pairs:
            yield " | ".join(pairs)


def _dialect(path: Path, text: str) -> type[csv.Dialect] | csv.Dialect:
    try:
        return csv.Sniffer().sniff(text[: 64 * 1024], delimiters=_DELIMITERS)
    except csv.Error:  # one column, or too irregular to tell: commas (tabs for .tsv) are the likeliest
        return csv.excel_tab if path.suffix.lower() == ".tsv" else csv.excel


def _filled(row: list[str]) -> int:
    return sum(1 for cell in row if cell.strip())
