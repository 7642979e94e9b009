"""PDF: one section per page (1-based `page`), via pypdf.

Encrypted files are tried with the empty user password first, which opens the common "owner password only"
(copy-protected) PDFs; anything needing a real password is reported, not guessed.
"""

from __future__ import annotations

import io
import logging
import re
from pathlib import Path

from pypdf import PdfReader
from pypdf.errors import DependencyError, FileNotDecryptedError, PdfReadError, PyPdfError

from connectors.base import DEFAULT_OPTIONS, LoadOptions, register
from rag.documents import Section
from rag.errors import SourceError

# pypdf logs a warning for every recoverable flaw in a broken file; a folder of real-world PDFs floods the terminal.
# Real failures still surface: they raise, and we turn them into SourceError below.
logging.getLogger("pypdf").setLevel(logging.ERROR)

_BLANK_RUNS = re.compile(r"\n{3,}")
_OFFICE_PREFIX = re.compile(r"^Microsoft (Word|PowerPoint|Excel) - ")
_FILE_NAME = re.compile(r"\.(pdf|docx?|pptx?|xlsx?|odt|rtf|txt|indd|tex)$", re.IGNORECASE)
# Ligatures from typeset PDFs would keep "misﬁts" from matching a search for "misfits".
_LIGATURES = str.maketrans({"ﬀ": "ff", "ﬁ": "fi", "ﬂ": "fl", "ﬃ": "ffi", "ﬄ": "ffl", "ﬅ": "st", "ﬆ": "st"})


@register(".pdf", mimes=("application/pdf", "application/x-pdf"))
def load_pdf(path: Path, data: bytes, options: LoadOptions = DEFAULT_OPTIONS) -> tuple[list[Section], str, str]:
    source = str(path)
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            _decrypt(reader, source, options.password_for(path))
        pages = reader.pages
        count = len(pages)
    except SourceError:
        raise
    except DependencyError as exc:  # raised as soon as pypdf touches AES, even for an empty password
        raise _needs_crypto(source) from exc
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, IndexError, AssertionError) as exc:
        raise SourceError(source, f"not a valid PDF: {_short(exc)}") from exc
    sections: list[Section] = []
    failed: list[int] = []
    for number in range(1, count + 1):
        try:
            text = pages[number - 1].extract_text() or ""
        except DependencyError as exc:
            raise _needs_crypto(source) from exc
        except Exception:  # one damaged page must not cost the whole document
            failed.append(number)
            continue
        text = _tidy(text)
        if text:
            sections.append(Section(text, page=number))
    if not sections:
        if failed:
            raise SourceError(source, f"not a valid PDF: no page could be read ({len(failed)} damaged)")
        raise SourceError(source, "empty: no extractable text (scanned? OCR is not supported)")
    return sections, _title(reader) or path.stem, "application/pdf"


def _decrypt(reader: PdfReader, source: str, password: str | None) -> None:
    """The empty password first (it opens owner-password-only files), then the one configured for this file."""
    for candidate in ("", password) if password else ("",):
        try:
            if reader.decrypt(candidate):
                return
        except DependencyError as exc:
            raise _needs_crypto(source) from exc
        except (FileNotDecryptedError, PdfReadError, NotImplementedError) as exc:
            raise SourceError(source, f"encrypted: cannot decrypt ({_short(exc)})") from exc
    if password:
        raise SourceError(source, "encrypted: wrong password (the one set in pdf_passwords for this file)")
    raise SourceError(source, "encrypted: password required (set one for this file in pdf_passwords)")


def _needs_crypto(source: str) -> SourceError:
    # pypdf decrypts RC4 itself but needs the `cryptography` package for AES (most PDFs encrypted since 2008).
    return SourceError(source, "encrypted with AES: install the 'cryptography' package to read it")


def _title(reader: PdfReader) -> str:
    try:
        raw = reader.metadata.title if reader.metadata else None
    except Exception:  # metadata of a damaged file is a nicety, not a reason to fail
        return ""
    title = _OFFICE_PREFIX.sub("", str(raw)).strip() if raw else ""
    # Tools often store the file name they printed from ("Binder1.pdf"): the stem says as much, and better.
    return "" if _FILE_NAME.search(title) else title


def _tidy(text: str) -> str:
    lines = [line.rstrip() for line in text.replace("\x00", "").translate(_LIGATURES).split("\n")]
    return _BLANK_RUNS.sub("\n\n", "\n".join(lines)).strip()


def _short(exc: Exception, limit: int = 120) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"
