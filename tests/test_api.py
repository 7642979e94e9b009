"""`rag serve`, the retrieval-plugin routes: the real server on 127.0.0.1, real Chroma, the real embedder.

Responses are validated against the retrieval plugin's published schema (tests/plugin_schema.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from rag.errors import ConfigError
from tests.api_server import TOKEN, ApiServer
from tests.pdfgen import make_pdf
from tests.plugin_schema import validate

FACTS = [
    ("meal", "The meal allowance in Europe is 45 euros a day, paid with the monthly salary.", "email", "finance"),
    ("lamp", "The Harbour Point lighthouse lamp was electrified in 1921 by the harbour board.", "file", "archive"),
    ("ferry", "The ferry to the island leaves the harbour every morning at seven o'clock.", "chat", "ops"),
    ("bike", "Staff may claim 30 cents per kilometre for business trips by bicycle.", "email", "finance"),
    ("roof", "The roof of the museum was repaired in 2019 after the winter storms.", "file", "archive"),
]
DATES = ["2024-01-15", "2024-03-01T09:30:00Z", "2024-05-20T18:00:00+02:00", "2024-07-04", "2024-09-30T23:59:00"]


@pytest.fixture
def api(make_index: Any) -> Iterator[ApiServer]:
    with ApiServer(make_index(api_token=TOKEN)) as server:
        yield server


@pytest.fixture
def client(api: ApiServer) -> Iterator[httpx.Client]:
    with api.client() as c:
        yield c


def upsert_facts(client: httpx.Client) -> list[str]:
    docs = [
        {"id": i, "text": t, "metadata": {"source": s, "author": a, "created_at": d, "source_id": f"{i}-src"}}
        for (i, t, s, a), d in zip(FACTS, DATES, strict=True)
    ]
    r = client.post("/upsert", json={"documents": docs})
    assert r.status_code == 200, r.text
    validate("UpsertResponse", r.json())
    return r.json()["ids"]


def query(client: httpx.Client, *queries: dict[str, Any]) -> list[dict[str, Any]]:
    r = client.post("/query", json={"queries": list(queries)})
    assert r.status_code == 200, r.text
    validate("QueryResponse", r.json())
    return r.json()["results"]


def ids_of(result: dict[str, Any]) -> list[str]:
    return [hit["metadata"]["document_id"] for hit in result["results"]]


def test_health_is_open_and_every_other_route_needs_the_token(api: ApiServer) -> None:
    routes = [
        ("POST", "/upsert", {"json": {"documents": [{"text": "x"}]}}),
        ("POST", "/upsert-file", {"files": {"file": ("a.txt", b"hello")}}),
        ("POST", "/query", {"json": {"queries": [{"query": "x"}]}}),
        ("DELETE", "/delete", {"json": {"delete_all": True}}),
        ("GET", "/v1/models", {}),
        ("POST", "/v1/chat/completions", {"json": {"messages": [{"role": "user", "content": "x"}]}}),
        ("GET", "/openapi.json", {}),
    ]
    with api.client(token=None) as anonymous:
        assert anonymous.get("/health").json()["status"] == "ok"
        for token in (None, "wrong-token", TOKEN + "x", TOKEN[:-1]):
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            for method, path, kwargs in routes:
                r = anonymous.request(method, path, headers=headers, **kwargs)
                assert r.status_code == 401, (path, token, r.text)
                body = r.json()
                if path.startswith("/v1/"):  # OpenAI's error shape, which the openai client parses
                    body = {"error": body["error"]["type"], "message": body["error"]["message"]}
                assert body["error"] == "Unauthorized" and "Bearer" in body["message"]
                assert r.headers["www-authenticate"] == "Bearer"
        basic = anonymous.get("/v1/models", headers={"Authorization": f"Basic {TOKEN}"})
        assert basic.status_code == 401
    assert api.index.store.count() == 0  # nothing refused was done


def test_upsert_then_query_answers_in_the_plugins_shape(client: httpx.Client) -> None:
    assert upsert_facts(client) == [f[0] for f in FACTS]
    results = query(
        client,
        {"query": "How much is the meal allowance in Europe?"},
        {"query": "When was the lighthouse lamp electrified?", "top_k": 1},
        {"query": "ferry departure time", "top_k": 5},
    )
    assert [r["query"] for r in results] == [
        "How much is the meal allowance in Europe?",
        "When was the lighthouse lamp electrified?",
        "ferry departure time",
    ]
    assert len(results[0]["results"]) == 3  # the plugin's default top_k
    assert ids_of(results[0])[0] == "meal" and ids_of(results[1]) == ["lamp"] and ids_of(results[2])[0] == "ferry"
    assert len(results[2]["results"]) == 5
    for result in results:
        scores = [hit["score"] for hit in result["results"]]
        assert scores == sorted(scores, reverse=True)  # best first: higher is more relevant
    top = results[0]["results"][0]
    assert top["id"] == "meal_0" and top["text"] == FACTS[0][1]
    assert top["metadata"] == {
        "document_id": "meal",
        "source": "email",
        "source_id": "meal-src",
        "author": "finance",
        "created_at": "2024-01-15",
    }


def test_filters_by_every_plugin_field_and_any_iso_date(client: httpx.Client) -> None:
    upsert_facts(client)
    q = "harbour lighthouse ferry meal roof bicycle"

    def only(flt: dict[str, Any]) -> set[str]:
        return set(ids_of(query(client, {"query": q, "top_k": 10, "filter": flt})[0]))

    assert only({"document_id": "ferry"}) == {"ferry"}
    assert only({"source": "email"}) == {"meal", "bike"}
    assert only({"source": "file"}) == {"lamp", "roof"}
    assert only({"source_id": "roof-src"}) == {"roof"}
    assert only({"author": "finance"}) == {"meal", "bike"}
    assert only({"author": "finance", "source": "email", "start_date": "2024-06-01"}) == {"bike"}
    assert only({"start_date": "2024-03-01T09:30:00Z"}) == {"lamp", "ferry", "bike", "roof"}
    assert only({"start_date": "2024-03-01T11:00:00+02:00"}) == {"lamp", "ferry", "bike", "roof"}  # same instant
    assert only({"end_date": "2024-03-01"}) == {"meal", "lamp"}  # a bare end date includes that whole day
    assert only({"start_date": "2024-05-01", "end_date": "2024-07-04T00:00:00"}) == {"ferry", "bike"}
    assert only({"end_date": "2023-12-31"}) == set()
    r = client.post("/query", json={"queries": [{"query": q, "filter": {"start_date": "last tuesday"}}]})
    assert r.status_code == 400 and "ISO 8601" in r.json()["message"]
    r = client.post("/query", json={"queries": [{"query": q, "filter": {"source": "fax"}}]})
    assert r.status_code == 422 and r.json()["error"] == "ValidationError"


def test_reupserting_a_document_id_leaves_no_stale_chunk(client: httpx.Client, api: ApiServer) -> None:
    long_text = " ".join(f"Paragraph {i} describes the old ferry timetable in great detail." for i in range(120))
    assert client.post("/upsert", json={"documents": [{"id": "timetable", "text": long_text}]}).json() == {
        "ids": ["timetable"]
    }
    before = query(client, {"query": "old ferry timetable", "top_k": 50, "filter": {"document_id": "timetable"}})
    assert len(before[0]["results"]) > 3
    assert {h["id"] for h in before[0]["results"]} == {f"timetable_{n}" for n in range(len(before[0]["results"]))}
    new = "The new timetable: one ferry at noon."
    client.post("/upsert", json={"documents": [{"id": "timetable", "text": new, "metadata": {"author": "ops"}}]})
    after = query(client, {"query": "old ferry timetable", "top_k": 50, "filter": {"document_id": "timetable"}})
    assert [(h["id"], h["text"], h["metadata"].get("author")) for h in after[0]["results"]] == [
        ("timetable_0", new, "ops")
    ]
    assert api.index.store.count() == 1  # nothing stale left in Chroma either


def test_upsert_file_reads_a_pdf_and_a_second_upload_of_that_name_replaces_it(
    client: httpx.Client, tmp_path: Path
) -> None:
    pdf = make_pdf(
        tmp_path / "report.pdf",
        ["Quarterly report.\nRevenue grew by 12 percent.", "Outlook.\nThe new depot opens in Aberdeen in March."],
        title="Quarterly report",
    )
    with pdf.open("rb") as fh:
        r = client.post(
            "/upsert-file",
            files={"file": ("report.pdf", fh, "application/pdf")},
            data={"metadata": '{"author": "cfo", "created_at": "2024-04-02"}'},
        )
    assert r.status_code == 200, r.text
    validate("UpsertResponse", r.json())
    (document_id,) = r.json()["ids"]
    hit = query(client, {"query": "Where does the new depot open?", "top_k": 1})[0]["results"][0]
    assert "Aberdeen" in hit["text"]
    assert hit["metadata"]["source"] == "file" and hit["metadata"]["source_id"] == "report.pdf"
    assert hit["metadata"]["author"] == "cfo" and hit["metadata"]["document_id"] == document_id
    assert hit["metadata"]["page"] == 2 and hit["metadata"]["title"] == "Quarterly report"
    make_pdf(tmp_path / "report.pdf", ["Revised report.\nThe depot opens in Dundee instead."])
    with pdf.open("rb") as fh:
        again = client.post("/upsert-file", files={"file": ("report.pdf", fh, "application/pdf")}).json()
    assert again["ids"] == [document_id]
    hits = query(client, {"query": "depot", "top_k": 10})[0]["results"]
    assert any("Dundee" in h["text"] for h in hits) and not any("Aberdeen" in h["text"] for h in hits)
    assert {h["metadata"]["title"] for h in hits} == {"report"}  # no PDF title: the uploaded file's name


def test_ingested_files_answer_as_source_file_with_their_path(make_index: Any, tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "harbour.txt").write_text("The harbour master keeps the tide tables for the old port.")
    index = make_index(api_token=TOKEN)
    index.ingest([folder])
    with ApiServer(index) as api, api.client() as client:
        client.post(
            "/upsert",
            json={"documents": [{"id": "mail", "text": "Tide tables by email.", "metadata": {"source": "email"}}]},
        )
        path = str((folder / "harbour.txt").resolve())
        (result,) = query(client, {"query": "tide tables", "filter": {"source": "file"}})
        (hit,) = result["results"]
        assert hit["metadata"]["source"] == "file" and hit["metadata"]["source_id"] == path
        assert hit["metadata"]["created_at"].startswith("20")  # the file's modification time, ISO 8601
        assert ids_of(query(client, {"query": "tide", "filter": {"source_id": path}})[0]) == [
            hit["metadata"]["document_id"]
        ]
        assert ids_of(query(client, {"query": "tide", "filter": {"source": "email"}})[0]) == ["mail"]
        assert ids_of(query(client, {"query": "tide", "filter": {"start_date": "2000-01-01"}})[0]) == [
            hit["metadata"]["document_id"]
        ]


def test_delete_by_id_by_filter_and_everything(client: httpx.Client, api: ApiServer) -> None:
    upsert_facts(client)

    def remaining() -> set[str]:
        return set(ids_of(query(client, {"query": "harbour meal ferry roof bicycle", "top_k": 10})[0]))

    def delete(body: dict[str, Any]) -> httpx.Response:
        r = client.request("DELETE", "/delete", json=body)
        if r.status_code == 200:
            validate("DeleteResponse", r.json())
        return r

    assert delete({"ids": ["meal", "not-there"]}).json() == {"success": True}
    assert remaining() == {"lamp", "ferry", "bike", "roof"}
    assert delete({"filter": {"author": "archive"}}).json() == {"success": True}
    assert remaining() == {"ferry", "bike"}
    assert delete({"ids": ["ferry", "bike"], "filter": {"source": "chat"}}).json()["success"]  # both must match
    assert remaining() == {"bike"}
    r = delete({})
    assert r.status_code == 400 and r.json()["error"] == "ConfigError"
    assert delete({"delete_all": True}).json() == {"success": True}
    assert remaining() == set() and api.index.store.count() == 0


def test_caps_answer_with_clear_4xx_errors(make_index: Any, tmp_path: Path) -> None:
    index = make_index(
        api_token=TOKEN, api_max_request_mb=0.02, api_max_file_mb=0.01, api_max_top_k=5, api_max_queries=2
    )
    with ApiServer(index) as api, api.client() as client:
        r = client.post("/query", json={"queries": [{"query": "x", "top_k": 6}]})
        assert r.status_code == 400 and "top_k must be between 1 and 5" in r.json()["message"]
        r = client.post("/query", json={"queries": [{"query": "x", "top_k": 0}]})
        assert r.status_code == 400
        r = client.post("/query", json={"queries": [{"query": "x"}] * 3})
        assert r.status_code == 400 and "limit is 2" in r.json()["message"]
        big = {"documents": [{"text": "word " * 5000}]}
        r = client.post("/upsert", json=big)
        assert r.status_code == 413 and r.json()["error"] == "PayloadTooLarge"

        def chunks() -> Iterator[bytes]:  # no Content-Length: the server must count
            yield b'{"documents": [{"text": "'
            for _ in range(50):
                yield b"word " * 100
            yield b'"}]}'

        r = client.post("/upsert", content=chunks(), headers={"Content-Type": "application/json"})
        assert r.status_code == 413 and r.json()["error"] == "PayloadTooLarge"
        r = client.post("/upsert-file", files={"file": ("big.txt", b"word " * 4000)})
        assert r.status_code == 413 and "MB limit" in r.json()["message"]
        ok = client.post("/upsert-file", files={"file": ("small.txt", b"A small file about bicycles.")})
        assert ok.status_code == 200
    assert index.store.count() == 1  # only the small file got in


def test_errors_are_json_with_a_name_and_a_message(client: httpx.Client) -> None:
    cases = [
        (client.get("/nowhere"), 404, "NotFound"),
        (client.post("/query", json={"queries": [{"top_k": 3}]}), 422, "ValidationError"),
        (
            client.post("/query", content=b"{not json", headers={"Content-Type": "application/json"}),
            422,
            "ValidationError",
        ),
        (client.post("/upsert-file", files={"file": ("a.exe", b"MZ")}), 415, "UnsupportedFormat"),
        (client.post("/upsert-file", files={"file": ("a.txt", b"hi")}, data={"metadata": "{oops"}), 400, "ConfigError"),
        (
            client.post("/upsert", json={"documents": [{"text": "x", "metadata": {"created_at": "yesterday"}}]}),
            400,
            "ConfigError",
        ),
        (client.get("/upsert"), 405, "MethodNotAllowed"),
    ]
    for r, status, name in cases:
        assert r.status_code == status, (name, r.text)
        body = r.json()
        assert body["error"] == name and isinstance(body["message"], str) and body["message"], body


def test_no_token_means_loopback_only(make_index: Any) -> None:
    from rag.api import make_server
    from rag.cli import main

    index = make_index()
    for host in ("0.0.0.0", "192.168.1.10", "::"):
        with pytest.raises(ConfigError, match="RAG_API_TOKEN"):
            make_server(index, host, 0)
    assert main(["serve", "--host", "0.0.0.0", "--port", "0"]) == 2
    make_server(index, "127.0.0.1", 0)
    make_server(index, "localhost", 0)
    make_server(make_index(api_token=TOKEN), "0.0.0.0", 0)  # built, never started
    with ApiServer(index) as api, api.client(token=None) as anonymous:  # loopback without a token: open
        body = {"queries": [{"query": "x"}]}
        assert anonymous.post("/query", json=body).json() == {"results": [{"query": "x", "results": []}]}
        own = anonymous.post("/query", json=body, headers={"Origin": api.base})  # e.g. the /docs page
        assert own.status_code == 200
        # ...but not to a web page elsewhere (a form posted at us) nor through DNS rebinding (a foreign Host).
        form = anonymous.post(
            "/upsert-file", files={"file": ("a.txt", b"spam")}, headers={"Origin": "http://evil.test"}
        )
        assert form.status_code == 403 and form.json()["error"] == "Forbidden"
        rebound = anonymous.post("/query", json=body, headers={"Host": "evil.test:8000"})
        assert rebound.status_code == 403 and "not this machine" in rebound.json()["message"]
        assert anonymous.get("/health", headers={"Host": "evil.test"}).status_code == 200
    assert index.store.count() == 0


def test_cors_is_off_unless_origins_are_configured(make_index: Any) -> None:
    preflight = {
        "Origin": "http://chat.example",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type",
    }
    with ApiServer(make_index(api_token=TOKEN)) as api, api.client() as client:
        r = client.options("/query", headers=preflight)
        assert "access-control-allow-origin" not in r.headers
        r = client.post("/query", json={"queries": [{"query": "x"}]}, headers={"Origin": "http://chat.example"})
        assert "access-control-allow-origin" not in r.headers
    index = make_index(api_token=TOKEN, api_cors_origins=["http://chat.example"])
    with ApiServer(index) as api, api.client(token=None) as anonymous:
        r = anonymous.options("/query", headers=preflight)
        assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "http://chat.example"
        r = anonymous.post("/query", json={"queries": [{"query": "x"}]}, headers={"Origin": "http://chat.example"})
        assert r.status_code == 401  # CORS lets the browser ask; the token still decides


def test_openapi_json_matches_the_plugin_and_has_examples(client: httpx.Client) -> None:
    spec = client.get("/openapi.json").json()
    for path, method in [
        ("/upsert", "post"),
        ("/upsert-file", "post"),
        ("/query", "post"),
        ("/delete", "delete"),
        ("/v1/chat/completions", "post"),
        ("/v1/models", "get"),
        ("/health", "get"),
    ]:
        assert method in spec["paths"][path], path
    ours = spec["components"]["schemas"]
    from tests.plugin_schema import SCHEMAS

    for name in (
        "Query",
        "DocumentMetadataFilter",
        "DocumentChunkWithScore",
        "DocumentChunkMetadata",
        "QueryResult",
        "QueryResponse",
        "UpsertResponse",
        "DeleteResponse",
    ):
        assert set(SCHEMAS[name]["properties"]) <= set(ours[name]["properties"]), name
        assert set(SCHEMAS[name].get("required", [])) == set(ours[name].get("required", [])), name
    assert ours["Query"]["properties"]["top_k"]["default"] == 3
    assert ours["DeleteRequest"]["properties"]["delete_all"]["default"] is False
    assert ours["Source"]["enum"] == ["email", "file", "chat"]
    for name in ("UpsertRequest", "QueryRequest", "DeleteRequest", "ChatCompletionRequest"):
        assert ours[name]["examples"], name
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"


def test_rag_serve_command_serves_the_configured_index(tmp_path: Path) -> None:
    import os
    import queue
    import re
    import subprocess
    import sys
    import threading

    env = {**os.environ, "RAG_API_TOKEN": TOKEN, "RAG_DATA_DIR": str(tmp_path / "served")}
    cmd = [sys.executable, "-m", "rag.cli", "serve", "--port", "0", "--collection", "served"]
    proc = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stderr or []], daemon=True).start()
    try:
        port = None
        while port is None:
            line = lines.get(timeout=120)  # a guard against a hung start, not a measurement
            found = re.search(r"Uvicorn running on http://127\.0\.0\.1:(\d+)", line)
            port = int(found.group(1)) if found else None
        headers = {"Authorization": f"Bearer {TOKEN}"}
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=120) as client:
            assert client.get("/health").json()["status"] == "ok"
            client.post("/upsert", json={"documents": [{"id": "d1", "text": "Served from the command line."}]})
            (result,) = client.post("/query", json={"queries": [{"query": "command line"}]}).json()["results"]
            assert [h["id"] for h in result["results"]] == ["d1_0"]
            assert client.get("/query", headers={"Authorization": "Bearer nope"}).status_code == 401
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_a_folder_sync_never_deletes_documents_a_client_upserted(make_index: Any, tmp_path: Path) -> None:
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "kept.txt").write_text("A note that stays on disk.")
    index = make_index()
    index.upsert_texts([{"id": "memo", "text": "A memo.", "metadata": {"source_id": str(folder / "gone.txt")}}])
    index.ingest([folder])
    report = index.ingest([folder])
    assert report.deleted == 0 and index.status()["documents"] == 2
