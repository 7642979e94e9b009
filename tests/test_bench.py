"""The benchmark code runs end to end on a tiny corpus, so `python bench/run.py` never rots (no timings asserted)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.run import run, table

TINY = {"ingest_docs": 4, "quality_docs": 25, "quality_queries": 4, "scale_chunks": 40, "queries": 3, "cold_runs": 0}


@pytest.fixture
def result(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # no vectors or graphs from earlier runs
    return run(quick=True, sizes=TINY, allow_download=False)


def test_bench_measures_every_part_on_a_tiny_corpus(result: dict) -> None:
    assert result["docs"] == 4 and result["chunks"] >= 4
    assert result["resync_unchanged"] == 4  # the re-run found every file unchanged
    assert result["llamaindex_chunks"] >= 4
    assert "dequantised" in result["fp32_reference"]  # offline: says it is not the true fp32 weights
    assert 0.0 <= result["ndcg_fp32"] <= 1.0 and 0.0 <= result["ndcg_default"] <= 1.0
    assert result["scale_chunks"] == 40 and result["synthetic_chunks"] == 40 - 25
    assert result["scale_queries"] == 2 and result["query_p50_ms"] > 0 and result["peak_rss_mb"] > 0
    for key in ("ingest_vs_raw", "ingest_vs_llamaindex", "resync_speedup", "ndcg_delta"):
        assert isinstance(result[key], float), key
    printed = table(result)
    assert "llama-index time / ours" in printed and "search p99" in printed
