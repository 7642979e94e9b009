"""The chat UI: pure formatting helpers, then the real page in a real headless Chromium.

The browser test runs the Gradio app in this process on 127.0.0.1 over a real index (real default embedder, no
LLM → extractive answers), drives Debian's Chromium with playwright, refuses every request that leaves loopback,
and saves screenshots to `test-artifacts/ui/` for a human to look at.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

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

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "test-artifacts" / "ui"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost",
]
TIMEOUT_MS = 30_000


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

    first_history, first_panel = states[0]
    assert first_history[:2] == earlier and first_history[-1] == {"role": "assistant", "content": ""}
    assert "<h3>Retrieved</h3>" in first_panel and "zephyr-station.md" in first_panel
    answers = [history[-1]["content"] for history, _ in states]
    growing = [a for a in dict.fromkeys(answers) if a]
    assert len(growing) >= 4, f"the answer did not arrive piece by piece: {answers}"
    assert all(b.startswith(a) for a, b in pairwise(growing))
    last_history, last_panel = states[-1]
    assert "wind turbines" in last_history[-1]["content"] and "[1]" in last_history[-1]["content"]
    assert len(last_history) == 4
    assert "<h3>Sources</h3>" in last_panel and "<b>[1]</b>" in last_panel and "zephyr-station.md" in last_panel
    assert len(llm_server.chat_requests()) == 1


def test_launch_refuses_a_public_share_link(make_index: Any) -> None:
    from ui.app import launch

    with pytest.raises(ValueError, match="share"):
        launch(make_index(), share=True)


# --- the real page in a real browser ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Debian's Chromium; installed with apt when missing (CI machines start without it)."""
    if not CHROMIUM.exists():
        if shutil.which("apt-get") is None:
            pytest.fail(f"{CHROMIUM} is missing and apt-get is not available: install Chromium to run the UI test")
        try:
            subprocess.run(["apt-get", "update"], check=True, capture_output=True, timeout=300)
            subprocess.run(
                ["apt-get", "install", "-y", "--no-install-recommends", "chromium"],
                check=True,
                capture_output=True,
                timeout=600,
                env={"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
            )
        except (subprocess.SubprocessError, OSError) as exc:
            detail = getattr(exc, "stderr", b"") or b""
            pytest.fail(f"could not install Chromium with apt-get (needed for the UI test): {exc}\n{detail[-2000:]!r}")
        if not CHROMIUM.exists():
            pytest.fail(f"apt-get installed chromium but {CHROMIUM} does not exist")
    return CHROMIUM


CORPUS = {
    "orchard-notes.txt": (
        "Quillfeather Orchard\n\n"
        "The Quillfeather orchard grows 212 apple trees of the Bramble Gold variety.\n"
        "The harvest festival is held on the second Saturday of September.\n\n"
        "Markup such as <script>window.__pwned = 1</script> is shown as text, never run.\n"
    ),
    "zephyr-station.md": (
        "# Zephyr Research Station\n\n"
        "## Power\n\n"
        "The Zephyr research station is powered by three wind turbines named Ada, Brin and Cato.\n\n"
        "## Supplies\n\n"
        "A supply ship reaches the station every forty days, weather permitting.\n"
    ),
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def ui_url(tmp_path: Path) -> Iterator[str]:
    """The chat page over a freshly ingested two-file corpus, served on a free loopback port."""
    import rag
    from ui.app import build_app

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name, text in CORPUS.items():
        (corpus / name).write_text(text, encoding="utf-8")
    index = rag.open_index(data_dir=tmp_path / "rag-data", collection="ui-test")
    report = index.ingest([corpus])
    assert report.added == 2 and report.ok, report

    demo = build_app(index)
    port = _free_port()
    demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=port, quiet=True)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        demo.close()


@pytest.mark.browser
def test_chat_page_streams_cited_answers_and_shows_their_sources(chromium: Path, ui_url: str) -> None:
    from playwright.sync_api import Page, expect, sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    print(f"\nUI screenshots: {ARTIFACTS}")
    routed: list[str] = []
    outside: list[str] = []
    console_errors: list[str] = []

    def guard(route: Any) -> None:
        routed.append(route.request.url)
        host = urlparse(route.request.url).hostname
        if host in ("127.0.0.1", "localhost"):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    def open_page(browser: Any, width: int, height: int) -> Page:
        context = browser.new_context(viewport={"width": width, "height": height})
        context.route("**/*", guard)
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: console_errors.append(f"page error: {e}"))
        page.goto(ui_url)
        expect(page.locator("#rag-question textarea")).to_be_visible()
        return page

    def ask(page: Page, question: str) -> None:
        page.locator("#rag-question textarea").fill(question)
        page.locator("#rag-send").click()

    started = time.monotonic()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(chromium), headless=True, args=CHROMIUM_ARGS)
        try:
            page = open_page(browser, 1280, 800)
            status = page.locator("#rag-status")
            expect(status).to_contain_text("ui-test")
            expect(status).to_contain_text("2 documents")
            expect(status).to_contain_text(NO_LLM)

            chat = page.locator("#rag-chat")
            sources = page.locator("#rag-sources")
            bot = chat.locator(".message.bot")

            ask(page, "How many apple trees grow in the Quillfeather orchard?")
            expect(bot).to_have_count(1)
            expect(bot.last).to_contain_text("212")
            expect(bot.last).to_contain_text("[1]")
            expect(sources).to_contain_text("Sources")
            expect(sources).to_contain_text("orchard-notes.txt")
            # Document markup is shown as text and never executed, in the answer and in the sources.
            expect(sources).to_contain_text("<script>window.__pwned = 1</script>")
            assert page.evaluate("window.__pwned") is None
            expect(page.locator("#rag-question textarea")).to_have_value("")

            ask(page, "What powers the Zephyr research station?")
            expect(bot).to_have_count(2)
            expect(bot.last).to_contain_text("wind turbines")
            expect(bot.last).to_contain_text("[1]")
            expect(sources).to_contain_text("zephyr-station.md")
            expect(sources).to_contain_text("Power")
            expect(chat.locator(".message.user")).to_have_count(2)
            expect(bot.first).to_contain_text("212")  # the first turn is still there
            page.screenshot(path=str(ARTIFACTS / "chat-1280x800.png"))

            page.locator("#rag-clear").click()
            expect(chat.locator(".message")).to_have_count(0)
            expect(sources).not_to_contain_text("zephyr-station.md")

            phone = open_page(browser, 390, 844)
            ask(phone, "When is the harvest festival held?")
            expect(phone.locator("#rag-chat .message.bot").last).to_contain_text("September")
            expect(phone.locator("#rag-sources")).to_contain_text("orchard-notes.txt")
            phone.screenshot(path=str(ARTIFACTS / "chat-390x844.png"), full_page=True)
        finally:
            browser.close()

    assert routed, "the request guard saw no requests: it is not in effect"
    assert outside == [], f"the page requested URLs outside loopback: {outside}"
    assert console_errors == [], f"console errors: {console_errors}"
    assert time.monotonic() - started < 90
