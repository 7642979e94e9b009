"""The Chroma adapter keeps a chunk's text in its metadata, never shows that key, and still reads collections
written by earlier versions (text in Chroma's `documents`)."""

from __future__ import annotations

from typing import Any

from rag.chunking import chunk_document
from rag.documents import Document, Section


def test_text_is_stored_in_metadata_and_never_shown(make_index: Any) -> None:
    index = make_index(collection="texts")
    chunks = chunk_document(Document(source="memo:1", sections=[Section("Quillon beetles glow at night.")]), 200, 30)
    index.store.add(chunks, index.embedder.embed([c.text for c in chunks]))
    index.store.bump_generation()
    raw = index.store._col.get(ids=[chunks[0].id], include=["documents", "metadatas"])
    assert raw["documents"] == [None] and raw["metadatas"][0]["rag:text"] == chunks[0].text
    results = [
        *index.search("Quillon beetles", top_k=1),
        *index.search("Quillon beetles", top_k=1, mode="dense"),
        *index.search("Quillon beetles", top_k=1, mode="keyword"),
        *index.store.get([chunks[0].id]),
    ]
    for r in results:
        assert r.text == chunks[0].text and "rag:text" not in r.metadata
    rows = list(index.store.iter_chunks())
    assert rows[0]["text"] == chunks[0].text and "rag:text" not in rows[0]["metadata"]
    assert index.documents()[0]["chunks"] == 1


def test_a_collection_of_an_earlier_version_is_read_the_same(make_index: Any) -> None:
    index = make_index(collection="older")
    chunks = chunk_document(Document(source="memo:2", sections=[Section("Marrow moths prefer linden trees.")]), 200, 30)
    vectors = index.embedder.embed([c.text for c in chunks])
    # Written as earlier versions did: the text in Chroma's documents, the metadata without it.
    index.store._col.upsert(
        ids=[c.id for c in chunks], embeddings=vectors, documents=[c.text for c in chunks],
        metadatas=[c.metadata for c in chunks],
    )  # fmt: skip
    index.store.bump_generation()
    for mode in ("hybrid", "dense", "keyword"):
        hits = index.search("Marrow moths", top_k=1, mode=mode)
        assert [h.text for h in hits] == [chunks[0].text], mode
    assert [r.text for r in index.store.get([chunks[0].id])] == [chunks[0].text]
