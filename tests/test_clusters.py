"""Clusters on a generated corpus of clearly separate topics recover the topics, named by their own words."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from rag.cli import main
from rag.clusters import parse_k
from rag.errors import ConfigError

TOPICS = {
    "astronomy": ["telescope", "galaxy", "planet", "comet", "nebula", "orbit", "astronomer", "star"],
    "baking": ["dough", "oven", "flour", "yeast", "pastry", "butter", "bread", "baker"],
    "football": ["goalkeeper", "striker", "penalty", "stadium", "referee", "midfielder", "match", "league"],
    "taxes": ["invoice", "deduction", "auditor", "accountant", "payroll", "receipt", "taxpayer", "refund"],
}
TEMPLATES = [
    "The {0} was discussed together with the {1} and the {2}.",
    "Every {0} depends on a good {1}, said the {2}.",
    "Nobody expected the {0} to change the {1} so quickly.",
    "A {0}, a {1} and a {2} were the subject of the report.",
]


def write_corpus(folder: Path, per_topic: int = 4) -> dict[str, str]:
    """`per_topic` documents per topic, each five sentences of that topic's words; returns file name → topic."""
    rng = random.Random(11)
    folder.mkdir()
    truth = {}
    for topic, words in TOPICS.items():
        for i in range(per_topic):
            sentences = [rng.choice(TEMPLATES).format(*rng.sample(words, 3)) for _ in range(5)]
            name = f"{topic}-{i}.txt"
            (folder / name).write_text(" ".join(sentences))
            truth[name] = topic
    return truth


@pytest.fixture
def corpus_index(make_index: Any, tmp_path: Path) -> tuple[Any, dict[str, str]]:
    truth = write_corpus(tmp_path / "corpus")
    index = make_index()
    assert index.ingest([tmp_path / "corpus"]).added == len(truth)
    return index, truth


def topics_of(clustering: Any, truth: dict[str, str]) -> list[set[str]]:
    return [{truth[Path(d["source"]).name] for d in c.documents} for c in clustering.clusters]


@pytest.mark.parametrize("k", [4, "auto"])
def test_clusters_recover_separate_topics_and_name_them_by_their_words(
    corpus_index: tuple[Any, dict[str, str]], k: int | str
) -> None:
    index, truth = corpus_index
    result = index.clusters(k)
    assert result.k == 4 and result.method == "kmeans"
    assert sorted(len(c.documents) for c in result.clusters) == [4, 4, 4, 4]
    assert all(len(t) == 1 for t in topics_of(result, truth))  # every cluster is one topic
    for cluster, (topic,) in zip(result.clusters, topics_of(result, truth), strict=True):
        assert set(cluster.terms[:3]) <= set(TOPICS[topic]), (topic, cluster.terms)
    assert result.silhouette is not None and result.silhouette > 0.1
    assert set(result.assignments().values()) == {0, 1, 2, 3} and len(result.assignments()) == 16


def test_cli_clusters_json_and_text(corpus_index: tuple[Any, dict[str, str]], capsys: Any) -> None:
    assert main(["clusters", "--k", "2", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["k"] == 2 and sum(c["size"] for c in out["clusters"]) == 16
    assert all(c["label"] == ", ".join(c["terms"][:3]) for c in out["clusters"])
    assert main(["clusters"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("4 clusters of 16 documents") and "baking-0.txt" in text


def test_an_empty_collection_has_no_clusters(make_index: Any) -> None:
    result = make_index().clusters()
    assert result.to_dict() == {"k": 0, "method": "kmeans", "silhouette": None, "clusters": []}


def test_k_must_be_a_positive_number_or_auto() -> None:
    assert parse_k("auto") is None and parse_k("3") == 3
    for bad in ("0", "many", "-2"):
        with pytest.raises(ConfigError, match="k must"):
            parse_k(bad)
