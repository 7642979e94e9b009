"""Connectors turn sources (files and folders for now) into `rag.documents.Document`s.

    discover(paths, include, exclude)  → the files to load, and a SourceError per unusable path
    load(path)                         → one Document, or SourceError / UnsupportedFormat
    SUPPORTED_SUFFIXES                 → the file suffixes some format loader claims

They depend on nothing of ours but `rag.documents` and `rag.errors`.
"""

from connectors import formats as _formats  # noqa: F401  (importing registers every format loader)
from connectors.base import register, supported_suffixes
from connectors.files import discover, load

SUPPORTED_SUFFIXES: frozenset[str] = supported_suffixes()

__all__ = ["SUPPORTED_SUFFIXES", "discover", "load", "register"]
