"""Files and folders: find what can be indexed, and turn one file into a Document.

Every problem is reported for the one source it concerns (yielded by `discover`, raised by `load`), so a batch
never stops because one file is unreadable.
"""

from __future__ import annotations

import hashlib
import mimetypes
import os
import stat
from collections.abc import Iterable, Iterator, Sequence
from fnmatch import fnmatchcase
from pathlib import Path

from connectors.base import DEFAULT_OPTIONS, Loader, LoadOptions, human_size, loader_for, supported_suffixes
from rag.documents import Document, Section
from rag.errors import SourceError, UnsupportedFormat


def discover(
    paths: Iterable[str | Path], include: Sequence[str] = (), exclude: Sequence[str] = ()
) -> Iterator[Path | str | SourceError]:
    """Yield the files to load under `paths`, and a SourceError for each path that cannot be used.

    An http(s) URL is yielded as the string it is (`load` fetches it).
    A file named explicitly is yielded as given (or UnsupportedFormat, so the user hears why it was skipped). A
    folder is walked recursively in sorted order for supported files, skipping hidden entries and surviving
    symlink loops. `include`/`exclude` are fnmatch globs tried on the path relative to the folder and on the file
    name; an excluded folder name prunes the whole folder. The same real file is yielded once.

    >>> list(discover(["docs"], include=["*.md"], exclude=["drafts"]))  # doctest: +SKIP
    [PosixPath('docs/guide.md'), PosixPath('docs/api/index.md')]
    """
    seen_files: set[tuple[int, int]] = set()
    seen_dirs: set[tuple[int, int]] = set()
    for raw in paths:
        if is_url(raw):
            yield str(raw)
            continue
        path = Path(raw)
        try:
            st = path.stat()
        except FileNotFoundError:
            yield SourceError(str(path), "not found (broken symlink)" if path.is_symlink() else "not found")
            continue
        except OSError as exc:
            yield SourceError(str(path), f"cannot access: {exc.strerror or exc}")
            continue
        if stat.S_ISDIR(st.st_mode):
            yield from _walk(path, st, include, exclude, seen_dirs, seen_files)
        elif not stat.S_ISREG(st.st_mode):
            yield SourceError(str(path), "not a regular file")
        elif loader_for(path) is None:
            yield _unsupported(path)
        elif _first_time(st, seen_files):
            yield path


def _walk(
    root: Path,
    root_stat: os.stat_result,
    include: Sequence[str],
    exclude: Sequence[str],
    seen_dirs: set[tuple[int, int]],
    seen_files: set[tuple[int, int]],
) -> Iterator[Path | SourceError]:
    """Depth-first, sorted, without recursion (deep trees can't overflow the stack)."""
    if not _first_time(root_stat, seen_dirs):
        return
    stack: list[Iterator[os.DirEntry[str]]] = []
    listing = _list(root)
    if isinstance(listing, SourceError):
        yield listing
        return
    stack.append(iter(listing))
    while stack:
        entry = next(stack[-1], None)
        if entry is None:
            stack.pop()
            continue
        if entry.name.startswith("."):  # hidden files and folders, .git among them
            continue
        path = Path(entry.path)
        rel = path.relative_to(root).as_posix()
        try:
            st = entry.stat()  # follows symlinks: a link to a folder is walked, to a file is loaded
        except FileNotFoundError:
            if loader_for(path) is not None and _matches_filters(rel, entry.name, include, exclude):
                reason = "broken symlink" if entry.is_symlink() else "vanished while scanning"
                yield SourceError(str(path), reason)
            continue
        except OSError as exc:
            yield SourceError(str(path), f"cannot access: {exc.strerror or exc}")
            continue
        if stat.S_ISDIR(st.st_mode):
            if _matches(rel, entry.name, exclude) or not _first_time(st, seen_dirs):
                continue  # excluded, or a folder already walked (a symlink loop or a second link to it)
            listing = _list(path)
            if isinstance(listing, SourceError):
                yield listing
            else:
                stack.append(iter(listing))
        elif (
            stat.S_ISREG(st.st_mode)
            and loader_for(path) is not None
            and _matches_filters(rel, entry.name, include, exclude)
            and _first_time(st, seen_files)
        ):
            yield path


def _list(folder: Path) -> list[os.DirEntry[str]] | SourceError:
    try:
        with os.scandir(folder) as it:
            return sorted(it, key=lambda e: e.name)
    except OSError as exc:
        return SourceError(str(folder), f"cannot read folder: {exc.strerror or exc}")


def _first_time(st: os.stat_result, seen: set[tuple[int, int]]) -> bool:
    key = (st.st_dev, st.st_ino)
    if key in seen:
        return False
    seen.add(key)
    return True


def _matches_filters(rel: str, name: str, include: Sequence[str], exclude: Sequence[str]) -> bool:
    return (not include or _matches(rel, name, include)) and not _matches(rel, name, exclude)


def _matches(rel: str, name: str, patterns: Sequence[str]) -> bool:
    for pattern in patterns:
        # "**/" may stand for no folder at all, as in gitignore: "docs/**/*.md" also matches "docs/a.md".
        candidates = {pattern, pattern.replace("**/", "")}
        if any(fnmatchcase(rel, p) or fnmatchcase(name, p) for p in candidates):
            return True
    return False


def _unsupported(path: Path) -> UnsupportedFormat:
    supported = ", ".join(sorted(supported_suffixes()))
    kind = f"'{path.suffix}'" if path.suffix else "files without a suffix"
    return UnsupportedFormat(str(path), f"unsupported file type {kind} (supported: {supported})")


def is_url(source: str | Path) -> bool:
    return isinstance(source, str) and source.lower().startswith(("http://", "https://"))


def load(source: str | Path, options: LoadOptions | None = None) -> Document:
    """Read one file (or fetch one http(s) URL) into a Document.

    Raises SourceError (or UnsupportedFormat) with a reason a user can act on; a file over
    `options.max_file_bytes` is refused before a byte of it is read.
    """
    options = options or DEFAULT_OPTIONS
    if is_url(source):
        from connectors.web import fetch  # httpx is imported only when a URL is given

        return fetch(str(source), options)
    path = Path(source)
    loader = loader_for(path)
    if loader is None:
        raise _unsupported(path)
    try:
        source = str(path.resolve())
        st = path.stat()
        if stat.S_ISDIR(st.st_mode):
            raise SourceError(source, "is a folder: use discover() to walk it")
        if st.st_size > options.max_file_bytes:
            raise SourceError(source, _too_big(st.st_size, options))
        with path.open("rb") as fh:
            data = fh.read(options.max_file_bytes + 1)  # the file may have grown since stat()
        if len(data) > options.max_file_bytes:
            raise SourceError(source, _too_big(len(data), options))
    except FileNotFoundError as exc:
        raise SourceError(str(path), "not found") from exc
    except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop, on older Pythons
        raise SourceError(str(path), f"cannot read: {getattr(exc, 'strerror', None) or exc}") from exc
    sections, title, mime = run_loader(loader, path, data, options, source)
    return Document(
        source=source,
        sections=sections,
        title=title,
        mime=mime or mimetypes.guess_type(path.name)[0] or "application/octet-stream",
        sha256=hashlib.sha256(data).hexdigest(),
        mtime=st.st_mtime,
        size=len(data),
    )


def _too_big(size: int, options: LoadOptions) -> str:
    return f"over the {human_size(options.max_file_bytes)} limit ({human_size(size)}; raise max_file_mb to read it)"


def run_loader(
    loader: Loader, path: Path, data: bytes, options: LoadOptions, source: str
) -> tuple[list[Section], str, str]:
    """Call a format loader; every failure becomes a SourceError for `source`, and no text is an error too."""
    try:
        sections, title, mime = loader(path, data, options)
    except SourceError as exc:
        if exc.source == source:
            raise
        raise type(exc)(source, exc.reason) from exc
    except RecursionError as exc:
        raise SourceError(source, f"could not read {path.suffix or 'the'} file: nested too deeply") from exc
    except MemoryError as exc:
        raise SourceError(source, "could not read: it needs more memory than is available") from exc
    except Exception as exc:  # a parser bug costs this file, with a reason, never the batch
        raise SourceError(source, f"could not read {path.suffix} file: {type(exc).__name__}: {exc}") from exc
    sections = [s for s in sections if s.text.strip()]
    if not sections:
        raise SourceError(source, "empty: no text could be extracted")
    return sections, title, mime
