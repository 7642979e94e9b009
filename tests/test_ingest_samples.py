"""Issue #4's acceptance check: everything in ../shared/data/docs plus a folder of bad files goes through the real
index in one ingest; every good file is then found by a phrase from it, and every bad one is reported with its
reason — nothing else is lost."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SHARED_DATA
from tests.test_connectors import EXPECTED as OLDER_FORMATS

DOCS = SHARED_DATA / "docs"
pytestmark = pytest.mark.skipif(not DOCS.is_dir(), reason=f"shared sample documents not found at {DOCS}")

# file → a phrase to search for (good files) or the start of the reason it must be reported with (bad ones)
NEWER_FORMATS = {
    "csv/csv-with-escaped-commas.csv": None,  # its only word is "A", a stop word: checked as indexed, not by search
    "csv/csv-with-long-lines.csv": "SpearmanCorrelationCoefficient",
    "csv/semicolon-delimited.csv": "tempor incididunt",
    "csv/stanley-cups-utf-16.csv": "Maple Leafs",
    "csv/stanley-cups.csv": "Maple Leafs",
    "docx/docx-hdrftr.docx": "First header para",
    "docx/docx-tables.docx": "Table with merged cells",
    "docx/example-list-items-multiple.docx": "dummy text of the printing",
    "docx/fake-doc-emphasized-text.docx": "I am a normal text",
    "docx/handbook-1p.docx": "standing trustees",
    "epub/eng_spa_mult.epub": "born free and equal in dignity",
    "epub/winter-sports.epub": "Winter Sports in Switzerland",
    "json/arbitrary-records.json": "Pruning Shears",
    "json/arbitrary-records.ndjson": "Watering Can",
    "json/simple.json": "my favorite things",
    "json/spring-weather.html.json": "News Around NOAA",
    "pptx/fake-power-point-many-pages.pptx": "Page 2",
    "pptx/fake-power-point-table.pptx": "Tangerine",
    "pptx/fake-power-point.pptx": "bullet slide layout",
    "pptx/sample-presentation.pptx": "bulleted information",
}
REASONS = ("encrypted", "empty")  # how the bad files among the older samples start their reasons


def _bad_files(folder: Path) -> dict[str, str]:
    """Files that must each be reported with a reason starting as given, written into `folder`."""
    folder.mkdir()
    (folder / "empty.docx").write_bytes(b"")
    (folder / "truncated.pdf").write_bytes(b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog")
    (folder / "binary.txt").write_bytes(bytes(range(256)) * 64)
    (folder / "blank.md").write_text("  \n\n")
    (folder / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    (folder / "soup.html").write_bytes(b"<p>" + b"<b>x</b>" * 800_000)
    (folder / "words.pptx").write_bytes((DOCS / "docx" / "handbook-1p.docx").read_bytes())  # a DOCX in disguise
    with (folder / "huge.txt").open("wb") as fh:  # 60 MB on paper, nothing on disk: refused before reading
        fh.truncate(60 * 1024 * 1024)
    with zipfile.ZipFile(folder / "bomb.docx", "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        with z.open("word/document.xml", "w", force_zip64=True) as fh:
            for _ in range(150):
                fh.write(b"\0" * (1024 * 1024))
    return {
        "empty.docx": "not a valid DOCX (zip error",
        "truncated.pdf": "not a valid PDF",
        "binary.txt": "not text",
        "blank.md": "empty",
        "deep.json": "could not read .json file: nested too deeply",
        "soup.html": "too many HTML tags",
        "words.pptx": "not a valid PPTX",
        "huge.txt": "over the 50 MB limit",
        "bomb.docx": "archive bomb? it would unpack to 150 MB, over the 100 MB limit",
    }


def test_every_sample_is_searchable_or_reported_with_its_reason(make_index: Any, tmp_path: Path) -> None:
    bad = _bad_files(tmp_path / "bad")
    index = make_index()

    report = index.ingest([DOCS, tmp_path / "bad"])

    failed = {Path(f["source"]).name: f["error"] for f in report.failed}
    expected = {**OLDER_FORMATS, **NEWER_FORMATS}
    problems: dict[str, str] = {}
    for name, reason in bad.items():
        if not failed.get(name, "").startswith(reason):
            problems[f"bad/{name}"] = f"expected reason {reason!r}, got {failed.get(name)!r}"
    indexed = set(index.store.document_sources().values())
    for rel, phrase in expected.items():
        path = str((DOCS / rel).resolve())
        if _is_reason(phrase):
            assert phrase is not None
            if not failed.get(Path(rel).name, "").startswith(phrase.replace("install '", "install the '")):
                problems[rel] = f"expected reason {phrase!r}, got {failed.get(Path(rel).name)!r}"
            continue
        if path not in indexed:
            problems[rel] = f"not indexed: {failed.get(Path(rel).name)}"
        elif phrase is not None:
            hits = index.search(phrase, top_k=10, mode="keyword")
            if not any(h.source == path and _squash(phrase) in _squash(h.text) for h in hits):
                problems[rel] = f"not found by {phrase!r}: {[Path(h.source).name for h in hits]}"
    assert problems == {}
    good = sum(1 for phrase in expected.values() if not _is_reason(phrase))
    assert report.added == good and len(report.failed) == len(bad) + len(expected) - good, report
    assert report.skipped == []


def _is_reason(expected: str | None) -> bool:
    return expected is not None and expected.startswith(REASONS) and ":" in expected


def _squash(text: str) -> str:
    return " ".join(text.split()).lower()
