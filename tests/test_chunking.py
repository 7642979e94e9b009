"""Chunking: token-exact windows, sentences kept whole where possible, structure carried into metadata."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import textwrap

import pytest

from rag.chunking import chunk_document, count_tokens, split_section
from rag.documents import Document, Section

SENTENCES = [f"Sentence number {i} talks about topic {i % 7} in a few plain words." for i in range(60)]
TEXT = " ".join(SENTENCES)


@pytest.mark.parametrize(("size", "overlap"), [(40, 0), (40, 10), (64, 16), (200, 30)])
def test_no_chunk_exceeds_size_in_tokens(size: int, overlap: int) -> None:
    spans = split_section(TEXT, size, overlap)
    assert len(spans) > 1
    assert all(count_tokens(TEXT[a:b]) <= size for a, b in spans)


def test_chunks_cover_the_whole_text_in_order() -> None:
    spans = split_section(TEXT, 50, 10)
    assert spans[0][0] == 0 and spans[-1][1] == len(TEXT)
    for (a1, b1), (a2, b2) in itertools.pairwise(spans):
        assert a1 < a2 <= b1 < b2  # consecutive chunks overlap or touch, never leave a gap


def test_overlap_is_at_most_the_configured_tokens_and_present() -> None:
    spans = split_section(TEXT, 50, 20)
    for (_, b1), (a2, _) in itertools.pairwise(spans):
        shared = TEXT[a2:b1]
        assert shared.strip(), "consecutive chunks should share text when overlap > 0"
        assert count_tokens(shared) <= 20


def test_chunks_end_on_sentence_boundaries_when_sentences_fit() -> None:
    spans = split_section(TEXT, 60, 0)
    for a, b in spans:
        chunk = TEXT[a:b].strip()
        assert chunk.endswith("words."), chunk[-40:]
        assert chunk.startswith("Sentence number"), chunk[:40]


def test_a_sentence_longer_than_the_window_is_cut_at_word_boundaries() -> None:
    long = " ".join(f"word{i}" for i in range(400))  # no sentence end at all
    spans = split_section(long, 50, 0)
    assert all(count_tokens(long[a:b]) <= 50 for a, b in spans)
    assert all(not long[a:b].strip().endswith("wor") for a, b in spans)
    assert "".join(long[a:b] for a, b in spans) == long


def test_special_token_text_in_a_document_is_just_text() -> None:
    text = "A document may contain <|endoftext|> literally. It must not break chunking."
    assert split_section(text, 100, 0) == [(0, len(text))]


def test_chunks_carry_ids_page_heading_and_document_fields() -> None:
    doc = Document(
        source="/docs/manual.pdf",
        sections=[Section("First page text. " * 40, page=1), Section("Second page.", page=2)],
        title="Manual",
        mime="application/pdf",
    )
    chunks = chunk_document(doc, 50, 10)
    assert [c.id for c in chunks] == [f"{doc.document_id}_{i}" for i in range(len(chunks))]
    assert chunks[-1].metadata["page"] == 2 and chunks[0].metadata["page"] == 1
    assert all(c.metadata["n_chunks"] == len(chunks) for c in chunks)
    assert all(c.metadata["source"] == "/docs/manual.pdf" and c.metadata["sha256"] == doc.sha256 for c in chunks)
    md = Document(source="/docs/a.md", sections=[Section("Body text.", heading="Install > From source")])
    (only,) = chunk_document(md, 50, 10)
    assert only.metadata["heading"] == "Install > From source" and "page" not in only.metadata


def test_tiktoken_works_offline_from_the_encodings_inside_llama_index() -> None:
    """In a fresh process that refuses every socket, the tokenizer still loads (from llama-index-core's cache)."""
    code = textwrap.dedent(
        """
        import socket, sys
        def refuse(*a, **k):
            raise SystemExit("network touched: " + repr(a[:2]))
        socket.socket.connect = refuse
        socket.getaddrinfo = refuse
        from rag.chunking import count_tokens
        print(count_tokens("offline tokenization works"))
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "TIKTOKEN_CACHE_DIR"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert int(out.stdout.strip()) == 4
