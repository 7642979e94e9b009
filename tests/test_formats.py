"""DOCX, PPTX, CSV, JSON/NDJSON and EPUB from files written by the test; the file-size limit, archive bombs,
mislabelled and truncated files, and PDF passwords given per file pattern."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import docx
import pptx
import pytest
from pptx.util import Inches
from pypdf import PdfReader, PdfWriter

import connectors
from connectors import LoadOptions
from rag.documents import Section
from rag.errors import SourceError
from tests.pdfgen import make_pdf

DOCX_MIME = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"

# --- DOCX -----------------------------------------------------------------------------------------------------


def make_docx(path: Path) -> Path:
    d = docx.Document()
    d.core_properties.title = "Travel Policy"
    d.add_paragraph("Applies to every employee.")
    d.add_heading("Meals", level=1)
    d.add_paragraph("The meal allowance in Europe is 45 euros a day.")
    d.add_heading("Hotels", level=2)
    table = d.add_table(rows=2, cols=3)
    cells = table.rows[0].cells + table.rows[1].cells
    for cell, text in zip(cells, ["City", "Cap", "Note", "Paris", "180", ""], strict=True):
        cell.text = text
    d.add_heading("Taxis", level=1)
    d.add_paragraph("Taxis need a receipt.")
    d.sections[0].footer.paragraphs[0].text = "Company confidential"
    d.save(str(path))
    return path


def test_docx_keeps_paragraphs_tables_and_heading_paths(tmp_path: Path) -> None:
    doc = connectors.load(make_docx(tmp_path / "policy.docx"))

    assert doc.sections == [
        Section("Applies to every employee."),
        Section("Meals\nThe meal allowance in Europe is 45 euros a day.", heading="Meals"),
        Section("Hotels\nCity | Cap | Note\nParis | 180", heading="Meals > Hotels"),
        Section("Taxis\nTaxis need a receipt.", heading="Taxis"),
        Section("Company confidential", heading="Headers and footers"),
    ]
    assert (doc.title, doc.mime) == ("Travel Policy", DOCX_MIME)


def test_docx_merged_cells_count_once(tmp_path: Path) -> None:
    d = docx.Document()
    table = d.add_table(rows=2, cols=2)
    table.cell(0, 0).merge(table.cell(0, 1)).text = "Quarterly totals"
    table.cell(1, 0).text, table.cell(1, 1).text = "Q1", "12"
    d.save(str(tmp_path / "t.docx"))

    assert connectors.load(tmp_path / "t.docx").text == "Quarterly totals\nQ1 | 12"


# --- PPTX -----------------------------------------------------------------------------------------------------


def make_pptx(path: Path) -> Path:
    deck = pptx.Presentation()
    first = deck.slides.add_slide(deck.slide_layouts[1])
    first.shapes.title.text = "Roadmap"
    first.placeholders[1].text_frame.text = "Ship the connectors in March"
    first.notes_slide.notes_text_frame.text = "Mention the SSRF guard"
    deck.slides.add_slide(deck.slide_layouts[6])  # blank: no text at all
    third = deck.slides.add_slide(deck.slide_layouts[5])
    third.shapes.title.text = "Budget"
    table = third.shapes.add_table(2, 2, Inches(1), Inches(2), Inches(4), Inches(1)).table
    for (r, c), text in {(0, 0): "Team", (0, 1): "Cost", (1, 0): "Search", (1, 1): "40k"}.items():
        table.cell(r, c).text = text
    group = third.shapes.add_group_shape()
    group.shapes.add_textbox(Inches(1), Inches(4), Inches(2), Inches(1)).text_frame.text = "Grouped footnote"
    deck.save(str(path))
    return path


def test_pptx_gives_a_section_per_slide_with_tables_groups_and_notes(tmp_path: Path) -> None:
    doc = connectors.load(make_pptx(tmp_path / "deck.pptx"))

    assert doc.sections == [
        Section("Roadmap\nShip the connectors in March\nNotes: Mention the SSRF guard", page=1, heading="Roadmap"),
        Section("Budget\nTeam | Cost\nSearch | 40k\nGrouped footnote", page=3, heading="Budget"),
    ]
    assert doc.title == "Roadmap"  # PowerPoint's placeholder title is not taken for a real one


# --- CSV ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("delimiter", "codec"), [(",", "utf-8"), (";", "utf-8-sig"), ("\t", "utf-16"), ("|", "cp1252")]
)
def test_csv_rows_become_records_with_the_header(tmp_path: Path, delimiter: str, codec: str) -> None:
    rows = [["Name", "City", "Note"], ["Zoë", "Zürich", "likes café, tea"], ["Bob", "", "n/a"]]
    text = "\r\n".join(delimiter.join(f'"{c}"' if delimiter in c or "," in c else c for c in r) for r in rows)
    path = tmp_path / "people.csv"
    path.write_bytes(text.encode(codec))

    doc = connectors.load(path)

    assert doc.text == "Name: Zoë | City: Zürich | Note: likes café, tea\nName: Bob | Note: n/a"
    assert doc.mime == "text/csv"


def test_csv_caption_row_above_the_header_is_kept(tmp_path: Path) -> None:
    (tmp_path / "cups.csv").write_text("Stanley Cups,,\nTeam,Location,Cups\nBlues,STL,1\n")

    assert connectors.load(tmp_path / "cups.csv").text == "Stanley Cups\nTeam: Blues | Location: STL | Cups: 1"


def test_csv_header_only_and_a_monster_field(tmp_path: Path) -> None:
    (tmp_path / "head.csv").write_text("Name,City\n")
    (tmp_path / "monster.csv").write_text('a,b\n1,"' + "x" * 200_000 + '"\n')

    assert connectors.load(tmp_path / "head.csv").text == "Name | City"
    with pytest.raises(SourceError, match=r"not a valid CSV: field larger than field limit"):
        connectors.load(tmp_path / "monster.csv")


# --- JSON -----------------------------------------------------------------------------------------------------


def test_json_records_are_flattened_to_readable_lines(tmp_path: Path) -> None:
    records = [
        {"id": 1, "name": "Trowel", "tags": ["garden", "steel"], "maker": {"name": "Acme", "city": "Lyon"}},
        {"id": 2, "name": "Can", "parts": [{"kind": "spout"}], "note": None, "ok": False},
    ]
    (tmp_path / "items.json").write_text(json.dumps(records))
    (tmp_path / "items.ndjson").write_text("\n".join(json.dumps(r) for r in records) + "\n\n")

    expected = (
        "id: 1\nname: Trowel\ntags: garden, steel\nmaker.name: Acme\nmaker.city: Lyon\n\n"
        "id: 2\nname: Can\nparts[0].kind: spout\nok: false"
    )
    assert connectors.load(tmp_path / "items.json").text == expected
    assert connectors.load(tmp_path / "items.ndjson").text == expected


def test_bad_json_says_where(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text('{"a": 1,')
    (tmp_path / "b.ndjson").write_text('{"a": 1}\n{"b": \n')
    (tmp_path / "deep.json").write_text("[" * 100_000 + "]" * 100_000)

    with pytest.raises(SourceError, match="not valid JSON: Expecting"):
        connectors.load(tmp_path / "a.json")
    with pytest.raises(SourceError, match="not valid NDJSON: line 2"):
        connectors.load(tmp_path / "b.ndjson")
    with pytest.raises(SourceError, match="nested too deeply"):
        connectors.load(tmp_path / "deep.json")


# --- EPUB -----------------------------------------------------------------------------------------------------


def make_epub(path: Path, chapters: list[tuple[str, str]], title: str = "Alpine Winters") -> Path:
    manifest = "".join(
        f'<item id="c{i}" href="text/ch{i}.xhtml" media-type="application/xhtml+xml"/>' for i in range(len(chapters))
    )
    spine = "".join(f'<itemref idref="c{i}"/>' for i in reversed(range(len(chapters))))  # spine order wins
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("mimetype", "application/epub+zip")
        z.writestr(
            "META-INF/container.xml",
            '<container xmlns="urn:oasis:names:tc:opendocument:xmlns:container" version="1.0"><rootfiles>'
            '<rootfile full-path="OEBPS/book.opf" media-type="application/oebps-package+xml"/></rootfiles></container>',
        )
        z.writestr(
            "OEBPS/book.opf",
            '<package xmlns="http://www.idpf.org/2007/opf" version="3.0"><metadata '
            f'xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>{title}</dc:title></metadata>'
            f"<manifest>{manifest}</manifest><spine>{spine}</spine></package>",
        )
        for i, (heading, body) in enumerate(chapters):
            z.writestr(
                f"OEBPS/text/ch{i}.xhtml",
                f'<html xmlns="http://www.w3.org/1999/xhtml"><head><title>{heading}</title></head>'
                f"<body><h1>{heading}</h1><p>{body}</p></body></html>",
            )
    return path


def test_epub_chapters_in_spine_order_with_their_headings(tmp_path: Path) -> None:
    path = make_epub(tmp_path / "book.epub", [("Skating", "The rink opens in December."), ("Curling", "Stones.")])

    doc = connectors.load(path)

    assert doc.sections == [
        Section("Curling\nStones.", heading="Curling"),
        Section("Skating\nThe rink opens in December.", heading="Skating"),
    ]
    assert (doc.title, doc.mime) == ("Alpine Winters", "application/epub+zip")


# --- limits and bad input -------------------------------------------------------------------------------------


def test_a_file_over_the_size_limit_is_refused_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "big.txt"
    with path.open("wb") as fh:  # sparse: 60 MB on paper, nothing on disk
        fh.truncate(60 * 1024 * 1024)

    with pytest.raises(SourceError, match=r"over the 50 MB limit \(60 MB; raise max_file_mb to read it\)"):
        connectors.load(path)
    (tmp_path / "small.txt").write_text("x" * 2000)
    with pytest.raises(SourceError, match=r"over the 1000 bytes limit"):
        connectors.load(tmp_path / "small.txt", LoadOptions(max_file_bytes=1000))


def zip_bomb(path: Path, member: str, size: int) -> Path:
    """A valid-looking Office/EPUB zip whose one big entry is `size` bytes of zeros (deflates ~1000:1)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("mimetype", "application/epub+zip")
        with z.open(member, "w", force_zip64=True) as fh:
            block = b"\0" * (1024 * 1024)
            for _ in range(size // len(block)):
                fh.write(block)
    return path


@pytest.mark.parametrize("suffix", [".docx", ".pptx", ".epub"])
def test_archive_bombs_are_refused_before_unpacking(tmp_path: Path, suffix: str) -> None:
    by_ratio = zip_bomb(tmp_path / f"ratio{suffix}", "word/document.xml", 64 * 1024 * 1024)
    by_size = zip_bomb(tmp_path / f"size{suffix}", "word/document.xml", 16 * 1024 * 1024)

    assert by_ratio.stat().st_size < 200_000
    with pytest.raises(SourceError, match=r"archive bomb\? .* would unpack to 64 MB \(ratio \d+:1, limit 100:1\)"):
        connectors.load(by_ratio)
    with pytest.raises(SourceError, match=r"archive bomb\? it would unpack to 16 MB, over the 8 MB limit"):
        connectors.load(by_size, LoadOptions(max_unpacked_bytes=8 * 1024 * 1024))


def test_mislabelled_truncated_and_empty_office_files_say_why(tmp_path: Path) -> None:
    real = make_docx(tmp_path / "real.docx").read_bytes()
    cases = {
        "empty.docx": (b"", "not a valid DOCX (zip error"),
        "text.docx": (b"just some text", "not a valid DOCX (zip error"),
        "cut.docx": (real[: len(real) // 2], "not a valid DOCX (zip error"),
        "deck.docx": (make_pptx(tmp_path / "d.pptx").read_bytes(), "not a valid DOCX"),
        "words.pptx": (real, "not a valid PPTX"),
        "plain.epub": (b"PK\x05\x06" + b"\0" * 18, "not a valid EPUB"),
    }
    for name, (data, reason) in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(SourceError) as err:
            connectors.load(tmp_path / name)
        assert err.value.reason.startswith(reason), (name, err.value.reason)


def _encrypt(src: Path, dest: Path, password: str) -> Path:
    writer = PdfWriter(clone_from=PdfReader(src))
    writer.encrypt(user_password=password, owner_password="owner", algorithm="AES-128")
    buf = io.BytesIO()
    writer.write(buf)
    dest.write_bytes(buf.getvalue())
    return dest


def test_pdf_passwords_are_given_per_file_pattern(tmp_path: Path) -> None:
    plain = make_pdf(tmp_path / "plain.pdf", ["Board minutes for May"])
    (tmp_path / "reports").mkdir()
    locked = _encrypt(plain, tmp_path / "reports" / "q2.pdf", "s3cret")
    other = _encrypt(plain, tmp_path / "hr.pdf", "different")
    options = LoadOptions(pdf_passwords={"reports/*.pdf": "s3cret", "hr.pdf": "wrong"})

    assert "Board minutes for May" in connectors.load(locked, options).text
    with pytest.raises(SourceError, match="encrypted: password required"):
        connectors.load(locked)
    with pytest.raises(SourceError, match="encrypted: wrong password"):
        connectors.load(other, options)


# --- pathological HTML ----------------------------------------------------------------------------------------


def test_pathological_html_neither_crashes_nor_hangs(tmp_path: Path) -> None:
    deep = b"<p>Before the abyss.</p>" + b"<div>" * 100_000 + b"deep" + b"</div>" * 100_000
    unclosed = b"<html><body><p>Opening words." + b"<p><i><span>word " * 200_000
    tag_soup = b"<p>" + b"<b>x</b>" * 800_000
    cases = {"deep.html": deep, "unclosed.html": unclosed, "soup.html": tag_soup}
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)

    assert connectors.load(tmp_path / "deep.html").text.startswith("Before the abyss.")
    assert connectors.load(tmp_path / "unclosed.html").text.startswith("Opening words.")
    with pytest.raises(SourceError, match=r"too many HTML tags \(1,600,001; the limit is 1,500,000\)"):
        connectors.load(tmp_path / "soup.html")


def test_settings_reach_the_connectors_and_passwords_stay_masked(make_index: Any, tmp_path: Path) -> None:
    (tmp_path / "rag.toml").write_text(
        'max_file_mb = 2\nweb_allow_hosts = ["wiki.lan"]\n[pdf_passwords]\n"reports/*.pdf" = "s3cret"\n'
    )
    index = make_index()

    options = index.load_options()

    assert options.pdf_passwords == {"reports/*.pdf": "s3cret"} and options.max_file_bytes == 2 * 1024 * 1024
    assert (options.allow_private, options.allow_hosts) == (False, ("wiki.lan",))
    assert index.settings.masked()["pdf_passwords"] == {"reports/*.pdf": "***"}
