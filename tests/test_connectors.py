"""Connectors: every supported format read from real files written by the test, folder walks that survive what
real folders contain, and a reason a user can act on for every file that cannot be read."""

from __future__ import annotations

import hashlib
import importlib.util
import io
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from pypdf import PdfReader, PdfWriter

import connectors
from connectors import base
from rag.documents import Section, document_id_for
from rag.errors import SourceError, UnsupportedFormat
from tests.pdfgen import make_pdf

SAMPLES = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "docs"
HAS_CRYPTOGRAPHY = importlib.util.find_spec("cryptography") is not None


def paths_of(items: list[Path | SourceError], root: Path) -> list[str]:
    return [p.relative_to(root).as_posix() for p in items if isinstance(p, Path)]


def errors_of(items: list[Path | SourceError]) -> list[SourceError]:
    return [e for e in items if isinstance(e, SourceError)]


# --- plain text and encodings ---------------------------------------------------------------------------------

SENTENCE = "Crème brûlée costs 5 € at the café — naïve “quotes” included."


@pytest.mark.parametrize("codec", ["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "utf-32", "cp1252"])
def test_text_in_any_common_encoding_decodes_to_the_same_words(tmp_path: Path, codec: str) -> None:
    path = tmp_path / f"note-{codec}.txt"
    path.write_bytes(("\n".join([SENTENCE] * 3) + "\n").encode(codec))

    doc = connectors.load(path)

    assert doc.text == "\n".join([SENTENCE] * 3)
    assert doc.sections == [Section(doc.text)]


def test_legacy_cyrillic_text_is_detected(tmp_path: Path) -> None:
    text = "Москва — столица России, крупнейший по численности населения город страны. " * 4
    path = tmp_path / "moscow.txt"
    path.write_bytes(text.encode("cp1251"))

    assert "столица России" in connectors.load(path).text


def test_document_records_where_it_came_from_and_a_hash_of_the_file_bytes(tmp_path: Path) -> None:
    path = tmp_path / "Notes.TXT"
    data = "\ufeffwindows line endings\r\nsecond line\r\n".encode()
    path.write_bytes(data)
    os.utime(path, (1_700_000_000, 1_700_000_000))

    doc = connectors.load(path)

    assert doc.text == "windows line endings\nsecond line"
    assert doc.source == str(path.resolve())
    assert doc.document_id == document_id_for(str(path.resolve()))
    assert doc.sha256 == hashlib.sha256(data).hexdigest()
    assert (doc.title, doc.mime, doc.size, doc.mtime) == ("Notes", "text/plain", len(data), 1_700_000_000)


def test_binary_file_with_a_text_suffix_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "image.txt"
    path.write_bytes(bytes(range(256)) * 8)

    with pytest.raises(SourceError, match="not text") as err:
        connectors.load(path)
    assert err.value.source == str(path.resolve())


def test_empty_or_blank_file_is_an_empty_error(tmp_path: Path) -> None:
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "blank.md").write_text("\n   \n\t\n")

    for name in ("empty.txt", "blank.md"):
        with pytest.raises(SourceError, match=r": empty"):
            connectors.load(tmp_path / name)


# --- markdown -------------------------------------------------------------------------------------------------

GUIDE = """Intro before any heading.

# User Guide

## Install

Use pip.

### From source

```bash
# clone first: this is a comment, not a heading
git clone repo
```

Then build.

## Usage

Run it.
"""


def test_markdown_sections_carry_their_heading_path_and_ignore_hashes_in_code(tmp_path: Path) -> None:
    path = tmp_path / "guide.md"
    path.write_text(GUIDE, encoding="utf-8")

    doc = connectors.load(path)

    assert [s.heading for s in doc.sections] == [
        None,
        "User Guide > Install",
        "User Guide > Install > From source",
        "User Guide > Usage",
    ]
    assert doc.sections[0].text == "Intro before any heading."
    from_source = doc.sections[2].text
    assert from_source.startswith("### From source") and "# clone first" in from_source and "Then build." in from_source
    assert doc.title == "User Guide" and doc.mime == "text/markdown"


def test_markdown_setext_headings_front_matter_and_tilde_fences(tmp_path: Path) -> None:
    path = tmp_path / "notes.markdown"
    path.write_text(
        "---\ntitle: Field Notes\ntags: [a]\n---\n\nOverview\n========\n\nBirds.\n\n~~~~\n## not a heading\n~~~~\n\n"
        "Details\n-------\n\nNests.\n\n---\n\nAfter a rule.\n",
        encoding="utf-8",
    )

    doc = connectors.load(path)

    assert [s.heading for s in doc.sections] == [None, "Overview", "Overview > Details"]
    assert "## not a heading" in doc.sections[1].text
    assert doc.sections[2].text.endswith("After a rule.")
    assert doc.title == "Overview"  # the first H1 wins over front matter


def test_markdown_without_h1_is_titled_by_file_stem(tmp_path: Path) -> None:
    path = tmp_path / "changelog.md"
    path.write_bytes("## 1.0\n\nFirst release — naïve.\n".encode("cp1252"))

    doc = connectors.load(path)

    assert doc.title == "changelog"
    assert doc.sections == [Section("## 1.0\n\nFirst release — naïve.", heading="1.0")]


# --- html -----------------------------------------------------------------------------------------------------

PAGE = """<!doctype html>
<html><head><title>Travel  Policy</title><style>p { color: red }</style>
<script>var secret = "tracking code";</script></head>
<body>
<header><a href="/">Home</a> site banner</header>
<nav><ul><li>Menu item</li></ul></nav>
<main>
  <h1>Travel Policy</h1>
  <p>Book early.</p><p>Keep receipts.</p>
  <h2>Meals</h2>
  <div>Up to <b>40</b> euros</div><div>per day</div>
  <table><tr><th>City</th><th>Limit</th></tr><tr><td>Paris</td><td>60</td></tr></table>
  <h3>Alcohol</h3><p>Never refunded.</p>
  <h2>Hotels</h2><ul><li>Three stars</li><li>Near the office</li></ul>
  <form><input name="q"><button>Search the site</button></form>
  <noscript>Enable JavaScript</noscript>
</main>
<aside>Related posts</aside><footer>Copyright footer</footer>
</body></html>"""


def test_html_keeps_the_content_split_at_headings_and_drops_page_chrome(tmp_path: Path) -> None:
    path = tmp_path / "travel.html"
    path.write_text(PAGE, encoding="utf-8")

    doc = connectors.load(path)

    assert doc.title == "Travel Policy" and doc.mime == "text/html"
    assert [s.heading for s in doc.sections] == [
        "Travel Policy",
        "Travel Policy > Meals",
        "Travel Policy > Meals > Alcohol",
        "Travel Policy > Hotels",
    ]
    assert doc.sections[0].text == "Travel Policy\nBook early.\nKeep receipts."
    assert doc.sections[1].text == "Meals\nUp to 40 euros\nper day\nCity | Limit\nParis | 60"
    assert doc.sections[3].text == "Hotels\nThree stars\nNear the office"
    for chrome in ("tracking", "color", "Menu item", "banner", "Related", "Copyright", "Search the site", "JavaScript"):
        assert chrome not in doc.text


def test_html_without_main_uses_the_body_and_first_h1_as_title(tmp_path: Path) -> None:
    path = tmp_path / "plain.htm"
    path.write_text("<p>Before</p><h1>Only  Heading</h1><p>After<br>break</p><!-- a comment -->", encoding="utf-8")

    doc = connectors.load(path)

    assert doc.title == "Only Heading"
    assert doc.sections == [Section("Before"), Section("Only Heading\nAfter\nbreak", heading="Only Heading")]


def test_html_encoding_from_meta_charset_and_from_utf16_bom(tmp_path: Path) -> None:
    body = "<html><head><meta charset='windows-1252'><title>Café</title></head><body><p>Déjà vu — 5 €</p></body></html>"
    (tmp_path / "legacy.html").write_bytes(body.encode("cp1252"))
    (tmp_path / "wide.html").write_bytes(body.replace("windows-1252", "utf-16").encode("utf-16"))

    for name in ("legacy.html", "wide.html"):
        doc = connectors.load(tmp_path / name)
        assert (doc.title, doc.text) == ("Café", "Déjà vu — 5 €"), name


def test_html_article_header_keeps_the_article_title(tmp_path: Path) -> None:
    path = tmp_path / "post.html"
    path.write_text(
        "<header>Site banner</header><article><header><h1>Post title</h1></header><p>Body text.</p></article>",
        encoding="utf-8",
    )

    assert connectors.load(path).sections == [Section("Post title\nBody text.", heading="Post title")]


def test_html_without_a_declared_charset_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "old.html"
    path.write_bytes("<p>L'été était très chaud; el niño pagó 3 €.</p>".encode("cp1252"))

    assert connectors.load(path).text == "L'été était très chaud; el niño pagó 3 €."


def test_html_with_only_scripts_is_empty(tmp_path: Path) -> None:
    path = tmp_path / "app.html"
    path.write_text("<html><body><script>render()</script><nav>Menu</nav></body></html>", encoding="utf-8")

    with pytest.raises(SourceError, match="empty"):
        connectors.load(path)


# --- pdf ------------------------------------------------------------------------------------------------------


def test_pdf_gives_one_section_per_page_with_page_numbers(tmp_path: Path) -> None:
    path = make_pdf(
        tmp_path / "report.pdf",
        ["Hello page one\nSecond line (with parens) and a \\ backslash", "", "Page three café"],
        title="Annual Report",
    )

    doc = connectors.load(path)

    assert doc.sections == [
        Section("Hello page one\nSecond line (with parens) and a \\ backslash", page=1),
        Section("Page three café", page=3),  # the blank page 2 is skipped, numbering is not
    ]
    assert (doc.title, doc.mime) == ("Annual Report", "application/pdf")
    assert doc.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_pdf_without_title_metadata_is_titled_by_stem(tmp_path: Path) -> None:
    assert connectors.load(make_pdf(tmp_path / "minutes.pdf", ["Agenda"])).title == "minutes"


@pytest.mark.parametrize(
    "data",
    [b"not a pdf at all", b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog", b""],
    ids=["garbage", "truncated", "zero-bytes"],
)
def test_corrupt_pdf_is_a_source_error_without_warnings(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "broken.pdf"
    path.write_bytes(data)

    with pytest.raises(SourceError, match="not a valid PDF") as err:
        connectors.load(path)  # pytest turns any warning into an error here, so this also proves there are none
    assert err.value.source == str(path.resolve())


def test_pdf_with_no_text_on_any_page_suggests_it_is_scanned(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"empty: no extractable text \(scanned\? OCR is not supported\)"):
        connectors.load(make_pdf(tmp_path / "scan.pdf", ["", ""]))


def _encrypted(tmp_path: Path, user_password: str) -> Path:
    writer = PdfWriter(clone_from=PdfReader(make_pdf(tmp_path / "plain.pdf", ["Confidential figures"])))
    writer.encrypt(user_password=user_password, owner_password="owner-secret", algorithm="RC4-128")
    buffer = io.BytesIO()
    writer.write(buffer)
    path = tmp_path / "locked.pdf"
    path.write_bytes(buffer.getvalue())
    return path


def test_pdf_with_only_an_owner_password_opens(tmp_path: Path) -> None:
    assert connectors.load(_encrypted(tmp_path, user_password="")).text == "Confidential figures"


def test_pdf_needing_a_password_says_so(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="encrypted: password required"):
        connectors.load(_encrypted(tmp_path, user_password="open-sesame"))


# --- dispatch and the registry --------------------------------------------------------------------------------


def test_unsupported_suffix_is_reported_with_the_supported_ones(tmp_path: Path) -> None:
    path = tmp_path / "sheet.xlsx"
    path.write_bytes(b"PK\x03\x04")

    with pytest.raises(UnsupportedFormat, match=r"unsupported file type '\.xlsx' \(supported: .*\.md.*\.pdf"):
        connectors.load(path)
    assert {".txt", ".md", ".markdown", ".html", ".htm", ".pdf"} <= connectors.SUPPORTED_SUFFIXES


def test_a_new_format_plugs_in_by_registering_a_loader(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def load_shout(path: Path, data: bytes, options: connectors.LoadOptions) -> tuple[list[Section], str, str]:
        return [Section(data.decode().upper())], "shouted", "text/x-shout"

    monkeypatch.setitem(base._LOADERS, ".shout", load_shout)
    (tmp_path / "a.shout").write_text("quiet words")

    assert paths_of(list(connectors.discover([tmp_path])), tmp_path) == ["a.shout"]
    doc = connectors.load(tmp_path / "a.shout")
    assert (doc.text, doc.title, doc.mime) == ("QUIET WORDS", "shouted", "text/x-shout")


def test_a_loader_bug_costs_one_file_as_a_source_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def buggy(path: Path, data: bytes, options: connectors.LoadOptions) -> tuple[list[Section], str, str]:
        raise KeyError("oops")

    monkeypatch.setitem(base._LOADERS, ".bug", buggy)
    (tmp_path / "a.bug").write_text("x")

    with pytest.raises(SourceError, match="KeyError"):
        connectors.load(tmp_path / "a.bug")


def test_load_of_a_missing_file_or_a_folder_is_a_source_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="not found"):
        connectors.load(tmp_path / "gone.md")
    (tmp_path / "folder.md").mkdir()
    with pytest.raises(SourceError, match="is a folder"):
        connectors.load(tmp_path / "folder.md")


# --- discover -------------------------------------------------------------------------------------------------


def _tree(root: Path) -> None:
    for rel in (
        "b.md",
        "a.txt",
        "image.png",
        "sub/c.html",
        "sub/deeper/d.pdf",
        "sub/drafts/e.md",
        ".hidden.md",
        ".secret/f.md",
        ".git/HEAD.txt",
        "Zeta.MD",
    ):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("x")


def test_discover_walks_a_folder_sorted_skipping_hidden_and_unsupported(tmp_path: Path) -> None:
    _tree(tmp_path)

    items = list(connectors.discover([tmp_path]))

    assert paths_of(items, tmp_path) == [
        "Zeta.MD",
        "a.txt",
        "b.md",
        "sub/c.html",
        "sub/deeper/d.pdf",
        "sub/drafts/e.md",
    ]
    assert errors_of(items) == []


def test_discover_include_and_exclude_match_relative_paths_and_names(tmp_path: Path) -> None:
    _tree(tmp_path)

    def found(include: list[str], exclude: list[str]) -> list[str]:
        return paths_of(list(connectors.discover([tmp_path], include, exclude)), tmp_path)

    assert found(["*.md"], []) == ["b.md", "sub/drafts/e.md"]  # fnmatch is case-sensitive: Zeta.MD is not *.md
    assert found(["sub/**/*.md", "a.*"], []) == ["a.txt", "sub/drafts/e.md"]
    assert found([], ["drafts"]) == ["Zeta.MD", "a.txt", "b.md", "sub/c.html", "sub/deeper/d.pdf"]
    assert found([], ["sub/*", "*.txt"]) == ["Zeta.MD", "b.md"]
    assert found(["*.md"], ["sub/drafts/*"]) == ["b.md"]


def test_discover_yields_explicit_files_and_reports_what_it_cannot_use(tmp_path: Path) -> None:
    (tmp_path / "notes.md").write_text("x")
    (tmp_path / ".hidden.txt").write_text("x")
    (tmp_path / "data.xlsx").write_text("x")

    items = list(connectors.discover([tmp_path / "notes.md", tmp_path / ".hidden.txt", "data.xlsx", "missing.pdf"]))

    assert items[:2] == [tmp_path / "notes.md", tmp_path / ".hidden.txt"]  # named explicitly, so not skipped
    assert isinstance(items[2], UnsupportedFormat) and items[2].source == "data.xlsx"
    assert type(items[3]) is SourceError and (items[3].source, items[3].reason) == ("missing.pdf", "not found")
    assert len(items) == 4


def test_discover_survives_a_symlink_loop_and_yields_each_real_file_once(tmp_path: Path) -> None:
    (tmp_path / "docs" / "inner").mkdir(parents=True)
    (tmp_path / "docs" / "inner" / "a.md").write_text("x")
    (tmp_path / "docs" / "inner" / "loop").symlink_to(tmp_path / "docs", target_is_directory=True)
    (tmp_path / "docs" / "alias.md").symlink_to(tmp_path / "docs" / "inner" / "a.md")
    (tmp_path / "docs" / "dangling.md").symlink_to(tmp_path / "nowhere.md")

    items = list(connectors.discover([tmp_path / "docs", tmp_path / "docs"]))

    assert paths_of(items, tmp_path / "docs") == ["alias.md"]  # inner/a.md is the same file, reached second
    assert [(Path(e.source).name, e.reason) for e in errors_of(items)] == [("dangling.md", "broken symlink")]


def test_discover_reports_an_unreadable_folder_and_carries_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "locked").mkdir()
    (tmp_path / "locked" / "x.md").write_text("x")
    (tmp_path / "z.md").write_text("x")
    real_scandir = os.scandir

    def scandir(path: str | os.PathLike[str]) -> Iterator[os.DirEntry[str]]:
        # chmod 000 would do, but not for root (CI containers): fail the way the kernel would.
        if Path(path).name == "locked":
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    items = list(connectors.discover([tmp_path]))

    assert paths_of(items, tmp_path) == ["z.md"]
    assert [(Path(e.source).name, e.reason) for e in errors_of(items)] == [
        ("locked", "cannot read folder: Permission denied")
    ]


def test_discover_never_raises_for_a_file_that_vanishes_mid_walk(tmp_path: Path) -> None:
    for name in ("a.md", "b.md", "c.md"):
        (tmp_path / name).write_text("x")

    walk = connectors.discover([tmp_path])
    first = next(walk)
    (tmp_path / "b.md").unlink()
    rest = list(walk)

    assert first == tmp_path / "a.md"
    assert [item if isinstance(item, Path) else (Path(item.source).name, item.reason) for item in rest] == [
        ("b.md", "vanished while scanning"),
        tmp_path / "c.md",
    ]


def test_discover_of_odd_paths_yields_errors_not_exceptions(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.txt")
    (tmp_path / "broken-link").symlink_to(tmp_path / "nowhere")

    items = list(connectors.discover([tmp_path / "pipe.txt", tmp_path / "broken-link", tmp_path / "no" / "dir"]))

    assert [e.reason for e in errors_of(items)] == ["not a regular file", "not found (broken symlink)", "not found"]
    assert len(items) == 3


# --- the shared real-world samples ----------------------------------------------------------------------------

_AES_REASON = "encrypted: password required" if HAS_CRYPTOGRAPHY else "encrypted with AES: install 'cryptography'"
# file → a phrase its text must contain, or the start of the error reason it must give
EXPECTED = {
    "txt/book-war-and-peace-1p.txt": "Genoa and Lucca",
    "txt/charset_normalizer-sample-chinese.txt": "維基大典",
    "txt/charset_normalizer-sample-english.bom.txt": "About 2 months ago",
    "txt/charset_normalizer-sample-french-1.txt": "JEAN-BAPTISTE POQUELIN MOLIÈRE",
    "txt/charset_normalizer-sample-russian.txt": "В гимназии он не был",
    "txt/fake-text-utf-16-be.txt": "Doylestown, PA 18901",
    "txt/fake-text-utf-16.txt": "Hamburgers are delicious",
    "txt/fake-text-utf-32.txt": "Dogs are the best",
    "txt/fake-text.txt": "This is a test document",
    "txt/norwich-city.txt": "Iwan Roberts",
    "markdown/README.md": "XBRL 10-K",
    "markdown/codeblock.md": "<heading>Reminder</heading>",
    "markdown/eng_spa_mult.md": "Todos los seres humanos",
    "markdown/simple-table.md": "Juicy Apples | 1.99",
    "markdown/umlauts-non-utf8.md": "können",
    "markdown/umlauts-utf8.md": "äöüß",
    "html/example-10k-1p.html": "Galaxy Gaming, Inc.",
    "html/example-steelJIS-datasheet-utf-16.html": "Alloy steel bars for special application",
    "html/fake-html-cp1252.html": "L'été était très chaud",  # undeclared cp1252, not cp1250
    "html/fake-html.html": "Row 2, Cell 2",
    "html/ideas-page.html": "Knowledge grows fractally",
    "pdf/GeoBase_NHNC1_Data_Model_UML_EN.pdf": "National Hydro Network",
    "pdf/Seige_of_Vicksburg_Sample_OCR.pdf": "VICKSBURG",
    "pdf/copy-protected.pdf": "LayoutParser" if HAS_CRYPTOGRAPHY else "encrypted with AES: install 'cryptography'",
    "pdf/crazyones-encrypted-256.pdf": _AES_REASON,  # its user password is "password", not empty
    "pdf/crazyones.pdf": "The misfits. The rebels.",
    "pdf/crazyones.txt": "Heres to the crazy ones",
    "pdf/fake-memo.pdf": "20,000 bottles of water",
    "pdf/layout-parser-paper-fast.pdf": "Unified Toolkit for Deep",
    "pdf/libreoffice-writer-password.pdf": "encrypted: password required",
    "pdf/loremipsum-flat.pdf": "empty: no extractable text (scanned? OCR is not supported)",
    "pdf/multi-column-2p.pdf": "Dense Passage Retrieval",
    "pdf/r4-user-password.pdf": "encrypted: password required",
}
_FOLDERS = ("txt", "markdown", "html", "pdf")


@pytest.mark.skipif(not SAMPLES.is_dir(), reason=f"shared sample documents not found at {SAMPLES}")
def test_every_shared_sample_is_found_and_either_loads_or_says_why() -> None:
    found = list(connectors.discover([SAMPLES / folder for folder in _FOLDERS]))
    assert errors_of(found) == []
    assert sorted(paths_of(found, SAMPLES)) == sorted(EXPECTED)
    outcomes = {}
    for path in found:
        assert isinstance(path, Path)
        try:
            outcomes[path.relative_to(SAMPLES).as_posix()] = connectors.load(path).text
        except SourceError as exc:
            outcomes[path.relative_to(SAMPLES).as_posix()] = exc.reason
    wrong = {
        name: outcome[:200]
        for name, outcome in outcomes.items()
        if EXPECTED[name].replace("install '", "install the '") not in outcome
    }
    assert wrong == {}
