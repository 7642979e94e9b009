"""The chat UI without a browser: pure formatting helpers, then the chat handler over a real index and a real
streaming LLM on loopback. The page in a real browser is `tests/test_ui_browser.py`."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from rag.types import Citation, SearchResult
from tests.llm_server import LLMServer
from ui.render import (
    EMPTY_SOURCES,
    NO_LLM,
    file_name,
    rows_from_citations,
    rows_from_results,
    snippet,
    sources_html,
    status_markdown,
)


def _result(n: int, source: str, text: str, score: float, **meta: Any) -> SearchResult:
    return SearchResult(f"doc{n}:0", text, score, {"source": source, "document_id": f"doc{n}", "page": None, **meta})


# --- pure formatting ---------------------------------------------------------------------------------------------


def test_file_name_is_the_last_part_of_a_path_or_url() -> None:
    assert file_name("/data/docs/guide.md") == "guide.md"
    assert file_name(r"C:\docs\report.pdf") == "report.pdf"
    assert file_name("https://example.org/policies/travel/?x=1#top") == "travel"
    assert file_name("notes.txt") == "notes.txt"


def test_snippet_collapses_whitespace_and_cuts_long_text_at_a_word() -> None:
    assert snippet("a\n\n  b\tc") == "a b c"
    long = "word " * 100
    cut = snippet(long, limit=50)
    assert cut.endswith("…") and len(cut) <= 51 and "wor…" not in cut


def test_snippet_drops_markdown_heading_marks() -> None:
    assert snippet("## Power\n\nThe station runs on wind.") == "Power The station runs on wind."
    assert snippet("Item #3 stays") == "Item #3 stays"


def test_snippet_of_a_long_chunk_starts_at_the_sentence_the_answer_quotes() -> None:
    chunk = "Opening words about nothing in particular. " * 8 + "The keeper was Thomas Pellow. " + "Filler. " * 5
    cut = snippet(chunk, limit=80, focus="The keeper was Thomas Pellow. [2]")
    assert cut.startswith("…The keeper was Thomas Pellow.")
    assert snippet(chunk, limit=80, focus="unrelated zebra").startswith("Opening words")


def test_cited_rows_show_the_evidence_of_a_long_chunk() -> None:
    text = "Intro sentence here. " * 20 + "Flights need fourteen days notice."
    results = [_result(1, "/d/travel.html", text, 0.5)]
    rows = rows_from_citations([Citation(1, "doc1:0", "/d/travel.html", None, text)], results, "fourteen days [1]")
    assert "Flights need fourteen days notice." in rows[0].snippet


def test_sources_escape_document_markup() -> None:
    rows = rows_from_results(
        [_result(1, "/d/<evil>.html", "<script>alert(1)</script> & more", 0.5, heading="<b>H</b>")]
    )
    html = sources_html(rows)
    assert "<script>" not in html and "<b>H</b>" not in html and "<evil>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in html
    assert "&lt;b&gt;H&lt;/b&gt;" in html


def test_sources_show_number_file_location_and_score() -> None:
    results = [
        _result(1, "/d/guide.md", "Install it.", 0.0328, heading="Setup > Install"),
        _result(2, "/d/manual.pdf", "Page text.", 0.0161, page=3),
    ]
    html = sources_html(rows_from_results(results), "Retrieved")
    assert "<h3>Retrieved</h3>" in html
    assert "<b>[1]</b>" in html and "guide.md" in html and "Setup &gt; Install" in html and "score 0.033" in html
    assert "<b>[2]</b>" in html and "manual.pdf" in html and "page 3" in html
    assert 'title="/d/guide.md"' in html


def test_cited_rows_keep_answer_numbers_and_take_scores_from_the_results() -> None:
    results = [_result(1, "/d/a.txt", "A.", 0.9), _result(2, "/d/b.txt", "B.", 0.4)]
    citations = [Citation(2, "doc2:0", "/d/b.txt", None, "B.", "Intro")]
    rows = rows_from_citations(citations, results)
    assert [(r.n, r.source, r.location, r.score) for r in rows] == [(2, "/d/b.txt", "Intro", 0.4)]


def test_no_rows_show_the_placeholder() -> None:
    assert sources_html([]) == EMPTY_SOURCES


def test_status_line_names_collection_counts_embedder_and_llm() -> None:
    status = {"collection": "notes", "documents": 1, "chunks": 7, "embedder": {"name": "all-MiniLM-L6-v2"}}
    line = status_markdown({**status, "llm": None})
    assert "**notes**" in line and "1 document ·" in line and "7 chunks" in line and NO_LLM in line
    assert "MiniLM" in line
    assert "LLM gpt\\-4o\\-mini" in status_markdown({**status, "llm": "gpt-4o-mini"})


# --- the chat handler, with a real streaming LLM on loopback ------------------------------------------------------


def test_chat_turn_shows_retrieved_chunks_first_then_streams_the_answer_then_cites(
    tmp_path: Path, make_index: Any, llm_server: LLMServer
) -> None:
    from ui.app import chat_turn

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "zephyr-station.md").write_text(CORPUS["zephyr-station.md"], encoding="utf-8")
    index = make_index(openai_base_url=llm_server.base_url, openai_api_key="sk-test", llm_model="test-model")
    index.ingest([corpus])
    llm_server.reply = lambda messages: "The station is powered by three wind turbines named Ada, Brin and Cato [1]."
    earlier = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]

    states = list(chat_turn(index, "What powers the Zephyr research station?", earlier))

    question = {"role": "user", "content": "What powers the Zephyr research station?"}
    assert states[0][0][-2:] == [question, {"role": "assistant", "content": ""}]
    assert "Searching" in states[0][1]
    first_history, first_panel, turn = states[1]
    assert first_history[:2] == earlier and first_history[-1] == {"role": "assistant", "content": ""}
    assert "<h3>Retrieved</h3>" in first_panel and "zephyr-station.md" in first_panel
    assert turn.question == "What powers the Zephyr research station?" and turn.result_ids
    streamed = [history[-1]["content"] for history, _, _ in states[:-1]]
    growing = [a for a in dict.fromkeys(streamed) if a]
    assert len(growing) >= 4, f"the answer did not arrive piece by piece: {streamed}"
    assert all(b.startswith(a) for a, b in pairwise(growing))
    last_history, last_panel, last_turn = states[-1]
    final = last_history[-1]["content"]
    assert final.startswith("The station is powered by three wind turbines") and "(#rag-src-1)" in final
    assert len(last_history) == 4
    assert "<h3>Sources</h3>" in last_panel and 'id="rag-src-1"' in last_panel and "zephyr-station.md" in last_panel
    assert last_turn.cited_sources == [str(corpus / "zephyr-station.md")]
    # The earlier turn reaches the pipeline: one request rewrites the follow-up, one answers it.
    condense, answer = llm_server.chat_requests()
    assert earlier[0]["content"] in str(condense["body"]["messages"]) and answer["body"].get("stream")


def test_chat_turn_applies_the_settings_panel(tmp_path: Path, make_index: Any) -> None:
    from ui.chat import AskOptions, chat_turn

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name, text in CORPUS.items():
        (corpus / name).write_text(text, encoding="utf-8")
    index = make_index()
    index.ingest([corpus])
    only_station = AskOptions(top_k=1, mode="keyword", source=str(corpus / "zephyr-station.md"))
    *_, (history, panel, turn) = chat_turn(index, "How many apple trees grow in the orchard?", [], only_station)
    assert len(turn.result_ids) <= 1 and "orchard-notes.txt" not in panel
    *_, (history, panel, turn) = chat_turn(index, "How many apple trees grow in the orchard?", [], AskOptions(top_k=1))
    assert len(turn.result_ids) == 1 and "212" in history[-1]["content"] and "orchard-notes.txt" in panel

    # A date filter: every file here was written today (dense mode: Chroma applies the operator itself).
    future = AskOptions(mode="dense", since="2999-01-01")
    *_, (history, panel, turn) = chat_turn(index, "How many apple trees grow in the orchard?", [], future)
    assert turn.result_ids == [] and "Nothing in the index matches" in history[-1]["content"]
    past = AskOptions(mode="dense", since="2000-01-01")
    *_, (history, panel, turn) = chat_turn(index, "How many apple trees grow in the orchard?", [], past)
    assert turn.result_ids and "212" in history[-1]["content"]
    *_, (history, panel, turn) = chat_turn(index, "apple trees", [], AskOptions(since="31/01/2025"))
    assert "must be a date like 2025-01-31" in history[-1]["content"]


def test_launch_refuses_a_public_share_link(make_index: Any) -> None:
    from ui.app import launch

    with pytest.raises(ValueError, match="share"):
        launch(make_index(), share=True)


CORPUS = {
    "orchard-notes.txt": "The Quillfeather orchard grows 212 apple trees of the Bramble Gold variety.\n",
    "zephyr-station.md": (
        "# Zephyr Research Station\n\n## Power\n\n"
        "The Zephyr research station is powered by three wind turbines named Ada, Brin and Cato.\n"
    ),
}


def test_citation_markers_link_to_their_source_cards() -> None:
    from ui.render import link_citations

    linked = link_citations("Ada powers it [1]. Both agree [2, 3]. Not a marker: [x].")
    assert "[\\[1\\]](#rag-src-1)" in linked
    assert "[\\[2\\]](#rag-src-2)[\\[3\\]](#rag-src-3)" in linked and "[x]" in linked


def test_the_quoted_sentence_is_highlighted_and_the_full_passage_is_one_click_away() -> None:
    text = "The orchard opened in 1901. It grows 212 apple trees of one variety. Visitors are welcome."
    results = [_result(1, "/d/orchard.txt", text, 0.5)]
    answer = "The orchard grows 212 apple trees [1]."
    rows = rows_from_citations([Citation(1, "doc1:0", "/d/orchard.txt", None, text)], results, answer)
    html = sources_html(rows)
    assert '<li class="rag-source" id="rag-src-1">' in html
    assert "<mark>It grows 212 apple trees of one variety.</mark>" in html
    long = "Intro words here. " * 30 + "The key fact is 42."
    rows = rows_from_results([_result(1, "/d/long.txt", long, 0.5)])
    assert "<details" in sources_html(rows) and "The key fact is 42." in sources_html(rows)
