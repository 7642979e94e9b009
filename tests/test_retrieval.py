"""Hybrid retrieval on a small generated corpus with the real embedder and a real Chroma: weighted fusion,
metadata filters in every mode, MMR, and the keyword index kept in step with the store (add, update, delete,
a writer that died before committing, and writes the index was not told of)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from rag.chunking import chunk_document
from rag.documents import Document, Section
from rag.filters import build_where, matches, to_timestamp
from rag.indexing import embed_text
from rag.keyword import KeywordIndex
from rag.retrieval import fuse
from rag.store import ChromaStore
from rag.types import SearchResult

TOPICS = {
    "volcano.txt": "Mount Kerelo is a dormant volcano on the island of Tamsa. It last erupted in 1783 and "
    "buried the northern villages under grey ash.",
    "bakery.md": "# Bakery\n\nThe Juniper Street bakery opens at 6:30 on weekdays. Its sourdough uses rye flour.",
    "garden.txt": "The garden club meets on the first Tuesday of each month in the old library to swap seeds.",
    "chess.txt": "The chess club plays rapid games on Friday evenings; the winner keeps the brass knight trophy.",
    "tides.md": "# Tides\n\nSpring tides at Portlow harbour rise four metres; boats must leave before the ebb.",
    "comet.txt": "Comet Varrin returns every 76 years; astronomers last photographed its blue tail in 1986.",
}
# Epoch seconds given to the files as mtime: volcano is old, the others recent.
OLD, NEW = 1_500_000_000.0, 1_700_000_000.0


def _r(cid: str) -> SearchResult:
    return SearchResult(cid, cid, 0.0, {"source": cid, "document_id": cid, "page": None})


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    folder = tmp_path / "docs"
    folder.mkdir()
    for name, text in TOPICS.items():
        path = folder / name
        path.write_text(text, encoding="utf-8")
        stamp = OLD if name == "volcano.txt" else NEW
        os.utime(path, (stamp, stamp))
    return folder


@pytest.fixture
def index(make_index: Any, corpus: Path) -> Any:
    idx = make_index()
    report = idx.ingest([corpus])
    assert report.added == len(TOPICS) and not report.failed, report
    return idx


def _names(results: list[SearchResult]) -> list[str]:
    return [Path(r.source).name for r in results]


def _names_of(hits: list[tuple[str, float]], index: Any) -> list[str]:
    return _names(index.store.get([cid for cid, _ in hits]))


def test_weighted_rrf_matches_the_formula_by_hand() -> None:
    dense = [_r("a"), _r("b"), _r("c")]
    keyword = [_r("c"), _r("d")]
    fused = fuse([dense, keyword], [1.0, 2.0], k=10)
    scores = {r.id: r.score for r in fused}
    assert scores["a"] == pytest.approx(1 / 11)
    assert scores["b"] == pytest.approx(1 / 12)
    assert scores["c"] == pytest.approx(1 / 13 + 2 / 11)
    assert scores["d"] == pytest.approx(2 / 12)
    assert [r.id for r in fused] == ["c", "d", "a", "b"]
    # Equal weights: a tie between rank 1 of one list and rank 1 of the other keeps the first list's order.
    assert [r.id for r in fuse([[_r("x")], [_r("y")]])] == ["x", "y"]


@pytest.mark.parametrize("mode", ["hybrid", "dense", "keyword"])
def test_every_mode_ranks_best_first_with_unique_ids(index: Any, mode: str) -> None:
    results = index.search("When did the volcano on Tamsa erupt?", top_k=4, mode=mode)
    assert _names(results)[0] == "volcano.txt"
    scores = [r.score for r in results]
    assert scores == sorted(scores, reverse=True) and all(s > 0 for s in scores)
    assert len({r.id for r in results}) == len(results)


def test_hybrid_finds_what_only_one_list_finds(index: Any) -> None:
    # "Varrin" is a made-up name: only BM25 can match it exactly; the question's wording is for the embedder.
    results = index.search("Varrin", top_k=3, mode="hybrid")
    assert _names(results)[0] == "comet.txt"
    results = index.search("a competition with a prize for the best player", top_k=3, mode="hybrid")
    assert "chess.txt" in _names(results)


@pytest.mark.parametrize("mode", ["hybrid", "dense", "keyword"])
def test_filters_apply_in_every_mode(index: Any, corpus: Path, mode: str) -> None:
    question = "volcano erupted ash"
    by_source = index.search(question, top_k=5, mode=mode, filters={"source": str(corpus / "garden.txt")})
    assert _names(by_source) in ([], ["garden.txt"])
    if mode != "keyword":  # BM25 only returns chunks sharing a word with the question
        assert _names(by_source) == ["garden.txt"]

    md = index.search("opening hours harbour tides bakery", top_k=5, mode=mode, filters={"mime": ["text/markdown"]})
    assert md and {r.metadata["mime"] for r in md} == {"text/markdown"}

    doc_id = index.search("comet", top_k=1, mode="keyword")[0].metadata["document_id"]
    only = index.search("comet tail", top_k=5, mode=mode, filters={"document_id": doc_id})
    assert [r.metadata["document_id"] for r in only] == [doc_id]

    recent = index.search(question, top_k=10, mode=mode, filters={"start_date": "2020-01-01"})
    assert "volcano.txt" not in _names(recent)
    old = index.search(question, top_k=10, mode=mode, filters={"end_date": "2018-01-01T00:00:00Z"})
    assert _names(old) == ["volcano.txt"]


def test_author_filter_and_date_range_on_api_style_metadata(index: Any) -> None:
    """Documents upserted with `author` and `created_at` (as the HTTP API stores them) filter the same way."""
    docs = [
        ("memo-1", "Ana Ruiz", "2024-03-01", "The budget memo moves the volcano survey to spring."),
        ("memo-2", "Ben Okoro", "2024-06-01", "The second memo on the volcano survey adds two geologists."),
    ]
    for doc_id, author, day, text in docs:
        doc = Document(source=f"api:{doc_id}", sections=[Section(text)], document_id=doc_id)
        chunks = chunk_document(doc, 200, 30)
        for c in chunks:
            c.metadata.update({"author": author, "created_at": to_timestamp(day)})
        index.store.add(chunks, index.embedder.embed([embed_text(c.text, c.metadata) for c in chunks]))
    index.store.bump_generation()
    for mode in ("hybrid", "dense", "keyword"):
        ben = index.search("volcano survey memo", top_k=5, mode=mode, filters={"author": "Ben Okoro"})
        assert [r.metadata["document_id"] for r in ben] == ["memo-2"], mode
    index.retriever.config = type(index.retriever.config)(date_field="created_at")
    spring = index.search(
        "volcano survey memo", top_k=5, filters={"start_date": "2024-02-01", "end_date": "2024-04-01"}
    )
    assert [r.metadata["document_id"] for r in spring] == ["memo-1"]


def test_filter_clause_means_the_same_in_python_and_chroma() -> None:
    where = build_where({"source": "a", "mime": ["x", "y"], "start_date": 10, "end_date": "1970-01-01T00:00:20Z"})
    assert where == {
        "$and": [
            {"source": {"$eq": "a"}},
            {"mime": {"$in": ["x", "y"]}},
            {"mtime": {"$gte": 10.0}},
            {"mtime": {"$lte": 20.0}},
        ]
    }
    assert matches({"source": "a", "mime": "y", "mtime": 15.0}, where)
    assert not matches({"source": "a", "mime": "z", "mtime": 15.0}, where)
    assert not matches({"source": "a", "mime": "x"}, where)  # no date: outside any date range
    with pytest.raises(Exception, match="ISO date"):
        build_where({"start_date": "last tuesday"})


def test_mmr_trades_near_duplicates_for_a_different_relevant_chunk(make_index: Any, tmp_path: Path) -> None:
    folder = tmp_path / "dups"
    folder.mkdir()
    base = "The Tamsa volcano erupted in 1783 and ash covered the northern villages"
    (folder / "a.txt").write_text(base + ".", encoding="utf-8")
    (folder / "b.txt").write_text(base + " of the island.", encoding="utf-8")
    (folder / "c.txt").write_text("In 1783 " + base[4:].replace(" in 1783", "") + ".", encoding="utf-8")
    (folder / "d.txt").write_text("Tamsa's volcano is 2,140 metres high and is watched by a seismic station.")
    (folder / "e.txt").write_text("The bakery on Juniper Street sells rye sourdough.", encoding="utf-8")
    idx = make_index(collection="mmr", mmr_lambda=0.2)
    idx.ingest([folder])
    question = "Tamsa volcano eruption"
    plain = _names(idx.search(question, top_k=3, mmr=False))
    assert sorted(plain) == ["a.txt", "b.txt", "c.txt"], plain
    diverse = idx.search(question, top_k=3, mmr=True)
    assert "d.txt" in _names(diverse) and _names(diverse)[0] in ("a.txt", "b.txt", "c.txt")
    scores = [r.score for r in diverse]
    assert scores == sorted(scores, reverse=True)


def test_keyword_index_follows_add_update_delete(index: Any, corpus: Path) -> None:
    assert _names(index.search("Varrin", top_k=3, mode="keyword")) == ["comet.txt"]
    (corpus / "comet.txt").write_text("Comet Oszlan has a green tail and returns every 12 years.", encoding="utf-8")
    (corpus / "owls.txt").write_text("Barn owls of Fenmoor hunt voles along the dykes at dusk.", encoding="utf-8")
    report = index.ingest([corpus])
    assert (report.added, report.updated) == (1, 1)
    assert index.search("Varrin", top_k=3, mode="keyword") == []
    assert _names(index.search("Oszlan", top_k=3, mode="keyword")) == ["comet.txt"]
    assert _names(index.search("Fenmoor owls", top_k=3, mode="keyword")) == ["owls.txt"]
    (corpus / "owls.txt").unlink()
    assert index.ingest([corpus]).deleted == 1
    assert index.search("Fenmoor owls", top_k=3, mode="keyword") == []
    assert index.keyword.size() == index.store.count()
    # Every change went in as it happened: nothing was rebuilt, and a new process trusts what is on disk.
    assert index.keyword.rebuilds == 0
    fresh = KeywordIndex(_foreign_store(index), index.settings.data_dir / "keyword")
    assert _names_of(fresh.search("Oszlan", 3), index) == ["comet.txt"] and fresh.rebuilds == 0


def test_keyword_index_follows_api_upserts_and_deletes_in_place(index: Any) -> None:
    index.upsert_texts([{"id": "memo-1", "text": "The Quillon beetle survey starts on Monday."}])
    assert [r.metadata["document_id"] for r in index.search("Quillon", top_k=3, mode="keyword")] == ["memo-1"]
    index.upsert_texts([{"id": "memo-1", "text": "The Marrow moth survey starts on Tuesday."}])
    assert index.search("Quillon", top_k=3, mode="keyword") == []
    index.delete(ids=["memo-1"])
    assert index.search("Marrow moth", top_k=3, mode="keyword") == []
    assert index.keyword.size() == index.store.count() and index.keyword.rebuilds == 0


def _foreign_store(index: Any) -> ChromaStore:
    """A second handle on the same collection with no keyword listener: a writer that does not mirror its writes
    (another data dir sharing a Chroma server), or a process that died between Chroma's write and ours."""
    s = index.settings
    return ChromaStore(
        s.collection, index.embedder.identity, path=None if s.chroma_url else s.chroma_dir, url=s.chroma_url
    )


def _crash_chunks(source: str, text: str, index: Any) -> tuple[list[Any], Any]:
    chunks = chunk_document(Document(source=source, sections=[Section(text)]), 200, 30)
    return chunks, index.embedder.embed([c.text for c in chunks])


def test_keyword_index_is_rebuilt_after_a_writer_died_before_committing(index: Any) -> None:
    assert index.search("Varrin", top_k=1, mode="keyword")
    # Chunks go to Chroma and into the keyword index's open writer; then the "process dies": the writer is
    # dropped uncommitted and the generation never bumped. The stamp was left pending.
    chunks, vectors = _crash_chunks("crash:1", "Quillon beetles glow under ultraviolet light.", index)
    index.store.add(chunks, vectors)
    dying = index.keyword
    writers = [dying._writer, dying._passage_writer]
    dying._writer = dying._passage_writer = None
    del writers  # dropped uncommitted, as a dead process's are
    fresh = KeywordIndex(_foreign_store(index), index.settings.data_dir / "keyword")
    assert [cid for cid, _ in fresh.search("Quillon beetles", 3)] == [chunks[0].id]
    assert fresh.rebuilds == 1 and fresh.size() == index.store.count()


def test_keyword_index_catches_writes_it_was_not_told_of(index: Any) -> None:
    assert index.search("Varrin", top_k=1, mode="keyword") and index.keyword.rebuilds == 0
    # Died between Chroma's write and ours (no bump): a new process's count check catches it.
    foreign = _foreign_store(index)
    chunks, vectors = _crash_chunks("crash:1", "Quillon beetles glow under ultraviolet light.", index)
    foreign.add(chunks, vectors)
    fresh = KeywordIndex(foreign, index.settings.data_dir / "keyword")
    assert [cid for cid, _ in fresh.search("Quillon beetles", 3)] == [chunks[0].id] and fresh.rebuilds == 1
    # Same count, other text, generation bumped by a writer that never told us: the stamp is stale.
    foreign = _foreign_store(index)
    foreign.delete_document(chunks[0].metadata["document_id"])
    other, vectors = _crash_chunks("crash:2", "Marrow moths prefer linden trees.", index)
    foreign.add(other, vectors)
    foreign.bump_generation()
    assert index.search("Quillon", top_k=3, mode="keyword") == []
    assert [r.id for r in index.search("Marrow moths", top_k=3, mode="keyword")] == [other[0].id]
    assert index.keyword.rebuilds == 1


def test_plain_python_search_needs_only_import_rag(index: Any) -> None:
    import rag

    hits = rag.search("Varrin comet", top_k=2, mode="keyword", data_dir=index.settings.data_dir)
    assert _names(hits)[0] == "comet.txt" and isinstance(hits[0], rag.SearchResult)


def test_convex_fusion_matches_the_formula_by_hand() -> None:
    from rag.retrieval import fuse_scores

    def scored(cid: str, score: float) -> SearchResult:
        r = _r(cid)
        r.score = score
        return r

    dense = [scored("a", 0.9), scored("b", 0.5), scored("c", 0.4)]
    keyword = [scored("c", 12.0), scored("d", 4.0)]
    fused = {r.id: r.score for r in fuse_scores([dense, keyword], [1.0, 3.0])}
    assert fused["a"] == pytest.approx(1 * 1.0 / 4)
    assert fused["b"] == pytest.approx(1 * 0.2 / 4)
    assert fused["c"] == pytest.approx((0.0 + 3 * 1.0) / 4)
    assert fused["d"] == pytest.approx(0.0)
    assert list(fused) == ["c", "a", "b", "d"]


def test_convex_method_is_selectable_in_settings(make_index: Any, corpus: Path) -> None:
    idx = make_index(fusion_method="convex", collection="convex")
    idx.ingest([corpus])
    results = idx.search("When did the volcano on Tamsa erupt?", top_k=3)
    assert _names(results)[0] == "volcano.txt" and all(0 <= r.score <= 1 for r in results)


def test_mmr_by_hand_on_known_vectors() -> None:
    import numpy as np

    from rag.retrieval import mmr_rerank

    ranked = [SearchResult(c, c, s, {}) for c, s in (("a", 1.0), ("a2", 0.9), ("b", 0.5), ("z", 0.0))]
    vecs = {"a": [1.0, 0.0], "a2": [1.0, 0.01], "b": [0.0, 1.0], "z": [-1.0, 0.0]}
    got = mmr_rerank(ranked, np.array([1.0, 0.0]), lambda ids: {i: np.array(vecs[i]) for i in ids}, 2, 0.5)
    # a first (relevance 1); then a2: 0.5·0.9 − 0.5·1.0 = −0.05 loses to b: 0.5·0.5 − 0.5·0 = 0.25.
    assert [r.id for r in got] == ["a", "b"] and [r.score for r in got] == pytest.approx([0.5, 0.25])
    relevance_only = mmr_rerank(ranked, np.array([1.0, 0.0]), lambda ids: {i: np.array(vecs[i]) for i in ids}, 3, 1.0)
    assert [r.id for r in relevance_only] == ["a", "a2", "b"]


def test_a_keyword_index_from_an_older_version_is_rebuilt_not_misread(index: Any) -> None:
    folder = index.settings.data_dir / "keyword" / index.store.name
    shutil.rmtree(folder)
    (folder / "bm25").mkdir(parents=True)  # the bm25s layout of earlier releases
    (folder / "stamp.json").write_text(json.dumps({"generation": index.store.generation()}))
    fresh = KeywordIndex(_foreign_store(index), index.settings.data_dir / "keyword")
    assert _names_of(fresh.search("Varrin comet", 3), index) == ["comet.txt"]
    assert fresh.rebuilds == 1 and not (folder / "bm25").exists()


def test_hybrid_scores_every_candidate_on_both_sides_by_hand(index: Any) -> None:
    """Default fusion: cosine and passage BM25 for every candidate of either list, min-max over all, weighted."""
    import numpy as np

    from rag.keyword import passage_id

    question = "Which comet has a blue tail?"
    dense, keyword = index.retriever.candidates(question, 150)
    ids = list({r.id: r for r in keyword} | {r.id: r for r in dense})
    q = index.embedder.embed_query(question)
    vectors = index.store.vectors(ids)
    cosine = np.array([float(vectors[c] @ q / np.linalg.norm(vectors[c]) / np.linalg.norm(q)) for c in ids])
    meta = {r.id: r.metadata for r in index.store.get(ids)}
    passages = {c: passage_id(meta[c]["document_id"], meta[c]["ordinal"]) for c in ids}
    bm25 = index.keyword.passage_scores(question, set(passages.values()))
    kw = np.array([bm25.get(passages[c], 0.0) for c in ids])
    expected = 0.6 * (cosine - cosine.min()) / np.ptp(cosine) + 0.4 * (kw - kw.min()) / np.ptp(kw)
    got = {r.id: r.score for r in index.search(question, top_k=len(ids))}
    assert set(got) == set(ids)  # keyword-only candidates were given a cosine, dense-only ones a BM25
    for cid, want in zip(ids, expected, strict=True):
        assert got[cid] == pytest.approx(want, abs=1e-5)
    assert _names(index.store.get([max(got, key=got.get)])) == ["comet.txt"]


def test_a_chunk_is_scored_by_the_words_of_its_passage(make_index: Any, tmp_path: Path) -> None:
    """The question's two rare words sit in neighbouring chunks of one document; another document's single chunk
    has one of them. The passage holding both outranks it on the keyword side."""
    folder = tmp_path / "passages"
    folder.mkdir()
    filler = " ".join(f"Sentence {i} says nothing in particular about anything at all." for i in range(12))
    (folder / "split.txt").write_text(f"Zorvath enzymes were isolated. {filler} They regulate Pellimor growth.")
    (folder / "single.txt").write_text("Pellimor growth was measured in the field.")
    idx = make_index(collection="passages", chunk_size=60, chunk_overlap=0)
    idx.ingest([folder])
    split = idx.store.get([f"{d}_{n}" for d in idx.store.document_sources() for n in range(8)])
    assert len([r for r in split if r.source.endswith("split.txt")]) >= 3  # several chunks, one passage
    from rag.keyword import passage_id

    by_source = {Path(r.source).name: passage_id(r.metadata["document_id"], 0) for r in split}
    scores = idx.keyword.passage_scores("Zorvath Pellimor", set(by_source.values()))
    assert scores[by_source["split.txt"]] > scores[by_source["single.txt"]] > 0


def test_a_process_that_keeps_searching_sees_another_process_ingest_without_a_rebuild(
    index: Any, tmp_path: Path
) -> None:
    """The UI or `rag serve` keeps its index open; `rag ingest` runs in another process: the keyword index takes
    the other process's commit by reloading, not by rebuilding."""
    import subprocess
    import sys

    assert index.search("Oszlan", top_k=3, mode="keyword") == []
    folder = tmp_path / "more"
    folder.mkdir()
    (folder / "oszlan.txt").write_text("Comet Oszlan has a green tail and returns every 12 years.", encoding="utf-8")
    env = {**os.environ, "RAG_DATA_DIR": str(index.settings.data_dir)}
    done = subprocess.run(
        [sys.executable, "-m", "rag.cli", "ingest", str(folder)], env=env, capture_output=True, text=True, timeout=240
    )
    assert done.returncode == 0, done.stderr
    assert _names(index.search("Oszlan", top_k=3, mode="keyword")) == ["oszlan.txt"]
    assert index.keyword.rebuilds == 0
