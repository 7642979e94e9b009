"""The whole page in a real headless Chromium: chat, uploads, collections, the map.

The Gradio app runs in this process on 127.0.0.1 over a real index (real default embedder, no LLM → extractive
answers); playwright drives Debian's Chromium (apt-installed when missing), every request that leaves loopback is
refused and fails the test, and screenshots go to `test-artifacts/ui/` for a human to look at.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

from tests.llm_server import LLMServer
from tests.pdfgen import make_pdf
from ui.render import NO_LLM

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
TIMEOUT_MS = 60_000

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
PDF_PAGES = [
    "Marlow Canal Handbook\nThe canal opened to boats in 1794.",
    "Locks\nThe Marlow canal climbs through seventeen locks between the river and the summit pond.",
]


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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def _serve_corpus(tmp_path: Path, **overrides: Any) -> Iterator[str]:
    """The page over a freshly ingested two-file corpus, served on a free loopback port."""
    import rag
    from ui.app import build_app, serve

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name, text in CORPUS.items():
        (corpus / name).write_text(text, encoding="utf-8")
    index = rag.open_index(data_dir=tmp_path / "rag-data", collection="ui-test", **overrides)
    report = index.ingest([corpus])
    assert report.added == 2 and report.ok, report

    demo = build_app(index)
    serve(demo, port=_free_port(), block=False)
    try:
        yield demo.local_url or ""
    finally:
        demo.close()


@pytest.fixture
def ui_url(tmp_path: Path) -> Iterator[str]:
    with _serve_corpus(tmp_path) as url:
        yield url


class Browser:
    """Pages that share one network guard and one list of console errors."""

    def __init__(self, browser: Any, url: str) -> None:
        self.browser, self.url = browser, url
        self.routed: list[str] = []
        self.outside: list[str] = []
        self.console_errors: list[str] = []

    def _guard(self, route: Any) -> None:
        self.routed.append(route.request.url)
        if urlparse(route.request.url).hostname in ("127.0.0.1", "localhost"):
            route.continue_()
        else:
            self.outside.append(route.request.url)
            route.abort()

    def open(self, width: int, height: int) -> Any:
        from playwright.sync_api import expect

        context = self.browser.new_context(viewport={"width": width, "height": height})
        context.route("**/*", self._guard)
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.on("console", lambda m: self.console_errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.console_errors.append(f"page error: {e}"))
        page.goto(self.url)
        expect(page.locator("#rag-question textarea")).to_be_visible()
        expect(page.locator("#rag-status")).to_contain_text("chunks")
        return page


def ask(page: Any, question: str) -> None:
    page.locator("#rag-question textarea").fill(question)
    page.locator("#rag-send").click()


def pick(page: Any, dropdown: str, option: str) -> None:
    page.locator(f"{dropdown} input").click()
    page.get_by_role("option", name=option, exact=True).click()


def tab(page: Any, name: str) -> None:
    page.get_by_role("tab", name=name).click()


@pytest.mark.browser
def test_the_page_answers_uploads_switches_collections_and_draws_the_map(
    chromium: Path, ui_url: str, tmp_path: Path
) -> None:
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=TIMEOUT_MS)  # a shared 2-core machine can be slow; nothing here is timed
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    print(f"\nUI screenshots: {ARTIFACTS}")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(chromium), headless=True, args=CHROMIUM_ARGS)
        b = Browser(browser, ui_url)
        try:
            page = b.open(1280, 800)
            status = page.locator("#rag-status")
            expect(status).to_contain_text("ui-test")
            expect(status).to_contain_text("2 documents")
            expect(status).to_contain_text(NO_LLM)
            chat, sources = page.locator("#rag-chat"), page.locator("#rag-sources")
            bot = chat.locator(".message.bot")

            # Ask: answer with a citation marker that links to its source card, the quote highlighted.
            ask(page, "How many apple trees grow in the Quillfeather orchard?")
            expect(bot).to_have_count(1)
            expect(bot.last).to_contain_text("212")
            expect(sources).to_contain_text("Sources")
            expect(sources.locator("#rag-src-1")).to_contain_text("orchard-notes.txt")
            expect(sources.locator("#rag-src-1 mark")).to_contain_text("212 apple trees")
            expect(page.locator("#rag-cited-files")).to_contain_text("orchard-notes")
            # Document markup is shown as text and never executed, in the answer and in the sources.
            expect(sources).to_contain_text("<script>window.__pwned = 1</script>")
            assert page.evaluate("window.__pwned") is None
            marker = bot.last.locator('a[href="#rag-src-1"]')
            expect(marker).to_have_text("[1]")
            marker.click()
            expect(sources.locator("#rag-src-1")).to_have_class("rag-source rag-flash")
            assert len(page.context.pages) == 1, "a citation link opened another tab"

            # Follow-up: history kept; retrieval settings applied (keyword mode, one chunk).
            page.locator("#rag-settings").get_by_text("Settings").click()
            page.locator("#rag-mode").get_by_text("keyword").click()
            ask(page, "What powers the Zephyr research station?")
            expect(bot).to_have_count(2)
            expect(bot.last).to_contain_text("wind turbines")
            expect(sources).to_contain_text("zephyr-station.md")
            expect(bot.first).to_contain_text("212")
            page.screenshot(path=str(ARTIFACTS / "chat-1280x800.png"))

            # Not found, said plainly.
            ask(page, "zzqx vvbn")
            expect(bot).to_have_count(3)
            expect(bot.last).to_contain_text("not")
            page.locator("#rag-mode").get_by_text("hybrid").click()

            # Upload a PDF and a broken file: progress, then the PDF indexed and the broken one with its reason.
            tab(page, "Documents")
            good = make_pdf(tmp_path / "canal-handbook.pdf", PDF_PAGES, title="Marlow Canal Handbook")
            broken = tmp_path / "broken.pdf"
            broken.write_bytes(b"%PDF-1.4\nthis is not really a pdf\n")
            page.locator("#rag-upload input[type=file]").set_input_files([str(good), str(broken)])
            progress = page.locator("#rag-progress")
            expect(progress.locator(".rag-progress[data-running=false]")).to_have_count(1)
            expect(progress.locator(".rag-added")).to_contain_text("canal-handbook.pdf")
            expect(progress.locator(".rag-failed")).to_contain_text("broken.pdf")
            expect(progress.locator(".rag-failed .rag-why")).not_to_be_empty()
            expect(status).to_contain_text("3 documents")
            expect(page.locator("#rag-docs")).to_contain_text("canal-handbook.pdf")
            page.screenshot(path=str(ARTIFACTS / "documents-1280x800.png"), full_page=True)

            # A folder: every file in it.
            folder = tmp_path / "field-notes"
            folder.mkdir()
            (folder / "heron.txt").write_text("The grey heron nests in the alder carr by the mill.", encoding="utf-8")
            (folder / "otter.txt").write_text("Otters were seen below the weir in March.", encoding="utf-8")
            page.locator("#rag-upload-folder input[type=file]").set_input_files(str(folder))
            expect(progress.locator(".rag-added")).to_have_count(2)
            expect(progress).to_contain_text("heron.txt")
            expect(status).to_contain_text("5 documents")

            tab(page, "Chat")
            ask(page, "How many locks does the Marlow canal climb through?")
            expect(bot).to_have_count(4)
            expect(bot.last).to_contain_text("seventeen")
            expect(sources).to_contain_text("canal-handbook.pdf")
            expect(sources).to_contain_text("page 2")

            # The map: the collection's chunks, the question and its retrieved chunks.
            tab(page, "Map")
            caption = page.locator("#rag-map-caption")
            expect(caption).to_contain_text("PCA")
            expect(caption).to_contain_text("your last question")
            expect(page.locator("#rag-map svg .mark-symbol path").first).to_be_visible()
            assert page.locator("#rag-map svg .mark-symbol path").count() >= 5
            page.locator("#rag-map svg .mark-symbol path").first.hover()  # hovering a point shows its text
            expect(page.locator("#vg-tooltip-element")).to_contain_text("text")
            page.screenshot(path=str(ARTIFACTS / "map-1280x800.png"))

            # Collections: create one (empty: nothing found), switch back, delete a scratch one after confirming.
            tab(page, "Documents")
            page.locator("#rag-new-collection textarea, #rag-new-collection input").first.fill("scratch-notes")
            page.locator("#rag-create").click()
            expect(status).to_contain_text("scratch-notes")
            expect(status).to_contain_text("0 documents")
            expect(page.locator("#rag-docs")).not_to_contain_text("canal-handbook.pdf")
            pick(page, "#rag-collection", "ui-test")  # switch back and forth with the picker
            expect(status).to_contain_text("5 documents")
            expect(page.locator("#rag-docs")).to_contain_text("canal-handbook.pdf")
            pick(page, "#rag-collection", "scratch-notes")
            expect(status).to_contain_text("0 documents")
            tab(page, "Chat")
            expect(bot).to_have_count(0)
            ask(page, "How many apple trees grow in the Quillfeather orchard?")
            expect(bot.last).to_contain_text("Nothing in the index matches")
            tab(page, "Documents")
            page.locator("#rag-delete").click()
            expect(page.locator("#rag-confirm")).to_contain_text("scratch-notes")
            page.locator("#rag-confirm-delete").click()
            expect(status).to_contain_text("ui-test")
            expect(status).to_contain_text("5 documents")
            page.locator("#rag-collection input").click()
            expect(page.get_by_role("option", name="scratch-notes")).to_have_count(0)
            page.keyboard.press("Escape")
            page.screenshot(path=str(ARTIFACTS / "collections-1280x800.png"), full_page=True)

            # A phone-width screen.
            phone = b.open(390, 844)
            ask(phone, "When is the harvest festival held?")
            expect(phone.locator("#rag-chat .message.bot").last).to_contain_text("September")
            expect(phone.locator("#rag-sources")).to_contain_text("orchard-notes.txt")
            phone.screenshot(path=str(ARTIFACTS / "chat-390x844.png"), full_page=True)
        finally:
            browser.close()

    assert b.routed, "the request guard saw no requests: it is not in effect"
    assert b.outside == [], f"the page requested URLs outside loopback: {b.outside}"
    assert b.console_errors == [], f"console errors: {b.console_errors}"


@pytest.mark.browser
def test_llm_answers_stream_with_links_stop_ends_one_and_the_llm_can_be_switched_off(
    chromium: Path, tmp_path: Path, llm_server: LLMServer
) -> None:
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=TIMEOUT_MS)
    released = threading.Event()
    answer = "The station is powered by three wind turbines named Ada, Brin and Cato [1]."

    def stalled(messages: list[dict[str, Any]]) -> str:
        released.wait(TIMEOUT_MS / 1000)
        return "THIS STOPPED ANSWER MUST NOT APPEAR [1]."

    llm_server.reply = lambda messages: answer
    llm = {"openai_base_url": llm_server.base_url, "openai_api_key": "sk-test", "llm_model": "test-model"}
    with _serve_corpus(tmp_path, **llm) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(chromium), headless=True, args=CHROMIUM_ARGS)
        b = Browser(browser, url)
        try:
            page = b.open(1280, 800)
            expect(page.locator("#rag-status")).to_contain_text("LLM test")
            bot = page.locator("#rag-chat .message.bot")

            ask(page, "What powers the Zephyr research station?")
            expect(bot.last).to_contain_text("Ada, Brin and Cato")
            expect(bot.last.locator('a[href="#rag-src-1"]')).to_have_text("[1]")
            expect(page.locator("#rag-sources #rag-src-1")).to_contain_text("zephyr-station.md")
            assert len(llm_server.chat_requests()) == 1

            llm_server.reply = stalled
            ask(page, "And what supplies the station?")
            expect(page.locator("#rag-chat .message.user")).to_have_count(2)
            # The question shows at once; the LLM has not answered yet.
            expect(page.locator("#rag-sources")).to_contain_text("Searching the documents")
            page.locator("#rag-stop").click()
            released.set()
            llm_server.reply = lambda messages: answer

            # The LLM switched off in the settings panel: an extractive answer, no request to the LLM.
            page.locator("#rag-settings").get_by_text("Settings").click()
            page.locator("#rag-use-llm input").uncheck()
            requests = len(llm_server.chat_requests())
            ask(page, "How often does the supply ship reach the station?")
            expect(bot.last).to_contain_text("forty days")
            assert len(llm_server.chat_requests()) == requests
            expect(page.locator("#rag-chat")).not_to_contain_text("MUST NOT APPEAR")
            expect(page.locator("#rag-chat .message.user")).to_have_count(3)
        finally:
            browser.close()
    assert b.outside == [], f"the page requested URLs outside loopback: {b.outside}"
    assert b.console_errors == [], f"console errors: {b.console_errors}"
