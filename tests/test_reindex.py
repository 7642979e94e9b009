"""Safe model switches: reindex into a new collection while searches run, swap when complete, roll back."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

import rag
from rag.cli import main
from rag.errors import EmbedderMismatch, EmbeddingError
from rag.index import Index
from rag.settings import load_settings
from tests.embed_server import EmbeddingServer
from tests.tiny_onnx import DIM, build_model_folder

QUESTION = "Where is the Harbour Point lighthouse?"


@pytest.fixture
def tiny(tmp_path: Path) -> str:
    build_model_folder(tmp_path / "tiny-bert")
    return f"onnx:{tmp_path / 'tiny-bert'}"


@pytest.fixture
def index(make_index: Any) -> Any:
    idx = make_index()
    idx.ingest([rag.demo_corpus()])
    return idx


def sources(results: list[Any]) -> set[str]:
    return {Path(r.metadata["source"]).name for r in results}


def test_searches_never_fail_while_a_reindex_to_another_model_swaps_and_rolls_back(index: Any, tiny: str) -> None:
    old_key = index.embedder.identity.key()
    chunks = index.store.count()
    errors: list[BaseException] = []
    during: list[set[str]] = []
    searches = {"n": 0}
    stop = threading.Event()
    enough_during_build = threading.Event()

    def search_loop() -> None:
        while not stop.is_set() and searches["n"] < 5000:  # bounded however the threads interleave
            try:
                mid_build = building.is_set()  # the swap cannot happen before the progress callback returns
                results = index.search(QUESTION, top_k=3)
                searches["n"] += 1
                if mid_build:
                    during.append(sources(results))
                if len(during) >= 3:
                    enough_during_build.set()
            except BaseException as exc:
                errors.append(exc)
                enough_during_build.set()
                return

    checks: dict[str, Any] = {}

    def progress(done: int, total: int) -> None:
        # Mid-build: the live collection is still the old one, nothing swapped, nothing dropped yet.
        checks["live"] = index.store.recorded_embedder()
        checks["previous"] = index.store.previous_embedder()
        checks["count"] = index.store.count()
        building.set()
        enough_during_build.wait(timeout=60)  # let searches run against the old collection meanwhile
        building.clear()

    building = threading.Event()
    searcher = threading.Thread(target=search_loop)
    searcher.start()
    try:
        job = index.start_reindex(to=tiny, progress=progress)
        report = job.wait(timeout=120)
        after_swap = searches["n"]
        while searches["n"] < after_swap + 3 and searcher.is_alive():
            searcher.join(timeout=0.05)
    finally:
        stop.set()
        searcher.join(timeout=60)

    assert not errors, errors
    assert checks == {"live": old_key, "previous": None, "count": chunks}
    assert len(during) >= 3 and all("harbour-point-lighthouse.txt" in s for s in during)
    assert report.chunks == chunks and report.from_embedder == old_key
    assert index.embedder.identity.dimension == DIM and report.to_embedder == index.embedder.identity.key()
    assert index.store.recorded_embedder() == report.to_embedder and index.store.count() == chunks
    assert index.store.previous_embedder() == old_key  # kept for rollback
    assert len(index.search(QUESTION, top_k=3)) == 3

    assert index.rollback() == old_key
    assert index.embedder.identity.key() == old_key and index.store.recorded_embedder() == old_key
    assert "harbour-point-lighthouse.txt" in sources(index.search(QUESTION, top_k=1))
    assert index.store.previous_embedder() == report.to_embedder  # a rollback can itself be undone
    assert index.rollback() == report.to_embedder and index.embedder.identity.dimension == DIM


def test_a_failed_reindex_leaves_the_old_collection_serving(index: Any) -> None:
    chunks = index.store.count()
    key = index.store.recorded_embedder()
    with EmbeddingServer() as server:
        server.status = 500
        index.settings = index.settings.model_copy(update={"openai_base_url": server.base_url, "embed_max_retries": 0})
        with pytest.raises(EmbeddingError, match="HTTP 500"):
            index.reindex(to="openai:text-embedding-3-small")
    assert index.store.recorded_embedder() == key and index.store.count() == chunks
    assert index.store.previous_embedder() is None
    assert "harbour-point-lighthouse.txt" in sources(index.search(QUESTION, top_k=1))


def test_reindex_to_an_api_reports_tokens_and_cost(index: Any, capsys: pytest.CaptureFixture[str]) -> None:
    import tiktoken

    with EmbeddingServer(dim=1536) as server:
        index.settings = index.settings.model_copy(update={"openai_base_url": server.base_url})
        job = index.start_reindex(to="openai:text-embedding-3-small")
        report = job.wait(timeout=60)
        sent = [t for r in server.requests for t in r["body"]["input"]]
    enc = tiktoken.get_encoding("cl100k_base")
    assert report.tokens == sum(len(enc.encode(t)) for t in sent) > 0
    assert report.usd == pytest.approx(report.tokens * 0.02 / 1e6, abs=1e-6)
    assert job.done == job.total == report.chunks


def test_cli_reindex_to_another_model_then_rollback(
    tiny: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert main(["ingest", str(rag.demo_corpus()), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["reindex", "--to", tiny, "--json"]) == 0
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert out["chunks"] > 0 and out["embed_model"] == tiny and out["to"].startswith("onnx:")
    assert f"now set RAG_EMBED_MODEL={tiny}" in captured.err

    assert main(["search", QUESTION, "--json"]) == 1  # the configured model no longer matches
    err = capsys.readouterr().err
    assert "rag reindex" in err and f"RAG_EMBED_MODEL={tiny}" in err
    monkeypatch.setenv("RAG_EMBED_MODEL", tiny)  # the user follows the advice...
    assert main(["search", QUESTION, "--json"]) == 0
    capsys.readouterr()

    assert main(["reindex", "--rollback", "--json"]) == 0  # ...then wants the old model back
    captured = capsys.readouterr()
    rolled = json.loads(captured.out)
    assert rolled["restored"] == out["from"] and rolled["replaced"] == out["to"] and rolled["embed_model"] == "local"
    assert "now set RAG_EMBED_MODEL=local" in captured.err
    monkeypatch.setenv("RAG_EMBED_MODEL", "local")
    assert main(["search", QUESTION, "--json"]) == 0
    assert "harbour-point-lighthouse" in capsys.readouterr().out


def test_cli_reindex_dry_run_prices_an_api_switch(index: Any, capsys: pytest.CaptureFixture[str]) -> None:
    data = ["--data-dir", str(index.settings.data_dir)]
    assert main(["reindex", *data, "--to", "openai:text-embedding-3-large", "--dry-run", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["chunks"] == index.store.count() and out["documents"] == 3
    assert out["price_per_million"] == 0.13 and out["usd"] == pytest.approx(out["tokens"] * 0.13 / 1e6, abs=1e-6)
    assert index.store.previous_embedder() is None  # nothing happened


def test_rollback_without_a_previous_collection_says_so(index: Any) -> None:
    from rag.errors import StoreError

    with pytest.raises(StoreError, match="no previous version"):
        index.rollback()


def test_another_index_follows_a_same_model_reindex_and_refuses_a_different_one(
    index: Any, make_index: Any, tiny: str
) -> None:
    other = make_index()  # e.g. the UI's process, opened before the reindex
    index.reindex()  # same model: the other handle follows the swap silently
    assert "harbour-point-lighthouse.txt" in sources(other.search(QUESTION, top_k=1))
    index.reindex(to=tiny)
    with pytest.raises(EmbedderMismatch, match="RAG_EMBED_MODEL=onnx:"):
        other.search(QUESTION)
    with pytest.raises(EmbedderMismatch):
        make_index()
    with pytest.raises(EmbedderMismatch, match="RAG_EMBED_MODEL=onnx:"):
        Index(load_settings(data_dir=index.settings.data_dir))  # the configured default model, in a new process


def test_reindex_and_rollback_work_against_a_chroma_server(make_index: Any, chroma_server: str, tiny: str) -> None:
    index = make_index(chroma_url=chroma_server, collection="reindex-on-server")
    index.ingest([rag.demo_corpus()])
    old_key, chunks = index.store.recorded_embedder(), index.store.count()
    report = index.start_reindex(to=tiny).wait(timeout=120)
    assert report.chunks == chunks and index.store.count() == chunks
    assert index.store.previous_embedder() == old_key and len(index.search(QUESTION, top_k=2)) == 2
    assert index.rollback() == old_key
    assert "harbour-point-lighthouse.txt" in sources(index.search(QUESTION, top_k=1))


def test_a_reindex_keeps_the_keyword_index_and_a_rollback_rebuilds_it(index: Any, make_index: Any) -> None:
    assert "harbour-point-lighthouse.txt" in sources(index.search(QUESTION, top_k=1, mode="keyword"))
    index.reindex()  # the same chunks, re-embedded: the keyword index on disk is re-stamped, not rebuilt
    assert "harbour-point-lighthouse.txt" in sources(index.search(QUESTION, top_k=1, mode="keyword"))
    assert index.keyword.rebuilds == 0
    fresh = make_index()  # a new process trusts it too
    assert fresh.keyword.size() == index.store.count() and fresh.keyword.rebuilds == 0
    index.rollback()  # the older collection may differ from what the index holds: rebuilt, never assumed
    assert "harbour-point-lighthouse.txt" in sources(index.search(QUESTION, top_k=1, mode="keyword"))
    assert index.keyword.rebuilds == 1
