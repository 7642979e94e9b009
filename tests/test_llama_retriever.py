"""The llama-index retriever inside a real llama-index chat engine, talking to a loopback OpenAI-compatible LLM."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from rag.llama_retriever import RagRetriever
from tests.llm_server import LLMServer


@pytest.fixture
def index(make_index: Any, tmp_path: Path) -> Any:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "volcano.txt").write_text(
        "Mount Kerelo is a dormant volcano on Tamsa. It last erupted in 1783, covering villages in ash."
    )
    (folder / "bakery.txt").write_text("The Juniper Street bakery opens at 6:30 every weekday.")
    (folder / "tides.txt").write_text("Spring tides at Portlow harbour rise four metres.")
    idx = make_index()
    assert idx.ingest([folder]).added == 3
    return idx


def test_retriever_returns_unique_scored_nodes_with_sources(index: Any) -> None:
    retriever = RagRetriever(index, top_k=3)
    nodes = retriever.retrieve("When did Mount Kerelo last erupt?")
    assert Path(nodes[0].node.metadata["source"]).name == "volcano.txt"
    assert len({n.node.node_id for n in nodes}) == len(nodes) == 3
    assert [n.score for n in nodes] == sorted((n.score for n in nodes), reverse=True)
    assert {"source", "document_id"} <= set(nodes[0].node.metadata)

    async def both() -> list[Any]:
        # Two retrievals at once on one event loop: the async path must not block it.
        return await asyncio.gather(
            retriever.aretrieve("When did Mount Kerelo last erupt?"), retriever.aretrieve("bakery opening time")
        )

    first, second = asyncio.run(both())
    assert [n.node.node_id for n in first] == [n.node.node_id for n in nodes]
    assert Path(second[0].node.metadata["source"]).name == "bakery.txt"


def test_retriever_inside_a_llama_index_chat_engine(index: Any, llm_server: LLMServer) -> None:
    from llama_index.core.chat_engine import ContextChatEngine
    from llama_index.llms.openai_like import OpenAILike

    def reply(messages: list[dict[str, Any]]) -> str:
        context = "\n".join(str(m.get("content", "")) for m in messages)
        return "It erupted in 1783." if "1783" in context else "I do not know."

    llm_server.reply = reply
    llm = OpenAILike(
        model="test-model",
        api_base=llm_server.base_url,
        api_key="sk-test",
        is_chat_model=True,
        context_window=4096,
        max_retries=0,
    )
    engine = ContextChatEngine.from_defaults(retriever=RagRetriever(index, top_k=2), llm=llm)
    response = engine.chat("When did Mount Kerelo last erupt?")
    assert str(response) == "It erupted in 1783."
    assert Path(response.source_nodes[0].node.metadata["source"]).name == "volcano.txt"
    sent = llm_server.chat_requests()[-1]["body"]["messages"]
    assert any("Mount Kerelo" in str(m.get("content")) for m in sent)
