"""Zip containers (DOCX, PPTX, EPUB) opened safely: a broken zip and an archive bomb are refused before parsing.

The check trusts the sizes the zip declares, which is sound because Python's zipfile never inflates an entry past
its declared size (it stops there and fails the CRC), so a lying header cannot smuggle in more data than we checked.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

from connectors.base import MB, LoadOptions, human_size
from rag.errors import SourceError


def open_zip(path: Path, data: bytes, kind: str, options: LoadOptions) -> zipfile.ZipFile:
    """A ZipFile over `data`, or SourceError: "not a valid DOCX (zip error: …)", "archive bomb: …"."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as exc:
        raise SourceError(str(path), f"not a valid {kind} (zip error: {exc})") from exc
    unpacked = sum(info.file_size for info in infos)
    packed = sum(info.compress_size for info in infos) or 1
    if unpacked > options.max_unpacked_bytes:
        raise SourceError(
            str(path),
            f"archive bomb? it would unpack to {human_size(unpacked)}, over the "
            f"{human_size(options.max_unpacked_bytes)} limit",
        )
    if unpacked > 10 * MB and unpacked / packed > options.max_compression_ratio:
        raise SourceError(
            str(path),
            f"archive bomb? {human_size(packed)} would unpack to {human_size(unpacked)} "
            f"(ratio {unpacked / packed:.0f}:1, limit {options.max_compression_ratio:.0f}:1)",
        )
    return archive


def read_member(archive: zipfile.ZipFile, name: str, path: Path, kind: str) -> bytes:
    """One entry's bytes; a missing or corrupt entry is a SourceError naming it."""
    try:
        return archive.read(name)
    except KeyError as exc:
        raise SourceError(str(path), f"not a valid {kind}: '{name}' is missing") from exc
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as exc:
        raise SourceError(str(path), f"not a valid {kind} (zip error in '{name}': {exc})") from exc
