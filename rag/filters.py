"""Metadata filters: one public dict → a Chroma `where` clause, and the same clause evaluated in Python.

Chroma applies the clause to dense search inside the store; BM25 has no metadata, so keyword hits are checked
against the very same clause with `matches()` — one meaning for both lists.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from rag.errors import ConfigError

DATE_KEYS = ("start_date", "end_date")


def to_timestamp(value: Any) -> float:
    """Epoch seconds from a number or an ISO 8601 date/datetime string (naive means UTC)."""
    if isinstance(value, bool):
        raise ConfigError(f"A date filter wants epoch seconds or an ISO date, not {value!r}.")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day)
    else:
        text = str(value).strip()
        try:
            return float(text)
        except ValueError:
            pass
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError as exc:
            raise ConfigError(
                f"A date filter wants epoch seconds or an ISO date like 2024-05-01, not {value!r}."
            ) from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def build_where(filters: dict[str, Any] | None, date_field: str = "mtime") -> dict[str, Any] | None:
    """The Chroma `where` for a filter dict: a list value means "any of", `start_date`/`end_date` a range on
    `date_field`; clauses are joined with `$and` (Chroma wants one key per clause)."""
    if not filters:
        return None
    clauses: list[dict[str, Any]] = []
    for key, value in filters.items():
        if value is None:
            continue
        if key in ("$and", "$or"):
            clauses.append({key: value})  # already Chroma's operator form, e.g. from rag.records.plugin_where
        elif key == "start_date":
            clauses.append({date_field: {"$gte": to_timestamp(value)}})
        elif key == "end_date":
            clauses.append({date_field: {"$lte": to_timestamp(value)}})
        elif isinstance(value, list | tuple | set):
            values = list(value)
            if not values:
                raise ConfigError(f"Filter {key!r} got an empty list: give at least one value.")
            clauses.append({key: {"$in": values}})
        elif isinstance(value, dict):
            clauses.append({key: value})  # already an operator clause, e.g. {"$ne": "x"}
        else:
            clauses.append({key: {"$eq": value}})
    if not clauses:
        return None
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


_OPS = {
    "$eq": lambda a, b: a == b,
    "$ne": lambda a, b: a != b,
    "$gt": lambda a, b: a is not None and a > b,
    "$gte": lambda a, b: a is not None and a >= b,
    "$lt": lambda a, b: a is not None and a < b,
    "$lte": lambda a, b: a is not None and a <= b,
    "$in": lambda a, b: a in b,
    "$nin": lambda a, b: a not in b,
}


def matches(meta: dict[str, Any], where: dict[str, Any] | None) -> bool:
    """Whether a chunk's metadata satisfies a Chroma-style `where` clause."""
    if not where:
        return True
    for key, cond in where.items():
        if key == "$and":
            if not all(matches(meta, c) for c in cond):
                return False
        elif key == "$or":
            if not any(matches(meta, c) for c in cond):
                return False
        elif isinstance(cond, dict):
            actual = meta.get(key)
            for op, expected in cond.items():
                if op not in _OPS:
                    raise ConfigError(f"Unsupported filter operator {op!r}; use one of {', '.join(_OPS)}.")
                try:
                    if not _OPS[op](actual, expected):
                        return False
                except TypeError:  # e.g. comparing a string date with a number: not a match
                    return False
        elif meta.get(key) != cond:
            return False
    return True
