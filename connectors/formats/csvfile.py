"""CSV (and TSV): each row becomes one line of `header: value` pairs, so a chunk of rows still says what each value
means. Any encoding (UTF-16 included) via our text detection; the delimiter is sniffed by the standard library.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from connectors.base import DEFAULT_OPTIONS, LoadOptions, register
from connectors.formats.text import decode_or_fail
from rag.documents import Section
from rag.errors import SourceError

_DELIMITERS = ",;\t|"


@register(".csv", ".tsv", mimes=("text/csv", "text/tab-separated-values", "application/csv"))
def load_csv(path: Path, data: bytes, options: LoadOptions = DEFAULT_OPTIONS) -> tuple[list[Section], str, str]:
    text = decode_or_fail(path, data)
    rows = _rows(path, text)
    if not rows:
        return [], path.stem, "text/csv"
    lines: list[str] = []
    start = 0
    # A caption row ("Stanley Cups,,") above the real header: keep it as a line of its own.
    while start + 1 < len(rows) and _filled(rows[start]) == 1 < _filled(rows[start + 1]):
        lines.append(rows[start][0].strip() or next(c for c in rows[start] if c.strip()).strip())
        start += 1
    header = [h.strip() for h in rows[start]]
    if len(rows) == start + 1:  # a header alone is all the text there is
        lines.append(" | ".join(h for h in header if h))
    for row in rows[start + 1 :]:
        pairs = []
        for i, value in enumerate(row):
            value = value.strip()
            if not value:
                continue
            name = header[i] if i < len(header) and header[i] else f"column {i + 1}"
            pairs.append(f"{name}: {value}")
        if pairs:
            lines.append(" | ".join(pairs))
    mime = "text/tab-separated-values" if path.suffix.lower() == ".tsv" else "text/csv"
    return [Section("\n".join(lines))] if lines else [], path.stem, mime


def _rows(path: Path, text: str) -> list[list[str]]:
    sample = text[: 64 * 1024]
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(sample, delimiters=_DELIMITERS)
    except csv.Error:  # one column, or too irregular to tell: commas are the likeliest
        dialect = csv.excel_tab if path.suffix.lower() == ".tsv" else csv.excel
    try:
        return [row for row in csv.reader(io.StringIO(text, newline=""), dialect) if any(c.strip() for c in row)]
    except csv.Error as exc:
        raise SourceError(str(path), f"not a valid CSV: {exc}") from exc


def _filled(row: list[str]) -> int:
    return sum(1 for cell in row if cell.strip())
