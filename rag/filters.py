"""Metadata filters: one dict syntax for dense search (Chroma's `where`) and keyword search (evaluated here).

A filter is either plain equalities (`{"source": "/a.txt", "page": 2}`) or Chroma's operator form
(`{"$and": [{"created_at": {"$gte": 1700000000}}, {"author": {"$in": ["ann", "bob"]}}]}`). Keeping one syntax lets
the BM25 side apply exactly what Chroma applies to the dense side, so hybrid results obey the same filter.
"""

from __future__ import annotations

from typing import Any

from rag.errors import ConfigError

_COMPARE = {
    "$eq": lambda a, b: a == b,
    "$ne": lambda a, b: a != b,
    "$gt": lambda a, b: a is not None and a > b,
    "$gte": lambda a, b: a is not None and a >= b,
    "$lt": lambda a, b: a is not None and a < b,
    "$lte": lambda a, b: a is not None and a <= b,
    "$in": lambda a, b: a in b,
    "$nin": lambda a, b: a not in b,
}


def to_where(filters: dict[str, Any] | None) -> dict[str, Any] | None:
    """Chroma wants one key per clause: several top-level equalities are joined with `$and`."""
    if not filters:
        return None
    if len(filters) == 1:
        return dict(filters)
    return {"$and": [{key: value} for key, value in filters.items()]}


def matches(meta: dict[str, Any], where: dict[str, Any] | None) -> bool:
    """Whether chunk metadata satisfies `where` (either form above), as Chroma would decide it."""
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
            value = meta.get(key)
            for op, operand in cond.items():
                if op not in _COMPARE:
                    raise ConfigError(f"Unknown filter operator {op!r}: use one of {', '.join(_COMPARE)}.")
                try:
                    if not _COMPARE[op](value, operand):
                        return False
                except TypeError:  # comparing a string with a number: no match, as in Chroma
                    return False
        elif meta.get(key) != cond:
            return False
    return True
