"""`rag serve` as an OpenAI-compatible model: the real `openai` client against `/v1`, answers from a loopback LLM
(tests/llm_server.py) or extractive ones, with cited sources."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest

from tests.api_server import TOKEN, ApiServer
from tests.llm_server import LLMServer

DOCS = [
    {"id": "meal", "text": "The meal allowance in Europe is 45 euros a day.", "metadata": {"source_id": "policy.txt"}},
    {
        "id": "ferry",
        "text": "The ferry to the island leaves at seven o'clock.",
        "metadata": {"url": "https://x.test/f"},
    },
    {"id": "roof", "text": "The museum roof was repaired in 2019 after the storms.", "metadata": {"author": "ann"}},
]
QUESTION = "How much is the meal allowance in Europe?"


@pytest.fixture
def llm_api(make_index: Any, llm_server: LLMServer) -> Iterator[tuple[ApiServer, openai.OpenAI]]:
    index = make_index(
        api_token=TOKEN, openai_base_url=llm_server.base_url, openai_api_key="sk-upstream", llm_model="upstream-model"
    )
    index.upsert_texts(DOCS)
    with ApiServer(index) as api:
        yield api, openai.OpenAI(base_url=f"{api.base}/v1", api_key=TOKEN, max_retries=0)


def test_models_lists_the_index(llm_api: tuple[ApiServer, openai.OpenAI]) -> None:
    _, client = llm_api
    assert [m.id for m in client.models.list().data] == ["rag"]


def test_chat_completion_answers_from_the_index_with_sources(
    llm_api: tuple[ApiServer, openai.OpenAI], llm_server: LLMServer
) -> None:
    _, client = llm_api
    messages: list[Any] = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "When does the ferry leave?"},
        {"role": "assistant", "content": "At seven [1]."},
        {"role": "user", "content": QUESTION},
    ]
    r = client.chat.completions.create(model="rag", messages=messages)
    text = r.choices[0].message.content or ""
    assert text == "From the documents: The meal allowance in Europe is 45 euros a day. [1]."
    assert r.choices[0].finish_reason == "stop" and r.model == "rag" and r.object == "chat.completion"
    sources = (r.model_extra or {})["sources"]
    assert [(s["n"], s["id"], s["metadata"]["source_id"]) for s in sources] == [(1, "meal_0", "policy.txt")]
    upstream = llm_server.chat_requests()[-1]["body"]
    assert upstream["model"] == "upstream-model" and llm_server.chat_requests()[-1]["auth"] == "Bearer sk-upstream"
    assert QUESTION in str(upstream["messages"])  # the last user message is the question
    with_notes = client.chat.completions.create(model="rag", messages=messages, extra_body={"footnotes": True})
    assert with_notes.choices[0].message.content == text + "\n\nSources:\n[1] policy.txt"


def test_streamed_chat_completion_arrives_in_pieces_and_ends_with_sources(
    llm_api: tuple[ApiServer, openai.OpenAI],
) -> None:
    _, client = llm_api
    messages: list[Any] = [{"role": "user", "content": "When does the ferry to the island leave?"}]
    plain = client.chat.completions.create(model="rag", messages=messages).choices[0].message.content
    chunks = list(
        client.chat.completions.create(model="rag", messages=messages, stream=True, extra_body={"footnotes": True})
    )
    pieces = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(pieces) > 3  # streamed word by word, as the upstream LLM sent it
    assert "".join(pieces) == f"{plain}\n\nSources:\n[1] https://x.test/f"
    assert chunks[0].choices[0].delta.role == "assistant"
    last = chunks[-1]
    assert last.choices[0].finish_reason == "stop" and last.object == "chat.completion.chunk"
    assert [s["metadata"]["url"] for s in (last.model_extra or {})["sources"]] == ["https://x.test/f"]
    assert len({c.id for c in chunks}) == 1


def test_without_an_llm_the_answer_is_extractive_and_cited(make_index: Any) -> None:
    index = make_index(api_token=TOKEN, api_footnotes=True)
    index.upsert_texts(DOCS)
    with ApiServer(index) as api:
        client = openai.OpenAI(base_url=f"{api.base}/v1", api_key=TOKEN, max_retries=0)
        r = client.chat.completions.create(model="anything", messages=[{"role": "user", "content": QUESTION}])
        text = r.choices[0].message.content or ""
        assert "45 euros" in text and "[1]" in text and text.endswith("Sources:\n[1] policy.txt")
        assert r.model == "anything"
        stream = client.chat.completions.create(
            model="rag", messages=[{"role": "user", "content": QUESTION}], stream=True, extra_body={"footnotes": False}
        )
        assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == text.split("\n\nSources:")[0]


def test_openai_client_gets_its_own_errors(llm_api: tuple[ApiServer, openai.OpenAI]) -> None:
    api, client = llm_api
    wrong = openai.OpenAI(base_url=f"{api.base}/v1", api_key="not-the-token", max_retries=0)
    with pytest.raises(openai.AuthenticationError, match="bearer token"):
        wrong.models.list()
    with pytest.raises(openai.BadRequestError, match="no user message"):
        client.chat.completions.create(model="rag", messages=[{"role": "system", "content": "hi"}])
    with pytest.raises(openai.BadRequestError, match="top_k"):
        client.chat.completions.create(
            model="rag", messages=[{"role": "user", "content": QUESTION}], extra_body={"top_k": 10_000}
        )
    with pytest.raises(openai.UnprocessableEntityError, match="messages"):
        client.chat.completions.create(model="rag", messages="not a list")  # type: ignore[arg-type]
