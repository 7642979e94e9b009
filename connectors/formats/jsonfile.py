"""JSON and NDJSON: each record flattened to readable `path: value` lines (`address.city: Paris`,
`tags[1]: urgent`), records apart by a blank line so chunks end between them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from connectors.base import DEFAULT_OPTIONS, LoadOptions, register
from connectors.formats.text import decode_or_fail
from rag.documents import Section
from rag.errors import SourceError

_MAX_DEPTH = 64  # deeper than any real record; beyond it a value is kept as compact JSON text


@register(".json", mimes=("application/json", "text/json"))
def load_json(path: Path, data: bytes, options: LoadOptions = DEFAULT_OPTIONS) -> tuple[list[Section], str, str]:
    text = decode_or_fail(path, data)
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        if _looks_like_ndjson(text):  # NDJSON saved as .json is common
            return load_ndjson(path, data, options)
        raise SourceError(str(path), f"not valid JSON: {exc}") from exc
    records = value if isinstance(value, list) else [value]
    return _sections(records), path.stem, "application/json"


@register(".ndjson", ".jsonl", mimes=("application/x-ndjson", "application/jsonl", "application/x-jsonlines"))
def load_ndjson(path: Path, data: bytes, options: LoadOptions = DEFAULT_OPTIONS) -> tuple[list[Section], str, str]:
    records = []
    for number, line in enumerate(decode_or_fail(path, data).split("\n"), start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise SourceError(str(path), f"not valid NDJSON: line {number}: {exc.msg}") from exc
    return _sections(records), path.stem, "application/x-ndjson"


def _looks_like_ndjson(text: str) -> bool:
    lines = [line for line in text.split("\n", 20)[:20] if line.strip()]
    try:
        return len(lines) > 1 and all(isinstance(json.loads(line), dict | list) for line in lines[:-1])
    except json.JSONDecodeError:
        return False


def _sections(records: list[Any]) -> list[Section]:
    blocks = ["\n".join(flatten(record)) for record in records]
    text = "\n\n".join(b for b in blocks if b.strip())
    return [Section(text)] if text else []


def flatten(value: Any, prefix: str = "", depth: int = 0) -> list[str]:
    """`{"a": {"b": [1, 2]}}` → `["a.b[0]: 1", "a.b[1]: 2"]`; a bare scalar is its own text."""
    if depth >= _MAX_DEPTH:
        return [f"{prefix}: {json.dumps(value, ensure_ascii=False)}"]
    if isinstance(value, dict):
        lines = []
        for key, item in value.items():
            lines.extend(flatten(item, f"{prefix}.{key}" if prefix else str(key), depth + 1))
        return lines
    if isinstance(value, list):
        if value and all(isinstance(v, str | int | float) and not isinstance(v, bool) for v in value):
            return [f"{prefix}: {', '.join(str(v) for v in value)}" if prefix else ", ".join(str(v) for v in value)]
        lines = []
        for i, item in enumerate(value):
            lines.extend(flatten(item, f"{prefix}[{i}]", depth + 1))
        return lines
    if value is None or value == "":
        return []
    text = json.dumps(value) if isinstance(value, bool) else str(value)
    return [f"{prefix}: {text}" if prefix else text]
