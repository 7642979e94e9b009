"""Cost before it is spent: the dry-run's count equals tiktoken's count of what a real ingest then sends."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import tiktoken

import rag
from rag.cli import main
from rag.index import Index
from rag.settings import load_settings
from tests.embed_server import EmbeddingServer

PRICE = 0.02  # text-embedding-3-small's default in settings


@pytest.fixture
def server() -> Iterator[EmbeddingServer]:
    with EmbeddingServer(dim=1536) as srv:
        yield srv


@pytest.fixture
def api_env(server: EmbeddingServer, monkeypatch: pytest.MonkeyPatch) -> EmbeddingServer:
    monkeypatch.setenv("RAG_EMBED_MODEL", "openai:text-embedding-3-small")
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    return server


def sent_texts(server: EmbeddingServer) -> list[str]:
    return [t for r in server.requests for t in r["body"]["input"]]


def test_estimate_equals_tiktoken_count_of_what_ingest_sends_times_the_price(api_env: EmbeddingServer) -> None:
    index = Index(load_settings())
    before = index.estimate_cost([rag.demo_corpus()])
    assert not api_env.requests  # estimating embeds nothing
    assert before.documents == 3 and before.unchanged == 0 and before.price_per_million == PRICE

    report = index.ingest([rag.demo_corpus()])
    sent = sent_texts(api_env)
    enc = tiktoken.get_encoding("cl100k_base")
    assert report.chunks_added == before.chunks == len(sent)
    assert before.tokens == sum(len(enc.encode(t)) for t in sent)
    assert before.usd == pytest.approx(before.tokens * PRICE / 1_000_000)

    again = index.estimate_cost([rag.demo_corpus()])  # everything is indexed now: ingest would send nothing
    assert (again.documents, again.unchanged, again.tokens, again.usd) == (0, 3, 0, 0.0)


def test_local_models_cost_nothing_but_still_count(make_index: object) -> None:
    est = make_index().estimate_cost([rag.demo_corpus()])  # type: ignore[attr-defined]
    assert est.price_per_million == 0.0 and est.usd == 0.0
    assert est.chunks > 0 and est.tokens > est.chunks


def test_prices_come_from_settings(api_env: EmbeddingServer) -> None:
    settings = load_settings(embed_prices={"text-embedding-3-small": 1.5})
    est = Index(settings).estimate_cost([rag.demo_corpus()])
    assert est.price_per_million == 1.5 and est.usd == pytest.approx(est.tokens * 1.5e-6)


def test_cli_dry_run_prints_the_estimate_and_ingests_nothing(
    api_env: EmbeddingServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["ingest", str(rag.demo_corpus()), "--dry-run", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["dry_run"] is True and out["documents"] == 3 and out["tokens"] > 0
    assert out["usd"] == pytest.approx(out["tokens"] * PRICE / 1e6, abs=1e-6)
    assert not api_env.requests
    assert main(["status", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["chunks"] == 0

    assert main(["ingest", str(rag.demo_corpus()), "--dry-run"]) == 0
    assert "tokens with openai:text-embedding-3-small: $0.00" in capsys.readouterr().out


def test_above_the_limit_a_non_interactive_ingest_refuses_without_yes(
    api_env: EmbeddingServer, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAG_EMBED_CONFIRM_ABOVE_USD", "0")
    assert main(["ingest", str(rag.demo_corpus())]) == 2
    err = capsys.readouterr().err
    assert "--yes" in err and "embed_confirm_above_usd" in err
    assert not api_env.requests

    assert main(["ingest", str(rag.demo_corpus()), "--yes", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["added"] == 3
    assert api_env.requests


def test_under_the_limit_ingest_goes_ahead(api_env: EmbeddingServer, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ingest", str(rag.demo_corpus()), "--json"]) == 0  # a few cents' worth is far below $1
    assert json.loads(capsys.readouterr().out)["added"] == 3


def test_dry_run_reports_unreadable_sources(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.txt").write_text("The lighthouse keeper lit the lamp.")
    (tmp_path / "b.xyz").write_text("unknown format")
    assert main(["ingest", str(tmp_path / "docs"), str(tmp_path / "b.xyz"), "--dry-run", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["documents"] == 1 and out["chunks"] == 1 and out["usd"] == 0.0
    assert [s["source"].rsplit("/", 1)[-1] for s in out["skipped"]] == ["b.xyz"]
