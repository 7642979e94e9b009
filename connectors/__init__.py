"""Connectors turn sources (files, folders, web pages) into `rag.documents.Document`s.

    discover(paths, include, exclude)  → the files (and http(s) URLs) to load, and a SourceError per unusable path
    load(path_or_url, options)         → one Document, or SourceError / UnsupportedFormat
    LoadOptions                        → size limits, archive-bomb limits, PDF passwords, the web's SSRF switch
    SUPPORTED_SUFFIXES                 → the file suffixes some format loader claims

They depend on nothing of ours but `rag.documents` and `rag.errors`.
"""

from connectors import formats as _formats  # noqa: F401  (importing registers every format loader)
from connectors.base import LoadOptions, register, supported_suffixes
from connectors.files import discover, is_url, load

SUPPORTED_SUFFIXES: frozenset[str] = supported_suffixes()

__all__ = ["SUPPORTED_SUFFIXES", "LoadOptions", "discover", "is_url", "load", "register"]
