"""The dependency arrows of docs/architecture.md, checked by reading the imports of every module."""

from __future__ import annotations

import ast
from pathlib import Path

import rag

REPO = Path(__file__).resolve().parents[1]


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _modules(package: str) -> list[Path]:
    return sorted((REPO / package).rglob("*.py"))


def test_only_the_store_imports_chromadb() -> None:
    users = [
        p.relative_to(REPO).as_posix()
        for pkg in ("rag", "connectors", "ui")
        for p in _modules(pkg)
        if any(n == "chromadb" or n.startswith("chromadb.") for n in _imports(p))
    ]
    assert users == ["rag/store.py"]


def test_connectors_use_only_the_document_type_and_errors_of_rag() -> None:
    for path in _modules("connectors"):
        ours = {n for n in _imports(path) if n == "rag" or n.startswith("rag.")}
        assert ours <= {"rag.documents", "rag.errors"}, (path, ours)


def test_nothing_imports_the_ui_and_the_ui_uses_only_the_public_api() -> None:
    for pkg in ("rag", "connectors"):
        for path in _modules(pkg):
            if path.parent.name == "cli":  # `rag ui` launches it: the one allowed edge
                continue
            assert not any(n == "ui" or n.startswith("ui.") for n in _imports(path)), path
    for path in _modules("ui"):
        ours = {n for n in _imports(path) if n == "rag" or n.startswith("rag.")}
        assert ours <= {"rag"}, (path, ours)


def test_public_api_is_what_all_says() -> None:
    for name in rag.__all__:
        assert getattr(rag, name) is not None, name
    assert callable(rag.open_index) and rag.demo_corpus().is_dir()
