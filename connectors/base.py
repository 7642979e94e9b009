"""The format registry: file suffix → loader function.

A format plugs in by adding one module under `connectors/formats/` that decorates its loader with `@register(...)`
(and one import line in `connectors/formats/__init__.py`). A loader gets the path (for the title and messages) and
the bytes already read, so hashing and reading happen once, in `connectors.files.load`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from rag.documents import Section

#: `(path, data) -> (sections, title, mime)`; raises `SourceError` with a reason a user can act on.
Loader = Callable[[Path, bytes], tuple[list[Section], str, str]]

_LOADERS: dict[str, Loader] = {}


def register(*suffixes: str) -> Callable[[Loader], Loader]:
    """Register a loader for suffixes such as ".md" (case-insensitive)."""

    def decorate(loader: Loader) -> Loader:
        for suffix in suffixes:
            if not suffix.startswith("."):
                raise ValueError(f"suffix must start with a dot: {suffix!r}")
            _LOADERS[suffix.lower()] = loader
        return loader

    return decorate


def loader_for(path: Path) -> Loader | None:
    """The loader for a path's suffix, or None when no format claims it."""
    return _LOADERS.get(path.suffix.lower())


def supported_suffixes() -> frozenset[str]:
    return frozenset(_LOADERS)
