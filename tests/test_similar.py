"""`rag similar` ("more like this") and `rag duplicates` from the stored vectors, real embedder and Chroma."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rag.cli import main
from rag.errors import ConfigError

DOCS = {
    "kerelo.txt": "Mount Kerelo is a dormant volcano on the island of Tamsa. It last erupted in 1783.",
    "kerelo-copy.txt": "Mount Kerelo is a dormant volcano on the island of Tamsa. It last erupted in 1783!",
    "etna.txt": "Etna is an active volcano in Sicily whose lava flows reach the villages on its slopes.",
    "bakery.txt": "The Juniper Street bakery sells rye sourdough and opens at half past six.",
    "chess.txt": "The chess club meets on Fridays; the winner keeps a brass knight trophy.",
}


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "docs"
    root.mkdir()
    for name, text in DOCS.items():
        (root / name).write_text(text, encoding="utf-8")
    return root


def test_similar_ranks_the_related_documents_first(make_index: Any, folder: Path) -> None:
    index = make_index()
    index.ingest([folder])
    results = index.similar(str(folder / "kerelo.txt"), top_k=3)
    names = [Path(r["source"]).name for r in results]
    assert names[:2] == ["kerelo-copy.txt", "etna.txt"] and "kerelo.txt" not in names
    assert [r["score"] for r in results] == sorted((r["score"] for r in results), reverse=True)
    by_id = index.similar(results[0]["document_id"], top_k=1)  # a document id works as well as a path
    assert Path(by_id[0]["source"]).name == "kerelo.txt"
    with pytest.raises(ConfigError, match="not in the index"):
        index.similar(str(folder / "missing.txt"))


def test_duplicates_finds_the_copy_and_only_it(make_index: Any, folder: Path) -> None:
    index = make_index()
    index.ingest([folder])
    pairs = index.duplicates(threshold=0.95)
    assert len(pairs) == 1
    assert {Path(pairs[0]["a"]["source"]).name, Path(pairs[0]["b"]["source"]).name} == {"kerelo.txt", "kerelo-copy.txt"}
    assert pairs[0]["score"] >= 0.95
    chunk_pairs = index.duplicates(threshold=0.95, level="chunk")
    assert len(chunk_pairs) == 1 and chunk_pairs[0]["a"]["id"] != chunk_pairs[0]["b"]["id"]
    assert len(index.duplicates(threshold=0.3)) > 1


def test_cli_json_shapes(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ingest", str(folder), "--quiet", "--json"]) == 0
    capsys.readouterr()
    assert main(["similar", str(folder / "etna.txt"), "--top-k", "2", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["results"]) == 2 and set(out["results"][0]) >= {"document_id", "source", "title", "score"}
    assert main(["duplicates", "--json"]) == 0
    dup = json.loads(capsys.readouterr().out)
    assert dup["threshold"] == 0.95 and len(dup["pairs"]) == 1
    assert main(["duplicates", "--threshold", "2"]) == 2
