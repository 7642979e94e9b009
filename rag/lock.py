"""One writer per data dir: an advisory file lock (`flock`) that ingest and reindex hold while they write.

Why flock: the kernel drops it when the holder dies, even by `kill -9`, so a crashed ingest never leaves a stale
lock for the user to clean up. The holder writes its PID and command into the file, so the second writer can say
who it is waiting for. Read-only commands (search, ask, status) take no lock.

    with write_lock(settings.data_dir, "ingest"):
        ...  # a second process (or thread) gets IndexBusy naming this one

Within one process the lock is re-entrant for the thread that holds it (the CLI takes it before the slow imports,
`Index.ingest` takes it again), and refused to any other thread (two ingests in one UI process would interleave).
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from rag.errors import IndexBusy, StoreError

LOCK_NAME = "write.lock"


@dataclass
class _Held:
    fd: int
    thread: int
    depth: int
    command: str


_held: dict[str, _Held] = {}
_guard = threading.Lock()


@contextmanager
def write_lock(data_dir: Path, command: str = "ingest", wait: float = 0.0, join: bool = False) -> Iterator[None]:
    """Hold the data dir's write lock for the block.

    With `wait=0` (the CLI) a busy lock raises `IndexBusy` at once; a server handling short writes may pass a
    few seconds to queue behind another writer instead, and gets `IndexBusy` only when they run out.
    `join=True` (short writes: upserts, deletes) shares a lock another thread of this process holds: other
    processes are kept out all the same, and writes to one collection are ordered by its `Index`.
    """
    data_dir = Path(data_dir)
    key = str(data_dir.resolve())
    me = threading.get_ident()
    deadline = time.monotonic() + wait
    while True:
        try:
            _enter(data_dir, key, command, me, join)
            break
        except IndexBusy:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.05)
    try:
        yield
    finally:
        with _guard:
            held = _held[key]
            held.depth -= 1
            if held.depth == 0:
                del _held[key]
                os.close(held.fd)  # closing the descriptor releases the flock


def _enter(data_dir: Path, key: str, command: str, me: int, join: bool = False) -> None:
    with _guard:
        held = _held.get(key)
        if held is None:
            _held[key] = _acquire(data_dir, key, command, me)
        elif held.thread == me or join:
            held.depth += 1
        else:
            raise IndexBusy(
                f"Another {held.command} in this process is writing to {key}; wait for it to finish, then try again."
            )


def _acquire(data_dir: Path, key: str, command: str, thread: int) -> _Held:
    import fcntl

    path = data_dir / LOCK_NAME
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise StoreError(
            f"Cannot create the lock file {path}: {exc.strerror or exc}. Is the data dir writable?"
        ) from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _describe_holder(fd)
        os.close(fd)
        raise IndexBusy(
            f"{holder} is writing to {key}; wait for it to finish, then run this again "
            "(search, ask and status work meanwhile)."
        ) from None
    except OSError as exc:
        os.close(fd)
        raise StoreError(f"Cannot lock {path}: {exc.strerror or exc}.") from exc
    # Who holds it, for the message the next writer shows. Written in place: readers only ever see it whole or
    # empty (a reader racing this write falls back to "another process").
    info = json.dumps({"pid": os.getpid(), "command": command, "started": time.strftime("%Y-%m-%d %H:%M:%S")})
    os.ftruncate(fd, 0)
    os.pwrite(fd, info.encode(), 0)
    return _Held(fd, thread, 1, command)


def _describe_holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0).decode() or "{}")
        return f"Another {info['command']} (PID {int(info['pid'])}, started {info['started']})"
    except (OSError, ValueError, KeyError, TypeError):
        return "Another process"
