"""`rag eval` on a tiny BEIR folder made here: metrics checked against values computed by hand, the evaluation
index reused on the second run, and SQuAD-layout loading."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from rag.cli import main
from rag.eval import load_beir, load_squad, metrics, to_doc_run

# Keyword mode makes the ranking plain to see: BM25 returns only documents sharing a (stemmed) word.
CORPUS = {
    "d1": ("Zebras", "Zebras zebras zebras: the zebra herd of the plains, zebra stripes and zebra foals."),
    "d2": ("Savanna", "A lone zebra was seen once near the waterhole among many antelopes."),
    "d3": ("Glaciers", "Glaciers carve valleys; the glacier at Velmar retreats every summer."),
    "d4": ("Ice", "Frozen lakes and cold winters in the northern mountains."),
    "d5": ("Bread", "Sourdough bread rises slowly with a rye starter."),
}
QUERIES = {"q1": "zebra", "q2": "glacier", "q3": "sourdough", "q4": "no judgements here"}
# q1: the judged document d2 is ranked 2nd (d1 says "zebra" more often). q2: d3 is 1st, d4 (also relevant) shares
# no word with the query, so it is never retrieved. q3: the only relevant document is 1st. q4 has no qrels: skipped.
QRELS = [("q1", "d2", 1), ("q2", "d3", 1), ("q2", "d4", 1), ("q3", "d5", 1)]


@pytest.fixture
def beir(tmp_path: Path) -> Path:
    root = tmp_path / "tiny"
    (root / "qrels").mkdir(parents=True)
    with (root / "corpus.jsonl").open("w") as fh:
        for did, (title, text) in CORPUS.items():
            fh.write(json.dumps({"_id": did, "title": title, "text": text}) + "\n")
    with (root / "queries.jsonl").open("w") as fh:
        for qid, text in QUERIES.items():
            fh.write(json.dumps({"_id": qid, "text": text}) + "\n")
    (root / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t{s}\n" for q, d, s in QRELS)
    )
    return root


def _expected() -> dict[str, float]:
    ndcg_q1 = 1 / math.log2(3)  # relevant at rank 2, ideal at rank 1
    ndcg_q2 = 1 / (1 + 1 / math.log2(3))  # one of two relevant at rank 1
    return {
        "ndcg@10": (ndcg_q1 + ndcg_q2 + 1) / 3,
        "recall@10": (1 + 0.5 + 1) / 3,
        "recall@100": (1 + 0.5 + 1) / 3,
        "mrr@10": (0.5 + 1 + 1) / 3,
    }


def test_rag_eval_keyword_metrics_match_hand_computed(beir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", "--beir", str(beir), "--mode", "keyword", "--json"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["queries"] == 3 and first["mode"] == "keyword" and first["documents"] == 5
    for key, value in _expected().items():
        assert first[key] == pytest.approx(value, abs=1e-4), key
    assert set(first) >= {"ndcg@10", "recall@10", "recall@100", "mrr@10", "queries", "mode", "seconds"}

    # The second run reuses the evaluation index: nothing is embedded again (no progress line), same chunks.
    assert main(["eval", "--beir", str(beir), "--mode", "hybrid", "--json"]) == 0
    captured = capsys.readouterr()
    second = json.loads(captured.out)
    assert "eval index:" not in captured.err
    assert second["chunks"] == first["chunks"] and second["collection"] == first["collection"]
    assert second["mrr@10"] > 0 and second["mode"] == "hybrid"

    assert main(["eval", "--beir", str(beir), "--mode", "dense"]) == 0
    text = capsys.readouterr().out
    assert "ndcg@10" in text and "3 queries" in text


def test_missing_split_is_a_usage_error_naming_the_available_ones(beir: Path, capsys: pytest.CaptureFixture[str]):
    assert main(["eval", "--beir", str(beir), "--split", "dev"]) == 2
    assert "available splits: test" in capsys.readouterr().err


def test_metrics_from_trec_eval_on_a_hand_made_run() -> None:
    qrels = {"a": {"x": 1}, "b": {"y": 1, "z": 1}}
    run = {"a": to_doc_run(["w", "x", "x", "v"]), "b": {}}  # "x" twice (two chunks) counts once, at rank 2
    got = metrics(qrels, run)
    assert got["mrr@10"] == pytest.approx(0.25)
    assert got["ndcg@10"] == pytest.approx(round((1 / math.log2(3)) / 2, 4))
    assert got["recall@10"] == pytest.approx(0.5)


def test_loaders_read_beir_and_squad_layouts(beir: Path, tmp_path: Path) -> None:
    data = load_beir(beir)
    assert set(data.queries) == {"q1", "q2", "q3"} and data.qrels["q2"] == {"d3": 1, "d4": 1}
    squad = tmp_path / "squad"
    squad.mkdir()
    (squad / "passages.jsonl").write_text(
        json.dumps({"_id": "p1", "title": "", "text": "Paris is the capital of France."}) + "\n"
    )
    (squad / "questions.jsonl").write_text(
        json.dumps({"id": "1", "question": "Capital of France?", "is_impossible": False, "passage_id": "p1"})
        + "\n"
        + json.dumps({"id": "2", "question": "Capital of Mars?", "is_impossible": True, "passage_id": "p1"})
        + "\n"
    )
    loaded = load_squad(squad)
    assert loaded.qrels == {"1": {"p1": 1}} and list(loaded.corpus) == ["p1"]
