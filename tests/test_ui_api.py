"""What the UI needs from `rag` (collections, documents, the embedding map) and its own server-side state
(background uploads) and formatting — over real Chroma and the real default embedder, without a browser."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import rag
from rag.embedding_map import build_map, pca_2d
from tests.pdfgen import make_pdf
from ui.views import QUESTION, RETRIEVED, documents_table, map_caption, map_colors, map_frame, progress_html
from ui.workspace import IngestJob, JobSnapshot, Workspace

TOPICS = {
    "bees.txt": "Honey bees collect nectar from flowers. The hive keeps a queen bee, workers and drones. "
    "Beekeepers harvest honey from the combs in late summer.",
    "bees-2.txt": "A bee colony swarms in spring when the hive grows crowded. Worker bees build wax comb and "
    "store pollen and honey for the winter.",
    "trains.txt": "The express train leaves the central station at nine. Diesel locomotives pull the freight "
    "wagons along the coastal railway line to the harbour.",
}


def _corpus(tmp_path: Path) -> Path:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name, text in TOPICS.items():
        (corpus / name).write_text(text, encoding="utf-8")
    return corpus


def test_collections_are_listed_with_sizes_and_deleted_with_their_keyword_index(
    tmp_path: Path, make_index: Any
) -> None:
    notes = make_index(collection="notes")
    notes.ingest([_corpus(tmp_path)])
    notes.search("bees", mode="keyword")  # builds the keyword index on disk
    make_index(collection="empty-one")
    data = tmp_path / "rag-data"

    assert rag.list_collections(data_dir=data) == {"empty-one": 0, "notes": notes.store.count()}
    assert (data / "keyword" / "notes").is_dir()
    assert rag.delete_collection("notes", data_dir=data) is True
    assert rag.list_collections(data_dir=data) == {"empty-one": 0}
    assert not (data / "keyword" / "notes").exists()
    assert rag.delete_collection("notes", data_dir=data) is False
    with pytest.raises(rag.ConfigError):
        rag.delete_collection("../etc", data_dir=data)


def test_documents_are_listed_with_chunk_counts_and_removed_one_by_one(tmp_path: Path, make_index: Any) -> None:
    index = make_index()
    index.ingest([_corpus(tmp_path)])
    docs = index.documents()
    assert [Path(d["source"]).name for d in docs] == sorted(TOPICS)
    assert sum(d["chunks"] for d in docs) == index.store.count()
    assert all(d["mime"] == "text/plain" and d["mtime"] for d in docs)

    trains = next(d for d in docs if d["source"].endswith("trains.txt"))
    before = index.store.generation()
    assert index.remove_document(trains["document_id"]) == trains["chunks"]
    assert index.store.generation() > before  # the keyword index and the map rebuild
    assert all("trains" not in r.source for r in index.search("diesel locomotive freight railway"))
    assert index.remove_document(trains["document_id"]) == 0


def test_pca_keeps_the_main_direction_and_is_deterministic() -> None:
    rng = np.random.default_rng(0)
    data = np.outer(np.linspace(-1, 1, 50), [3.0, 0, 0, 0]) + rng.normal(0, 0.01, (50, 4))
    coords, _, axes, explained = pca_2d(data)
    assert coords.shape == (50, 2) and explained[0] > 0.99
    assert np.allclose(np.abs(axes[0]), [1, 0, 0, 0], atol=0.01)
    again, *_ = pca_2d(data[::-1])
    assert np.allclose(sorted(coords[:, 0]), sorted(again[:, 0]))
    assert pca_2d(data[:1])[0].shape == (1, 2)


def test_the_map_puts_similar_chunks_together_and_the_question_near_its_answer(tmp_path: Path, make_index: Any) -> None:
    index = make_index()
    index.ingest([_corpus(tmp_path)])
    hits = index.search("how do bees make honey?", top_k=1)
    emap = index.embedding_map("how do bees make honey?", [h.id for h in hits])

    assert len(emap.points) == emap.total == index.store.count()
    where = {Path(p.source).name: np.array([p.x, p.y]) for p in emap.points}
    bee_gap = np.linalg.norm(where["bees.txt"] - where["bees-2.txt"])
    assert bee_gap < np.linalg.norm(where["bees.txt"] - where["trains.txt"])
    assert emap.query is not None and emap.highlight == [hits[0].id]
    q = np.array(emap.query)
    assert np.linalg.norm(q - where["bees.txt"]) < np.linalg.norm(q - where["trains.txt"])
    assert emap.to_dict()["points"][0].keys() >= {"x", "y", "source", "text"}

    sample = build_map(index.store, ("sample-test", "0"), max_points=2)
    assert 1 <= len(sample.points) <= 2 and sample.total == index.store.count()

    # Cached per generation: a new document changes the map.
    (tmp_path / "more.txt").write_text("Sourdough bread needs flour, water, salt and a lively starter.")
    index.ingest([tmp_path / "more.txt"])
    assert len(index.embedding_map().points) == len(emap.points) + 1


def test_an_upload_runs_in_the_background_and_reports_every_file(tmp_path: Path, make_index: Any) -> None:
    ws = Workspace(make_index(collection="ui-jobs"))
    uploads = tmp_path / "incoming"
    uploads.mkdir()
    good = make_pdf(uploads / "canal handbook.pdf", ["The canal climbs through seventeen locks."])
    broken = uploads / "broken.pdf"
    broken.write_bytes(b"%PDF-1.4 not a pdf")
    stored = ws.store_uploads("ui-jobs", [good, broken, uploads / "missing.txt"])
    assert [p.name for p in stored] == ["canal handbook.pdf", "broken.pdf"]
    assert all(p.parent == tmp_path / "rag-data" / "uploads" / "ui-jobs" for p in stored)

    job = ws.start_ingest("ui-jobs", stored)
    job.wait(120)
    snap = ws.job("ui-jobs").snapshot()
    assert not snap.running and snap.done == snap.total == 2 and snap.chunks >= 1
    outcome = {Path(src).name: (status, detail) for src, status, detail in snap.results}
    assert outcome["canal handbook.pdf"] == ("added", "")
    assert outcome["broken.pdf"][0] == "failed" and outcome["broken.pdf"][1]
    assert ws.index("ui-jobs").search("How many locks does the canal climb through?")[0].source == str(stored[0])

    ws.index("second-collection")
    assert set(ws.collections()) == {"ui-jobs", "second-collection"}
    assert ws.delete("ui-jobs") and not ws.uploads_dir("ui-jobs").exists()
    with pytest.raises(rag.ConfigError, match="valid collection name"):
        ws.index("x")


def test_a_source_refused_before_reading_still_gets_a_result_row(tmp_path: Path, make_index: Any) -> None:
    job = IngestJob("c", [str(tmp_path / "nowhere.txt")])
    job.run(make_index())
    snap = job.snapshot()
    assert [(Path(s).name, status) for s, status, _ in snap.results] == [("nowhere.txt", "failed")]
    assert snap.results[0][2]


def test_progress_shows_counts_and_escaped_reasons() -> None:
    running = JobSnapshot("notes", True, 1, 4, 7, [("/u/a.pdf", "added", "")], seconds=1.5)
    html = progress_html(running)
    assert "1/4 files" in html and "7 chunks" in html and 'aria-valuenow="25"' in html and "indexed" in html
    done = JobSnapshot("notes", False, 2, 2, 7, [("/u/a.pdf", "added", ""), ("/u/<b>.pdf", "failed", "bad <x>")])
    html = progress_html(done)
    assert "1 file ready" in html and "1 not indexed" in html and "&lt;b&gt;.pdf" in html and "bad &lt;x&gt;" in html
    assert "<x>" not in html and 'aria-valuenow="100"' in html


def test_documents_table_and_map_rows() -> None:
    doc = {"document_id": "d1", "source": "/x/y/report.pdf", "chunks": 3, "mime": "application/pdf", "mtime": 0.0}
    assert documents_table([doc])[0] == ["report.pdf", 3, "application/pdf", "", "/x/y/report.pdf"]

    emap = rag.EmbeddingMap(
        [
            rag.MapPoint("a_0", 0.0, 1.0, "/d/a.txt", "a", "alpha text"),
            rag.MapPoint("b_0", 1.0, 0.0, "/d/b.md", "b", "beta text", heading="Intro"),
        ],
        (0.5, 0.2),
        "a question?",
        (0.5, 0.5),
        ["b_0"],
        2,
    )
    frame = map_frame(emap)
    assert list(frame["group"]) == ["a.txt", RETRIEVED, QUESTION]
    assert list(frame["where"])[:2] == ["", "Intro"]
    assert set(map_colors(frame)) == {"a.txt", RETRIEVED, QUESTION}
    assert "70% of the variance" in map_caption(emap) and "2 chunks of 2 documents" in map_caption(emap)


def test_the_map_can_be_coloured_by_topic_cluster(tmp_path: Path, make_index: Any) -> None:
    """Documents of clearly separate topics land in separate named clusters, and the map groups points by them."""
    from ui.views import cluster_labels

    folder = tmp_path / "topics"
    folder.mkdir()
    topics = {
        "volcano": "The volcano erupted, lava and ash covered the crater slopes; magma rose through the vent.",
        "bakery": "The baker kneaded dough, proofed the sourdough loaves and baked bread in a hot oven.",
    }
    for name, text in topics.items():
        for i in range(3):
            (folder / f"{name}-{i}.txt").write_text(f"{text} Note {i} about the {name}.")
    index = make_index()
    index.ingest([folder])
    labels = cluster_labels(index.clusters(k=2))
    emap = index.embedding_map()
    frame = map_frame(emap, labels)
    by_topic: dict[str, set[str]] = {}
    for p in emap.points:
        by_topic.setdefault(Path(p.source).name.split("-")[0], set()).add(labels[p.document_id])
    assert all(len(groups) == 1 for groups in by_topic.values()), by_topic  # one cluster per topic
    assert by_topic["volcano"] != by_topic["bakery"]
    assert set(frame["group"]) == set(labels.values()) and all(g.startswith("topic ") for g in frame["group"])
    assert len(map_colors(frame)) >= 2


def test_an_upload_to_a_paid_embedder_is_priced_first_and_refused_above_the_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The UI tells the price of an upload before a paid API embeds it, and refuses above the confirmation limit."""
    from rag.index import Index
    from rag.settings import load_settings
    from tests.embed_server import EmbeddingServer

    with EmbeddingServer(dim=1536) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        settings = load_settings(embed_model="openai:text-embedding-3-small", data_dir=tmp_path / "paid")
        ws = Workspace(Index(settings))
        notice = ws.check_cost(ws.default, [rag.demo_corpus()])
        assert notice is not None and "tokens" in notice and "$0.0" in notice and "/1M tokens" in notice
        assert not server.requests  # pricing embeds nothing
        strict = Workspace(Index(settings.model_copy(update={"embed_confirm_above_usd": 0.0})))
        with pytest.raises(rag.ConfigError, match="embed_confirm_above_usd"):
            strict.check_cost(strict.default, [rag.demo_corpus()])
    local = Workspace(rag.open_index(data_dir=tmp_path / "local"))
    assert local.check_cost(local.default, [rag.demo_corpus()]) is None  # local models cost nothing
