"""The format registry (file suffix → loader function) and the options every loader receives.

A format plugs in by adding one module under `connectors/formats/` that decorates its loader with `@register(...)`
(and one import line in `connectors/formats/__init__.py`). A loader gets the path (for the title and messages), the
bytes already read (so hashing and reading happen once, in `connectors.files.load`) and the `LoadOptions`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path

from rag.documents import Section

MB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class LoadOptions:
    """Limits and secrets for reading sources. Connectors never read settings: the caller passes these in.

    `pdf_passwords` maps a glob (tried on the full path and on the file name) to a password, e.g.
    `{"reports/*.pdf": "s3cret"}`; the first pattern that matches wins, and the empty password is always tried.
    """

    max_file_bytes: int = 50 * MB
    #: Zip-based formats (DOCX, PPTX, EPUB): refuse when the entries would unpack to more than this in total…
    max_unpacked_bytes: int = 100 * MB
    #: …or when they unpack to more than 10 MB at a compression ratio above this (text compresses ~5-20:1).
    max_compression_ratio: float = 100.0
    pdf_passwords: Mapping[str, str] = field(default_factory=dict)
    #: Web: fetch private, loopback and link-local addresses too (off: SSRF guard).
    allow_private: bool = False
    #: Web: host names fetched even when they resolve to private addresses (an intranet server), e.g. "wiki.lan".
    allow_hosts: tuple[str, ...] = ()
    #: Web: seconds for connecting and for each read; the whole download must also end within `fetch_seconds`.
    timeout: float = 15.0
    fetch_seconds: float = 60.0
    max_redirects: int = 5

    def password_for(self, path: str | Path) -> str | None:
        """The configured password for a PDF, or None."""
        full, name = Path(path).as_posix(), Path(path).name
        for pattern, password in self.pdf_passwords.items():
            if fnmatchcase(full, pattern) or fnmatchcase(name, pattern) or fnmatchcase(full, f"*/{pattern}"):
                return password
        return None


DEFAULT_OPTIONS = LoadOptions()

#: `(path, data, options) -> (sections, title, mime)`; raises `SourceError` with a reason a user can act on.
Loader = Callable[[Path, bytes, LoadOptions], tuple[list[Section], str, str]]

_LOADERS: dict[str, Loader] = {}
_MIMES: dict[str, Loader] = {}


def register(*suffixes: str, mimes: tuple[str, ...] = ()) -> Callable[[Loader], Loader]:
    """Register a loader for suffixes such as ".md" (case-insensitive) and, for web pages, content types."""

    def decorate(loader: Loader) -> Loader:
        for suffix in suffixes:
            if not suffix.startswith("."):
                raise ValueError(f"suffix must start with a dot: {suffix!r}")
            _LOADERS[suffix.lower()] = loader
        for mime in mimes:
            _MIMES[mime.lower()] = loader
        return loader

    return decorate


def loader_for(path: Path) -> Loader | None:
    """The loader for a path's suffix, or None when no format claims it."""
    return _LOADERS.get(path.suffix.lower())


def loader_for_mime(mime: str) -> Loader | None:
    """The loader for a content type such as "text/html; charset=utf-8", or None."""
    return _MIMES.get(mime.split(";", 1)[0].strip().lower())


def supported_suffixes() -> frozenset[str]:
    return frozenset(_LOADERS)


def human_size(n: float) -> str:
    """1536 → "1.5 KB"; for messages."""
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}".replace(".0 ", " ")
        n /= 1024
    return f"{n} GB"
