"""Ingest as a sync over a manifest: unchanged files cost a stat, edits replace every chunk, deletes and adds are
counted, a `kill -9` mid-ingest is finished by the next run, and a second ingest on the same data dir is refused.

All with the real default embedder and real Chroma; the crash and the lock with real `python -m rag.cli`
processes. The timing ratio of an unchanged re-run is printed, not asserted; what is asserted is the reason it is
fast: the re-run opens no file and embeds nothing.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rag.indexing import embed_text
from rag.manifest import FILE_NAME

WORDS = (
    "the harbour light keeper kept a log of every ship that passed the northern rocks in winter and summer "
    "storms came from the west bringing rain over the old stone town where fishermen mended nets beside the "
    "market square children walked to school along the cliff path while gulls followed the boats home the "
    "council met on tuesdays to discuss the ferry timetable and the price of coal a new bridge was planned "
    "across the river but the money ran out before the second arch was finished teachers wrote letters to the "
    "newspaper about the library roof which leaked every autumn"
).split()


def write_text_file(path: Path, seed: int, sentences: int) -> None:
    rng = random.Random(seed)
    body = " ".join(" ".join(rng.choices(WORDS, k=rng.randint(8, 18))).capitalize() + "." for _ in range(sentences))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"Record {seed}. {body}\n", encoding="utf-8")


def make_corpus(folder: Path, files: int, seed: int = 0) -> list[Path]:
    paths = []
    for i in range(files):
        path = folder / f"part{i % 4}" / f"record{i:03d}.txt"
        write_text_file(path, seed * 10_000 + i, sentences=6 + (i * 7) % 30)
        paths.append(path)
    return paths


class CountingEmbedder:
    """The real embedder, counting the texts it is given (so a test can prove a re-run embedded nothing)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.texts = 0

    @property
    def identity(self) -> Any:
        return self.inner.identity

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.texts += len(texts)
        return self.inner.embed(texts)

    def embed_query(self, text: str) -> np.ndarray:
        return self.inner.embed_query(text)


_opened: list[str] | None = None


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event == "open" and _opened is not None and isinstance(args[0], str | Path):
        _opened.append(str(args[0]))


sys.addaudithook(_audit)  # audit hooks cannot be removed; this one records only inside `files_opened`


@contextmanager
def files_opened() -> Iterator[list[str]]:
    """Every file the process opens (by Python's audit `open` event) while the block runs."""
    global _opened
    _opened = []
    try:
        yield _opened
    finally:
        _opened = None


@pytest.fixture
def counting(embedder: Any) -> CountingEmbedder:
    return CountingEmbedder(embedder)


@pytest.fixture
def open_index(tmp_path: Path, counting: CountingEmbedder) -> Any:
    """A fresh `Index` on the test's data dir each call, as a new process would open it."""
    from rag.index import Index
    from rag.settings import load_settings

    def factory(data_dir: Path | None = None) -> Any:
        return Index(load_settings(data_dir=data_dir or tmp_path / "rag-data"), embedder=counting)

    return factory


def snapshot(index: Any) -> dict[str, tuple[str, dict[str, Any]]]:
    """chunk id → (text, metadata) of every chunk in the store."""
    return {row["id"]: (row["text"], row["metadata"]) for row in index.store.iter_chunks()}


def manifest_rows(data_dir: Path) -> dict[str, tuple[str, str, list[str]]]:
    """document_id → (state, sha256, chunk ids), read straight from the SQLite file."""
    with sqlite3.connect(data_dir / FILE_NAME) as db:
        rows = db.execute("SELECT document_id, state, sha256, chunk_ids FROM documents").fetchall()
    return {r[0]: (r[1], r[2], json.loads(r[3])) for r in rows}


def counts(report: Any) -> tuple[int, int, int, int]:
    return report.added, report.updated, report.unchanged, report.deleted


# --- the sync, in process ----------------------------------------------------------------------------------------
def test_an_unchanged_rerun_opens_no_file_and_embeds_nothing(
    tmp_path: Path, open_index: Any, counting: CountingEmbedder
) -> None:
    folder = tmp_path / "docs"
    make_corpus(folder, 40)
    first = open_index().ingest([folder])
    assert counts(first) == (40, 0, 0, 0) and first.chunks_added > 40 and not first.failed
    embedded, stored = counting.texts, snapshot(open_index())
    assert embedded == first.chunks_added == len(stored)

    index = open_index()  # a new Index: what it knows comes from the manifest on disk
    with files_opened() as opened:
        began = time.perf_counter()
        again = index.ingest([folder])
        rerun = time.perf_counter() - began
    assert counts(again) == (0, 0, 40, 0) and again.chunks_added == 0
    assert counting.texts == embedded, "the re-run embedded something"
    assert not [p for p in opened if p.startswith(str(folder))], "the re-run read a source file"
    assert snapshot(index) == stored
    print(
        f"\nunchanged re-run of 40 files: {first.seconds:.2f}s first, {rerun:.3f}s again ({first.seconds / rerun:.0f}x)"
    )


def test_an_edit_replaces_every_chunk_and_a_touch_is_hashed_not_parsed(
    tmp_path: Path, open_index: Any, counting: CountingEmbedder
) -> None:
    folder = tmp_path / "docs"
    paths = make_corpus(folder, 6)
    long_file = folder / "long.txt"
    write_text_file(long_file, 99, sentences=120)
    index = open_index()
    index.ingest([folder])
    document_id = next(r.metadata["document_id"] for r in index.search("Record 99", top_k=20, mode="keyword"))
    old_ids = {cid for cid, (_, meta) in snapshot(index).items() if meta["document_id"] == document_id}
    assert len(old_ids) > 4

    long_file.write_text("Record 99 now says only this: the lighthouse closed in 1931.\n", encoding="utf-8")
    report = index.ingest([folder])
    assert counts(report) == (0, 1, 6, 0) and report.chunks_added == 1
    mine = {cid: text for cid, (text, meta) in snapshot(index).items() if meta["document_id"] == document_id}
    assert mine == {f"{document_id}_0": "Record 99 now says only this: the lighthouse closed in 1931."}
    hits = index.search("lighthouse closed", top_k=50, mode="keyword")
    assert [h.id for h in hits if h.metadata["document_id"] == document_id] == [f"{document_id}_0"]

    # Same bytes, new mtime: hashed (the file is opened) but neither parsed nor embedded; then its stat is known.
    embedded = counting.texts
    os.utime(paths[0], ns=(time.time_ns(), time.time_ns() + 10**9))
    with files_opened() as opened:
        touched = index.ingest([folder])
    assert counts(touched) == (0, 0, 7, 0) and counting.texts == embedded
    assert [p for p in opened if p.startswith(str(folder))] == [str(paths[0])]
    with files_opened() as opened:
        index.ingest([folder])
    assert not [p for p in opened if p.startswith(str(folder))]


def test_deleted_and_added_files_are_counted_and_the_store_follows(tmp_path: Path, open_index: Any) -> None:
    folder = tmp_path / "docs"
    paths = make_corpus(folder, 12)
    index = open_index()
    index.ingest([folder])
    before = snapshot(index)
    gone = [paths[0], *sorted((folder / "part1").iterdir())]  # one file and a whole sub-folder
    gone_sources = {str(p.resolve()) for p in gone}
    for p in gone:
        p.unlink()
    (folder / "part1").rmdir()
    write_text_file(folder / "new" / "fresh.txt", 500, sentences=10)
    report = index.ingest([folder])
    assert counts(report) == (1, 0, 12 - len(gone), len(gone))
    after = snapshot(index)
    assert not [cid for cid, (_, meta) in after.items() if meta["source"] in gone_sources]
    kept = {cid: v for cid, v in before.items() if v[1]["source"] not in gone_sources}
    assert {cid: v for cid, v in after.items() if cid in kept} == kept
    fresh = str((folder / "new" / "fresh.txt").resolve())
    assert any(meta["source"] == fresh for _, meta in after.values())
    rows = manifest_rows(tmp_path / "rag-data")
    assert len(rows) == 12 - len(gone) + 1 and all(state == "done" for state, _, _ in rows.values())
    assert sum(len(ids) for _, _, ids in rows.values()) == len(after) == index.store.count()
    assert counts(index.ingest([folder])) == (0, 0, 12 - len(gone) + 1, 0)
    # A file given on its own is never "gone from a folder": naming another folder deletes nothing here.
    other = tmp_path / "other"
    make_corpus(other, 1, seed=3)
    elsewhere = index.ingest([other])
    assert counts(elsewhere) == (1, 0, 0, 0)
    now = snapshot(index)
    assert set(after) <= set(now) and len(now) == len(after) + elsewhere.chunks_added


def test_a_lost_manifest_is_rebuilt_from_the_store_without_embedding(
    tmp_path: Path, open_index: Any, counting: CountingEmbedder
) -> None:
    folder = tmp_path / "docs"
    make_corpus(folder, 10)
    open_index().ingest([folder])
    stored, embedded = snapshot(open_index()), counting.texts
    data = tmp_path / "rag-data"
    for name in (FILE_NAME, FILE_NAME + "-wal", FILE_NAME + "-shm"):
        (data / name).unlink(missing_ok=True)
    index = open_index()
    report = index.ingest([folder])
    assert counts(report) == (0, 0, 10, 0) and counting.texts == embedded
    assert snapshot(index) == stored
    assert {ids[0].rsplit("_", 1)[0] for _, _, ids in manifest_rows(data).values()} == {
        meta["document_id"] for _, meta in stored.values()
    }


def test_documents_left_pending_are_finished_even_by_a_run_over_other_sources(tmp_path: Path, open_index: Any) -> None:
    """The state a crash leaves after writing "pending": the next run redoes those documents, whatever it is given."""
    from dataclasses import replace

    from rag.manifest import Manifest

    folder, other = tmp_path / "docs", tmp_path / "other"
    kept, gone = make_corpus(folder, 2)
    make_corpus(other, 3, seed=1)
    index = open_index()
    index.ingest([folder])
    before = snapshot(index)
    manifest = Manifest(tmp_path / "rag-data" / FILE_NAME, "default")
    manifest.put(replace(e, state="pending", prev_sha256=e.sha256) for e in manifest.entries().values())
    manifest.close()
    gone.unlink()

    report = open_index().ingest([other])
    assert counts(report) == (3, 1, 0, 1), report
    after = snapshot(index)
    kept_source = str(kept.resolve())
    assert {cid: v for cid, v in after.items() if v[1]["source"] == kept_source} == {
        cid: v for cid, v in before.items() if v[1]["source"] == kept_source
    }
    assert not [cid for cid, (_, meta) in after.items() if meta["source"] == str(gone.resolve())]
    assert sorted(state for state, _, _ in manifest_rows(tmp_path / "rag-data").values()) == ["done"] * 4


def test_a_foreign_write_costs_one_store_scan_not_a_reread_and_spares_api_documents(
    tmp_path: Path, open_index: Any, counting: CountingEmbedder
) -> None:
    """Another writer (the HTTP API) changes the store behind the manifest: the next ingest rebuilds the manifest
    from the store, keeps what it knew of unchanged files (no file is read), and never deletes a client's document,
    even one whose source names a vanished file under the folder."""
    from rag.chunking import chunk_document
    from rag.documents import Document, Section

    folder = tmp_path / "docs"
    make_corpus(folder, 6)
    index = open_index()
    index.ingest([folder])
    doc = Document(str(folder / "part0" / "gone.txt"), [Section("A memo a client upserted.")], document_id="memo-1")
    chunks = chunk_document(doc, 200, 30)
    for chunk in chunks:
        chunk.metadata["origin"] = "api"
    index.store.add(chunks, index.embedder.embed([c.text for c in chunks]))
    index.store.bump_generation()
    embedded = counting.texts

    with files_opened() as opened:
        report = open_index().ingest([folder])
    assert counts(report) == (0, 0, 6, 0) and counting.texts == embedded
    assert not [p for p in opened if p.startswith(str(folder))]
    assert "memo-1_0" in snapshot(index)
    assert "memo-1" not in manifest_rows(tmp_path / "rag-data")
    with files_opened() as opened:  # and the manifest is in step again: no rebuild, no read
        assert counts(open_index().ingest([folder])) == (0, 0, 6, 0)
    assert not [p for p in opened if p.startswith(str(folder))]


def test_the_progress_callback_counts_files_and_chunks(tmp_path: Path, open_index: Any) -> None:
    folder = tmp_path / "docs"
    make_corpus(folder, 8)
    events: list[Any] = []
    report = open_index().ingest([folder], progress=events.append)
    assert [e.done for e in events] == list(range(1, 9)) and {e.total for e in events} == {8}
    assert events[-1].chunks_done == report.chunks_added == sum(e.chunks for e in events)
    assert events[-1].seconds > 0 and events[-1].chunks_per_second > 0


def test_a_second_ingest_in_another_thread_is_refused(tmp_path: Path, open_index: Any) -> None:
    from rag.errors import IndexBusy
    from rag.lock import write_lock

    folder = tmp_path / "docs"
    make_corpus(folder, 2)
    errors: list[Exception] = []
    with write_lock(tmp_path / "rag-data", "ingest"):
        thread = threading.Thread(target=lambda: _capture(errors, lambda: open_index().ingest([folder])))
        thread.start()
        thread.join()
        open_index().ingest([folder])  # the holding thread itself may ingest (the CLI takes the lock first)
    assert len(errors) == 1 and isinstance(errors[0], IndexBusy) and "in this process" in str(errors[0])


def test_a_writer_may_wait_for_the_lock_instead(tmp_path: Path) -> None:
    from rag.errors import IndexBusy
    from rag.lock import write_lock

    data = tmp_path / "rag-data"
    taken, release, order = threading.Event(), threading.Event(), []

    def holder() -> None:
        with write_lock(data, "ingest"):
            taken.set()
            release.wait(30)
            order.append("holder done")

    thread = threading.Thread(target=holder)
    thread.start()
    taken.wait(30)
    with pytest.raises(IndexBusy):
        with write_lock(data, "upsert"):
            pass
    threading.Timer(0.2, release.set).start()
    with write_lock(data, "upsert", wait=30):
        order.append("waiter in")
    thread.join()
    assert order == ["holder done", "waiter in"]


def _capture(errors: list[Exception], fn: Any) -> None:
    try:
        fn()
    except Exception as exc:
        errors.append(exc)


# --- real processes: kill -9 and a concurrent ingest --------------------------------------------------------------
def rag_process(*args: str, **kwargs: Any) -> subprocess.Popen[str]:
    # Small embedding batches make many short write windows, so the kill can land inside one.
    env = {**os.environ, "RAG_EMBED_BATCH_SIZE": "4"}
    return subprocess.Popen([sys.executable, "-m", "rag.cli", *args], env=env, text=True, **kwargs)


def wait_for(predicate: Any, proc: subprocess.Popen[str], what: str, timeout: float = 180) -> Any:
    """Poll `predicate` until it returns something truthy; fail if `proc` exits first or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = predicate()
        if got:
            return got
        if proc.poll() is not None:
            pytest.fail(f"the ingest process ended (exit {proc.returncode}) before {what}")
        time.sleep(0.005)
    proc.kill()
    pytest.fail(f"timed out waiting for {what}")


def manifest_states(data_dir: Path) -> list[tuple[str, str | None]]:
    """(state, prev_sha256) of every row, or [] while the file or its table does not exist yet."""
    path = data_dir / FILE_NAME
    if not path.exists():
        return []
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1) as db:
            return db.execute("SELECT state, prev_sha256 FROM documents").fetchall()
    except sqlite3.Error:
        return []


def kill_in_a_write(folder: Path, data_dir: Path, replacing: bool) -> str:
    """Start an ingest, SIGKILL it while a batch is half-written (documents pending), and say where it died."""
    proc = rag_process("ingest", str(folder), "--data-dir", str(data_dir), "--quiet", "--json", stdout=subprocess.PIPE)

    def in_write() -> bool:
        rows = manifest_states(data_dir)
        pending = [prev for state, prev in rows if state == "pending"]
        done = sum(state == "done" for state, _ in rows)
        return bool(pending) and (done > 0 if not replacing else any(pending))

    wait_for(in_write, proc, "a batch was half-written")
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    rows = manifest_states(data_dir)
    return f"{sum(s == 'pending' for s, _ in rows)} pending, {sum(s == 'done' for s, _ in rows)} done"


def finish(folder: Path, data_dir: Path) -> dict[str, Any]:
    proc = rag_process("ingest", str(folder), "--data-dir", str(data_dir), "--quiet", "--json", stdout=subprocess.PIPE)
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out
    return json.loads(out)


def test_kill_9_in_the_middle_then_the_same_command_equals_a_clean_run(tmp_path: Path, open_index: Any) -> None:
    folder, data = tmp_path / "docs", tmp_path / "killed"
    paths = make_corpus(folder, 60)
    where = kill_in_a_write(folder, data, replacing=False)
    resumed = finish(folder, data)
    assert resumed["added"] > 0 and resumed["added"] + resumed["unchanged"] == 60, (where, resumed)

    # Now every other file changes (most get fewer chunks); kill while old chunks are being replaced.
    for i, path in enumerate(paths):
        if i % 2 == 0:
            write_text_file(path, 7_000 + i, sentences=3 + i % 5)
    where_update = kill_in_a_write(folder, data, replacing=True)
    resumed = finish(folder, data)
    assert resumed["updated"] > 0 and resumed["updated"] + resumed["unchanged"] == 60, (where_update, resumed)

    killed, clean = open_index(data), open_index(tmp_path / "clean")
    clean.ingest([folder])
    assert snapshot(killed) == snapshot(clean), f"killed at: {where}; then at: {where_update}"
    # The vector index survived too: each sampled chunk's own vector finds that chunk first.
    sample = sorted(snapshot(clean).items())[::25]
    vectors = killed.embedder.embed([embed_text(text, meta) for _, (text, meta) in sample])
    assert [killed.store.query(v, 1)[0].id for v in vectors] == [cid for cid, _ in sample]
    rows = manifest_rows(data)
    assert all(state == "done" for state, _, _ in rows.values()) and len(rows) == 60
    assert sorted(i for _, _, ids in rows.values() for i in ids) == sorted(snapshot(clean))
    print(f"\nkilled with {where}, then with {where_update}; both resumed to the clean result")


@pytest.fixture
def pty_pair() -> Iterator[tuple[int, int]]:
    import fcntl
    import pty
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))  # a 120-column terminal
    yield master, slave
    for fd in (master, slave):
        try:
            os.close(fd)
        except OSError:
            pass


def test_a_second_ingest_on_the_same_data_dir_is_refused_naming_the_first(
    tmp_path: Path, pty_pair: tuple[int, int]
) -> None:
    from rag.lock import LOCK_NAME

    folder, data = tmp_path / "docs", tmp_path / "data"
    make_corpus(folder, 60)
    master, slave = pty_pair
    # The first ingest's stderr is a terminal, so it draws its progress bar there.
    first = rag_process("ingest", str(folder), "--data-dir", str(data), "--json", stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    bar: list[bytes] = []
    reader = threading.Thread(target=_drain, args=(master, bar), daemon=True)
    reader.start()

    def holds_lock() -> bool:
        try:
            return json.loads((data / LOCK_NAME).read_text() or "{}").get("pid") == first.pid
        except (OSError, ValueError):
            return False

    wait_for(holds_lock, first, "the first ingest took the lock")
    second = subprocess.run(
        [sys.executable, "-m", "rag.cli", "ingest", str(folder), "--data-dir", str(data), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    still_running = first.poll() is None
    out, _ = first.communicate(timeout=600)
    reader.join(timeout=10)
    assert still_running, "the first ingest ended before the second tried: make the corpus bigger"
    assert second.returncode == 1 and second.stdout == ""
    assert f"PID {first.pid}" in second.stderr and "wait for it to finish" in second.stderr, second.stderr
    assert first.returncode == 0 and json.loads(out)["added"] == 60
    drawn = b"".join(bar).decode(errors="replace")
    assert "60/60" in drawn and "chunks/s" in drawn, drawn[-500:]


def _drain(fd: int, into: list[bytes]) -> None:
    while True:
        try:
            data = os.read(fd, 4096)
        except OSError:  # EIO: the child closed the terminal
            return
        if not data:
            return
        into.append(data)


def test_short_writes_share_the_lock_with_an_ingest_in_this_process(tmp_path: Path, make_index: Any) -> None:
    """While an upload ingests into one collection (another thread), an upsert or a removal in another collection
    of the same process goes ahead; a second ingest is still refused."""
    from rag.errors import IndexBusy
    from rag.lock import write_lock

    other = make_index(collection="other")
    taken, release = threading.Event(), threading.Event()

    def ingest_running() -> None:
        with write_lock(tmp_path / "rag-data", "ingest"):
            taken.set()
            release.wait(30)

    thread = threading.Thread(target=ingest_running)
    thread.start()
    try:
        taken.wait(30)
        started = time.monotonic()
        assert other.upsert_texts([{"id": "memo", "text": "Quillon beetles glow."}]) == ["memo"]
        assert other.remove_document("memo") == 1
        assert time.monotonic() - started < 5  # not queued behind the ingest
        folder = tmp_path / "docs"
        make_corpus(folder, 1)
        with pytest.raises(IndexBusy):
            other.ingest([folder])
    finally:
        release.set()
        thread.join()
