"""Collections of one data dir (or Chroma server): list them with their sizes, delete one.

A collection is opened (and created) with `rag.open_index(collection=name)`; these work without opening one.
"""

from __future__ import annotations

import shutil
from typing import Any

from rag.errors import ConfigError
from rag.settings import Settings, load_settings
from rag.store import collection_counts, drop_collection


def list_collections(settings: Settings | None = None, **overrides: Any) -> dict[str, int]:
    """name → chunk count of every collection in the configured store, by name.

    >>> rag.list_collections(data_dir="rag-data")   # doctest: +SKIP
    {'default': 120, 'notes': 42}
    """
    s = settings or load_settings(**overrides)
    return collection_counts(None if s.chroma_url else s.chroma_dir, s.chroma_url)


def delete_collection(name: str, settings: Settings | None = None, **overrides: Any) -> bool:
    """Delete collection `name`: its chunks and its keyword index. False when it did not exist.

    Files the collection was built from are never touched.
    """
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise ConfigError(f"Not a collection name: {name!r}.")
    s = settings or load_settings(**overrides)
    existed = drop_collection(None if s.chroma_url else s.chroma_dir, s.chroma_url, name)
    shutil.rmtree(s.data_dir / "keyword" / name, ignore_errors=True)
    return existed
