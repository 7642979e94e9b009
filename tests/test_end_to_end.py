"""The foundation end to end, with the real default embedder, a real Chroma in tmp_path and a real loopback LLM:
documents in (txt, md, html, pdf), the right file found for a paraphrased question, cited answers out."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from rag.errors import EmbedderMismatch
from tests.llm_server import LLMServer
from tests.pdfgen import make_pdf

FACTS = {
    "volcano.txt": "Mount Kerelo is a dormant volcano on the island of Tamsa. It last erupted in 1783, "
    "covering the northern villages in ash. The summit rises 2,140 metres above sea level.",
    "bakery.md": "# Bakery handbook\n\nIntro text.\n\n## Opening hours\n\nThe Juniper Street bakery opens at "
    "6:30 every weekday and closes at 15:00. On Sundays it stays closed.\n\n## Sourdough\n\nThe sourdough "
    "starter is fed twice a day with rye flour and water.",
    "garden.html": "<html><head><title>Garden club</title><script>var secret='SCRIPT-TEXT';</script></head>"
    "<body><nav>Home About</nav><main><h1>Garden club</h1><p>The garden club meets on the first Tuesday of "
    "each month in the old library. Members grow heritage tomatoes and runner beans.</p></main></body></html>",
}
PDF_PAGES = [
    "Quarterly report of the Orbis shipping company. Revenue rose in every region.",
    "The Orbis fleet grew to forty-two container ships. The newest ship, the Aurora Wind, was launched in May.",
]


@pytest.fixture(params=["embedded", "server"])
def make_index(request: pytest.FixtureRequest, make_index: Any) -> Any:
    """Every test here runs twice: on the embedded store and on a real `chroma run` server."""
    if request.param == "embedded":
        return make_index
    url = request.getfixturevalue("chroma_server")
    collection = f"t-{uuid.uuid4().hex[:12]}"  # one server serves every test: keep them apart

    def factory(**overrides: Any) -> Any:
        overrides.setdefault("collection", collection)
        return make_index(chroma_url=url, **overrides)

    return factory


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    folder = tmp_path / "docs"
    (folder / "sub").mkdir(parents=True)
    for name, text in FACTS.items():
        (folder / name).write_text(text, encoding="utf-8")
    make_pdf(folder / "sub" / "report.pdf", PDF_PAGES)
    return folder


@pytest.fixture
def index(make_index: Any, corpus: Path) -> Any:
    idx = make_index()
    report = idx.ingest([corpus])
    assert report.added == 4 and not report.failed, report
    return idx


def _names(results: list[Any]) -> list[str]:
    return [Path(r.metadata["source"]).name for r in results]


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("When did the mountain on Tamsa last blow up?", "volcano.txt"),
        ("What time does the shop on Juniper Street start in the morning?", "bakery.md"),
        ("Where do the gardeners get together?", "garden.html"),
        ("How many vessels does the shipping firm own?", "report.pdf"),
    ],
)
@pytest.mark.parametrize("mode", ["hybrid", "dense"])
def test_search_finds_the_right_file_for_a_paraphrased_question(
    index: Any, question: str, expected: str, mode: str
) -> None:
    results = index.search(question, top_k=3, mode=mode)
    assert _names(results)[0] == expected, [(r.score, _names([r])) for r in results]
    scores = [r.score for r in results]
    assert scores == sorted(scores, reverse=True)


def test_structure_is_kept_page_and_heading(index: Any) -> None:
    (hit,) = index.search("newest container ship launched", top_k=1)
    assert Path(hit.source).name == "report.pdf" and hit.page == 2
    (hit,) = index.search("sourdough starter feeding", top_k=1)
    assert hit.metadata["heading"] == "Bakery handbook > Sourdough"
    assert all("SCRIPT-TEXT" not in r.text and "Home About" not in r.text for r in index.search("garden", top_k=5))


def test_keyword_mode_finds_exact_terms(index: Any) -> None:
    results = index.search("Aurora Wind", top_k=2, mode="keyword")
    assert _names(results)[0] == "report.pdf"
    assert index.search("zzzz qqqq", mode="keyword") == []


def test_ask_without_llm_answers_extractively_with_the_right_citation(index: Any) -> None:
    answer = index.ask("In which year did Mount Kerelo last erupt?")
    assert answer.mode == "extractive" and answer.found
    assert "1783" in answer.answer
    assert answer.citations and Path(answer.citations[0].source).name == "volcano.txt"
    assert f"[{answer.citations[0].n}]" in answer.answer
    assert answer.citations[0].text in [r.text for r in answer.results]


def test_ask_on_an_empty_index_is_an_answer_not_an_error(make_index: Any) -> None:
    answer = make_index(collection=f"empty-{uuid.uuid4().hex[:8]}").ask("Anything?")
    assert answer.answer and not answer.found and answer.citations == []


@pytest.mark.parametrize("streamed", [True, False])
def test_ask_through_a_loopback_llm_sends_numbered_chunks_and_keeps_citations(
    make_index: Any, corpus: Path, llm_server: LLMServer, streamed: bool
) -> None:
    idx = make_index(openai_base_url=llm_server.base_url, openai_api_key="sk-test", llm_model="test-model")
    idx.ingest([corpus])
    question = "When did the volcano on Tamsa last erupt?"
    if streamed:
        stream = idx.ask_stream(question)
        assert stream.results, "sources must be known before the answer streams"
        pieces = list(stream)
        answer = stream.answer
        assert len(pieces) > 3 and "".join(pieces) == answer.answer
    else:
        answer = idx.ask(question)
    (request,) = llm_server.chat_requests()
    assert request["body"]["model"] == "test-model" and request["auth"] == "Bearer sk-test"
    prompt = json.dumps(request["body"]["messages"])
    for n, result in enumerate(answer.results, start=1):
        assert f"[{n}] source: {Path(result.source).name}" in prompt
        assert json.dumps(result.text)[1:-1] in prompt
    assert answer.mode == "llm" and answer.found
    assert answer.answer.startswith("From the documents:") and answer.answer.endswith("[1].")
    assert [c.n for c in answer.citations] == [1] and answer.citations[0].id == answer.results[0].id
    assert "1783" in answer.results[0].text


def test_citations_to_blocks_that_do_not_exist_are_dropped_and_flagged(
    make_index: Any, corpus: Path, llm_server: LLMServer
) -> None:
    llm_server.reply = lambda messages: "It erupted in 1783 [1], says block [42]."
    idx = make_index(openai_base_url=llm_server.base_url)
    idx.ingest([corpus])
    answer = idx.ask("When did the volcano erupt?")
    assert [c.n for c in answer.citations] == [1]
    assert any("42" in w for w in answer.warnings)


def test_an_unreachable_llm_falls_back_to_an_extractive_answer_with_a_warning(
    make_index: Any, corpus: Path, llm_server: LLMServer
) -> None:
    llm_server.status = 500
    idx = make_index(openai_base_url=llm_server.base_url)
    idx.ingest([corpus])
    answer = idx.ask("When did Mount Kerelo last erupt?")
    assert answer.mode == "extractive" and "1783" in answer.answer
    assert answer.warnings and "failed" in answer.warnings[0]


def test_reingest_is_a_sync(index: Any, corpus: Path) -> None:
    again = index.ingest([corpus])
    assert (again.added, again.updated, again.unchanged, again.deleted, again.chunks_added) == (0, 0, 4, 0, 0)
    chunks = index.store.count()
    (corpus / "volcano.txt").write_text(FACTS["volcano.txt"].replace("1783", "1791"), encoding="utf-8")
    (corpus / "garden.html").unlink()
    changed = index.ingest([corpus])
    assert (changed.added, changed.updated, changed.unchanged, changed.deleted) == (0, 1, 2, 1)
    assert index.store.count() < chunks
    assert "garden.html" not in _names(index.search("garden club meeting", top_k=10))
    hits = index.search("volcano eruption year", top_k=10, mode="keyword")
    assert any("1791" in h.text for h in hits) and not any("1783" in h.text for h in hits)


def test_a_half_written_document_is_completed_on_the_next_run(index: Any, corpus: Path) -> None:
    """Simulate an interrupt that left only some chunks of a document: the next ingest redoes it, no duplicates."""
    big = corpus / "long.txt"
    big.write_text(" ".join(f"Line {i} of a long text about lighthouses and tides." for i in range(300)))
    index.ingest([big])
    doc_chunks = index.store._col.get(where={"source": str(big.resolve())})["ids"]
    assert len(doc_chunks) > 3
    index.store._col.delete(ids=doc_chunks[-2:])  # the interrupted tail
    report = index.ingest([corpus])
    assert report.updated == 1 and report.unchanged == 4
    after = index.store._col.get(where={"source": str(big.resolve())})["ids"]
    assert sorted(after) == sorted(doc_chunks)


def test_one_bad_file_is_reported_and_the_rest_indexed(make_index: Any, corpus: Path) -> None:
    (corpus / "broken.pdf").write_bytes(b"%PDF-1.4 this is not really a pdf")
    (corpus / "notes.xyz").write_text("unsupported format")
    report = make_index().ingest([corpus, corpus / "notes.xyz", corpus / "missing.txt"])
    assert report.added == 4
    failed = {Path(f["source"]).name: f["error"] for f in report.failed}
    assert set(failed) == {"broken.pdf", "missing.txt"} and all(failed.values())
    assert [Path(s["source"]).name for s in report.skipped] == ["notes.xyz"]


def test_opening_with_another_embedder_is_a_clear_error_and_reindex_fixes_it(make_index: Any, index: Any) -> None:
    from rag.index import Index

    chunks = index.store.count()
    other = _RenamedEmbedder(index.embedder)
    settings = index.settings
    with pytest.raises(EmbedderMismatch, match="rag reindex"):
        Index(settings, embedder=other)
    fixed = Index(settings, embedder=other, check_embedder=False)
    count = fixed.reindex()
    assert count == chunks == fixed.store.count()
    reopened = Index(settings, embedder=other)  # no error now
    assert _names(reopened.search("When did the mountain on Tamsa last blow up?", top_k=1)) == ["volcano.txt"]
    with pytest.raises(EmbedderMismatch):
        make_index()  # the old model now meets the new vectors: refused
    with pytest.raises(EmbedderMismatch):
        index.search("volcano")  # an Index opened before the swap reopens the collection and refuses too


class _RenamedEmbedder:
    """The real embedder under another identity: stands for "the user switched models" (same vectors)."""

    def __init__(self, inner: Any) -> None:
        from dataclasses import replace

        self._inner = inner
        self.identity = replace(inner.identity, variant=inner.identity.variant + "-switched")

    def embed(self, texts: Any) -> Any:
        return self._inner.embed(texts)

    def embed_query(self, text: str) -> Any:
        return self._inner.embed_query(text)
