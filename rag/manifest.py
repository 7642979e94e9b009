"""What is indexed, per collection: source → (size, mtime, sha256 of the bytes) → chunk ids, in SQLite.

Why a manifest: without it, knowing whether a file changed means reading and parsing it. With it, a re-run stats
each file and compares size + mtime (no read), hashes only files whose stat changed (no parse), and parses,
chunks and embeds only files whose bytes changed.

Why it is crash-safe: a document is written in the order *pending* (here) → old chunks deleted → new chunks
upserted → *done* (here). A run killed anywhere leaves the document pending, and the next run deletes what the
store holds of it and redoes it. The store stays the source of truth: `rag.indexing` rebuilds this table from the
chunks' own metadata whenever the two disagree (manifest missing, chunk counts differ, or the store's generation
moved without us — a reindex, another writer).

One file per data dir (`manifest.sqlite`, WAL, so readers never block the writer), the collection as a column.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from rag.errors import StoreError

FILE_NAME = "manifest.sqlite"
PENDING, DONE = "pending", "done"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    collection   TEXT NOT NULL,
    document_id  TEXT NOT NULL,
    source       TEXT NOT NULL,
    size         INTEGER,            -- bytes, NULL when unknown (URLs, rows rebuilt from the store)
    mtime_ns     INTEGER,
    sha256       TEXT NOT NULL,      -- of the source's bytes
    chunk_ids    TEXT NOT NULL,      -- JSON list, in ordinal order
    state        TEXT NOT NULL CHECK (state IN ('pending', 'done')),
    prev_sha256  TEXT,               -- while pending: the sha256 of the version being replaced (NULL if new)
    PRIMARY KEY (collection, document_id)
);
CREATE TABLE IF NOT EXISTS meta (
    collection TEXT NOT NULL,
    key        TEXT NOT NULL,
    value      TEXT NOT NULL,
    PRIMARY KEY (collection, key)
);
"""


@dataclass(frozen=True, slots=True)
class Entry:
    """One document as the manifest knows it."""

    document_id: str
    source: str
    sha256: str
    chunk_ids: tuple[str, ...]
    state: str = DONE
    size: int | None = None
    mtime_ns: int | None = None
    prev_sha256: str | None = None

    @property
    def done(self) -> bool:
        return self.state == DONE

    def same_stat(self, size: int, mtime_ns: int) -> bool:
        return self.done and self.size == size and self.mtime_ns == mtime_ns


class Manifest:
    """The manifest of one collection. Not thread-safe: one ingest writes it, from one thread."""

    def __init__(self, path: Path | str, collection: str) -> None:
        self.path = path
        self.collection = collection
        try:
            if isinstance(path, Path):
                path.parent.mkdir(parents=True, exist_ok=True)
            # Autocommit; every write below is one explicit transaction.
            self._db = sqlite3.connect(str(path), timeout=30, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            # NORMAL under WAL: a process crash (kill -9) loses no committed transaction; only a power cut can
            # lose the last ones, and the store-vs-manifest check then rebuilds from the store.
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise StoreError(
                f"Cannot open the manifest {path}: {exc}. Delete it to have it rebuilt from the index."
            ) from exc

    def close(self) -> None:
        self._db.close()

    # --- reading -------------------------------------------------------------------------------------------
    def entries(self) -> dict[str, Entry]:
        """document_id → Entry for every document of the collection."""
        rows = self._db.execute(
            "SELECT document_id, source, sha256, chunk_ids, state, size, mtime_ns, prev_sha256 FROM documents "
            "WHERE collection = ?",
            (self.collection,),
        )
        return {r[0]: Entry(r[0], r[1], r[2], tuple(json.loads(r[3])), r[4], r[5], r[6], r[7]) for r in rows}

    def get_meta(self, key: str) -> str | None:
        row = self._db.execute(
            "SELECT value FROM meta WHERE collection = ? AND key = ?", (self.collection, key)
        ).fetchone()
        return None if row is None else str(row[0])

    # --- writing -------------------------------------------------------------------------------------------
    def put(self, entries: Iterable[Entry]) -> None:
        """Insert or replace entries, all in one transaction."""
        with self._transaction():
            self._put(entries)

    def _put(self, entries: Iterable[Entry]) -> None:
        rows = [
            (
                self.collection,
                e.document_id,
                e.source,
                e.size,
                e.mtime_ns,
                e.sha256,
                json.dumps(list(e.chunk_ids)),
                e.state,
                e.prev_sha256,
            )
            for e in entries
        ]
        self._db.executemany("INSERT OR REPLACE INTO documents VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)

    def mark_done(self, entries: Iterable[Entry]) -> None:
        self.put(replace(e, state=DONE, prev_sha256=None) for e in entries)

    def touch(self, document_id: str, size: int, mtime_ns: int) -> None:
        """Record a new stat for a document whose bytes turned out unchanged (so the next run needs no hash)."""
        with self._transaction():
            self._db.execute(
                "UPDATE documents SET size = ?, mtime_ns = ? WHERE collection = ? AND document_id = ?",
                (size, mtime_ns, self.collection, document_id),
            )

    def remove(self, document_ids: Iterable[str]) -> None:
        ids = [(self.collection, d) for d in document_ids]
        if ids:
            with self._transaction():
                self._db.executemany("DELETE FROM documents WHERE collection = ? AND document_id = ?", ids)

    def replace_all(self, entries: Iterable[Entry]) -> None:
        """Forget the collection's rows and write these instead (a rebuild from the store)."""
        with self._transaction():
            self._db.execute("DELETE FROM documents WHERE collection = ?", (self.collection,))
            self._put(entries)

    def set_meta(self, key: str, value: str | None) -> None:
        with self._transaction():
            if value is None:
                self._db.execute("DELETE FROM meta WHERE collection = ? AND key = ?", (self.collection, key))
            else:
                self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?, ?)", (self.collection, key, value))

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)


class _Transaction:
    """BEGIN IMMEDIATE … COMMIT (ROLLBACK on error), translating SQLite errors into StoreError."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise StoreError(f"Cannot write the manifest: {exc}") from exc

    def __exit__(self, kind: object, exc: BaseException | None, tb: object) -> None:
        if exc is None:
            try:
                self._db.execute("COMMIT")
                return
            except sqlite3.Error as err:
                self._db.execute("ROLLBACK")
                raise StoreError(f"Cannot write the manifest: {err}") from err
        self._db.execute("ROLLBACK")
        if isinstance(exc, sqlite3.Error):
            raise StoreError(f"Cannot write the manifest: {exc}") from exc
