"""Filters mean the same on both sides of hybrid search: Chroma applies them to dense hits, `rag.filters` to BM25
hits. Each clause is run through both and must pick the same documents."""

from __future__ import annotations

from typing import Any

import pytest

from rag.errors import ConfigError
from rag.filters import matches
from rag.records import plugin_where

DOCS = [
    {
        "id": "a",
        "text": "Harbour note one.",
        "metadata": {"source": "email", "author": "ann", "created_at": "2024-01-01"},
    },
    {
        "id": "b",
        "text": "Harbour note two.",
        "metadata": {"source": "chat", "author": "bob", "created_at": "2024-06-01"},
    },
    {"id": "c", "text": "Harbour note three.", "metadata": {"source": "file", "source_id": "c.txt"}},
    {"id": "d", "text": "Harbour note four.", "metadata": {"author": "ann", "created_at": "2025-02-03T04:05:06Z"}},
]


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ({"author": "ann"}, {"a", "d"}),
        ({"author": "ann", "document_id": "d"}, {"d"}),
        ({"author": {"$ne": "ann"}}, {"b", "c"}),  # a missing key is "not equal", in Chroma too
        ({"author": {"$in": ["bob", "cat"]}}, {"b"}),
        ({"author": {"$nin": ["bob"]}}, {"a", "c", "d"}),
        ({"created_at": {"$gte": 1717200000}}, {"b", "d"}),  # 2024-06-01T00:00:00Z
        ({"created_at": {"$lt": 1717200000}}, {"a"}),  # no created_at: no match
        ({"$or": [{"author": "bob"}, {"source_type": "file"}]}, {"b", "c"}),
        (plugin_where({"source": "email"}), {"a"}),
        (plugin_where({"source": "file"}), {"c"}),  # d has no source: not a file
        (plugin_where({"source_id": "c.txt"}), {"c"}),
        (plugin_where({"start_date": "2024-03-01", "end_date": "2025-02-03"}), {"b", "d"}),
        (plugin_where({"author": "ann", "end_date": "2024-12-31T23:59:59+00:00"}), {"a"}),
    ],
)
def test_dense_and_keyword_sides_apply_a_filter_alike(
    make_index: Any, where: dict[str, Any], expected: set[str]
) -> None:
    index = make_index()
    index.upsert_texts(DOCS)
    dense = {r.metadata["document_id"] for r in index.search("harbour note", top_k=10, mode="dense", filters=where)}
    keyword = {r.metadata["document_id"] for r in index.search("harbour note", top_k=10, mode="keyword", filters=where)}
    assert dense == keyword == expected


def test_unknown_operators_and_fields_are_refused_with_a_hint() -> None:
    with pytest.raises(ConfigError, match=r"\$like"):
        matches({"a": 1}, {"a": {"$like": 1}})
    with pytest.raises(ConfigError, match="start_date"):
        plugin_where({"colour": "red"})
    with pytest.raises(ConfigError, match="ISO 8601"):
        plugin_where({"end_date": "31/12/2024"})
