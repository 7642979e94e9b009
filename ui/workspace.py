"""Server-side state the UI shares between browser sessions: one open `Index` per collection, and background
ingest jobs. No gradio here, so it tests without a browser.

Each browser session keeps only the *name* of its current collection; the `Index` objects (and the embedder they
share, loaded once) live here. An ingest runs in its own thread, so the chat stays usable while documents land;
the page polls `IngestJob.snapshot()` to draw the progress bar.
"""

from __future__ import annotations

import re
import shutil
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import rag

if TYPE_CHECKING:
    from rag import Index, IngestEvent, IngestReport

_SAFE_NAME = re.compile(r"[^A-Za-z0-9._ -]+")
COLLECTION_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,510}[A-Za-z0-9]$")


@dataclass(slots=True)
class JobSnapshot:
    """What the progress bar shows: files done/total, chunks written, one result row per source."""

    collection: str
    running: bool
    done: int
    total: int
    chunks: int
    results: list[tuple[str, str, str]]  # (source, status, detail)
    error: str = ""
    seconds: float = 0.0


@dataclass(slots=True)
class IngestJob:
    """One background `Index.ingest` call; `snapshot()` is safe to call from any thread while it runs."""

    collection: str
    sources: list[str]
    started: float = field(default_factory=time.monotonic)
    done: int = 0
    total: int = 0
    chunks: int = 0
    results: list[tuple[str, str, str]] = field(default_factory=list)
    report: IngestReport | None = None
    error: str = ""
    finished: float | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _thread: threading.Thread | None = None

    def on_event(self, event: IngestEvent) -> None:
        with self._lock:
            self.done, self.total = event.done, event.total
            self.chunks += event.chunks
            self.results.append((event.source, event.status, event.detail))

    def run(self, index: Index) -> None:
        try:
            report = index.ingest(self.sources, progress=self.on_event)
        except rag.RagError as exc:
            with self._lock:
                self.error = str(exc)
        else:
            with self._lock:
                self.report = report
                seen = {src for src, _, _ in self.results}
                # Sources refused before any file was read (unsupported type, unreadable URL) send no event.
                for row in report.skipped:
                    if row["source"] not in seen:
                        self.results.append((row["source"], "skipped", row.get("reason", "")))
                for row in report.failed:
                    if row["source"] not in seen:
                        self.results.append((row["source"], "failed", row.get("error", "")))
        finally:
            with self._lock:
                self.finished = time.monotonic()

    def start(self, index: Index) -> IngestJob:
        self._thread = threading.Thread(target=self.run, args=(index,), name="rag-ui-ingest", daemon=True)
        self._thread.start()
        return self

    def wait(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def snapshot(self) -> JobSnapshot:
        with self._lock:
            end = self.finished or time.monotonic()
            return JobSnapshot(
                self.collection,
                self.finished is None,
                self.done,
                self.total,
                self.chunks,
                list(self.results),
                self.error,
                round(end - self.started, 1),
            )


class Workspace:
    """The collections of one data dir, opened on demand with the first index's settings and embedder."""

    def __init__(self, index: Index) -> None:
        self.base = index
        self._indexes: dict[str, Index] = {index.settings.collection: index}
        self._jobs: dict[str, IngestJob] = {}
        self._lock = threading.Lock()

    @property
    def default(self) -> str:
        return self.base.settings.collection

    def index(self, collection: str | None = None) -> Index:
        """The `Index` of `collection` (created if new), sharing the loaded embedder."""
        name = collection or self.default
        with self._lock:
            if name not in self._indexes:
                if not COLLECTION_NAME.match(name):
                    raise rag.ConfigError(
                        f"{name!r} is not a valid collection name: use 3-512 letters, digits, '.', '_' or '-', "
                        "starting and ending with a letter or digit."
                    )
                settings = self.base.settings.model_copy(update={"collection": name})
                self._indexes[name] = rag.Index(settings, embedder=self.base.embedder)
            return self._indexes[name]

    def collections(self) -> dict[str, int]:
        """name → chunk count; the collections this server opened appear even while still empty."""
        found = rag.list_collections(self.base.settings)
        with self._lock:
            for name in self._indexes:
                found.setdefault(name, 0)
        return dict(sorted(found.items()))

    def delete(self, collection: str) -> bool:
        """Delete a collection, its keyword index and its uploaded files; refused while an ingest runs into it."""
        job = self.job(collection)
        if job is not None and job.snapshot().running:
            raise rag.ConfigError(f"An upload into {collection!r} is still running; delete it when it has finished.")
        with self._lock:
            self._indexes.pop(collection, None)
            self._jobs.pop(collection, None)
        existed = rag.delete_collection(collection, self.base.settings)
        shutil.rmtree(self.uploads_dir(collection), ignore_errors=True)
        return existed

    def uploads_dir(self, collection: str) -> Path:
        return self.base.settings.data_dir / "uploads" / collection

    def store_uploads(self, collection: str, paths: Sequence[str | Path]) -> list[Path]:
        """Copy uploaded temp files into the collection's uploads folder, under their own (sanitised) names, so
        the index points at files that outlive Gradio's temp cache and a second upload of a file is a sync."""
        target = self.uploads_dir(collection)
        target.mkdir(parents=True, exist_ok=True)
        stored = []
        for path in paths:
            src = Path(path)
            if not src.is_file():
                continue
            name = _SAFE_NAME.sub("_", src.name).strip(" .") or "upload"
            dest = target / name
            shutil.copyfile(src, dest)
            stored.append(dest)
        return stored

    def check_cost(self, collection: str, sources: Sequence[str | Path]) -> str | None:
        """Before an upload into a collection embedded by a paid API: what it will cost (tokens, price), or a
        refusal when that is above `embed_confirm_above_usd` — as `rag ingest` does without `--yes`. None for a
        local embedder, which costs nothing (and is not worth parsing the files twice for)."""
        index = self.index(collection)
        if not index.settings.embed_model.strip().startswith("openai:"):
            return None
        estimate = index.estimate_cost([str(s) for s in sources])
        limit = index.settings.embed_confirm_above_usd
        if estimate.usd > limit:
            raise rag.ConfigError(
                f"Not indexed: {estimate.summary()} — above the ${limit:g} limit (embed_confirm_above_usd). "
                "Raise the limit, or run `rag ingest --yes` from a terminal."
            )
        return f"Embedding cost: {estimate.summary()}"

    def start_ingest(self, collection: str, sources: Sequence[str | Path]) -> IngestJob:
        """Ingest in the background; one job per collection at a time."""
        current = self.job(collection)
        if current is not None and current.snapshot().running:
            raise rag.ConfigError(f"An upload into {collection!r} is already running; wait for it to finish.")
        job = IngestJob(collection, [str(s) for s in sources])
        with self._lock:
            self._jobs[collection] = job
        return job.start(self.index(collection))

    def job(self, collection: str) -> IngestJob | None:
        with self._lock:
            return self._jobs.get(collection)

    def status(self, collection: str) -> dict[str, Any]:
        return dict(self.index(collection).status())
