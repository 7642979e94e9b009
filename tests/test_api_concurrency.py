"""`rag serve` under load: queries keep answering while an ingest runs, and a multi-query request embeds its
queries in one batch. Real server, real Chroma, real embedder, real data (the SQuAD passages in shared/data)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any

import httpx
import numpy as np

from rag.index import Index
from rag.settings import load_settings
from tests.api_server import TOKEN, ApiServer
from tests.conftest import SHARED_DATA
from tests.plugin_schema import validate

QUESTIONS = [
    "What do pattern recognition receptors identify?",
    "Which pathway is conserved across all eukaryotes?",
    "What is the main form of invertebrate systemic immunity?",
    "Who was the first president?",
    "Where is the river?",
]


def passages() -> list[dict[str, Any]]:
    path = SHARED_DATA / "qa" / "squad2" / "passages.jsonl"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [{"id": r["_id"], "text": r["text"], "metadata": {"source": "file", "source_id": "squad2"}} for r in rows]


def test_fifty_queries_during_an_ingest_all_succeed(make_index: Any) -> None:
    docs = passages()[:100]  # 20 to start with, 80 for the ingest (a few seconds of embedding on 2 cores)
    index = make_index(api_token=TOKEN)
    index.upsert_texts(docs[:20])
    events: list[str] = []

    async def scenario(base: str) -> tuple[httpx.Response, list[httpx.Response], httpx.Response]:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        limits = httpx.Limits(max_connections=60)
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=300, limits=limits) as client:

            async def ingest() -> httpx.Response:
                r = await client.post("/upsert", json={"documents": docs[20:]})
                events.append("ingest done")
                return r

            async def one(i: int) -> httpx.Response:
                body = {"queries": [{"query": QUESTIONS[i % len(QUESTIONS)], "top_k": 3}]}
                r = await client.post("/query", json=body)
                events.append("query done")
                return r

            task = asyncio.create_task(ingest())
            await asyncio.sleep(0.5)  # let the server start embedding
            health = await client.get("/health")  # the event loop is free while the ingest works in a thread
            events.append("health done")
            answers = await asyncio.gather(*(one(i) for i in range(50)))
            return await task, answers, health

    with ApiServer(index) as api:
        ingested, answers, health = asyncio.run(scenario(api.base))
    assert ingested.status_code == 200 and len(ingested.json()["ids"]) == len(docs) - 20
    assert health.status_code == 200
    assert [r.status_code for r in answers] == [200] * 50
    for r in answers:
        validate("QueryResponse", r.json())
        assert len(r.json()["results"][0]["results"]) == 3
    # Every query was sent while the ingest was still running; the server did not hold them until it finished.
    assert events.index("health done") < events.index("ingest done"), events
    assert events.index("query done") < events.index("ingest done"), events
    assert index.store.count() >= len(docs)


class CountingEmbedder:
    """The real embedder, counting its calls: shows how a request's queries reach it."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls: list[int] = []

    @property
    def identity(self) -> Any:
        return self.inner.identity

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.calls.append(len(texts))
        return self.inner.embed(texts)

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed([text])[0]


def test_a_multi_query_request_embeds_its_queries_in_one_batch(embedder: Any, tmp_path: Any) -> None:
    counting = CountingEmbedder(embedder)
    index = Index(load_settings(data_dir=tmp_path / "d", api_token=TOKEN), embedder=counting)
    index.upsert_texts(passages()[:10])
    counting.calls.clear()
    with ApiServer(index) as api, api.client() as client:
        r = client.post("/query", json={"queries": [{"query": q} for q in QUESTIONS]})
    assert r.status_code == 200
    assert counting.calls == [len(QUESTIONS)]
    found = r.json()["results"]
    assert found[0]["results"][0]["metadata"]["document_id"] == "ctx0000"  # the passage about receptors
