"""The CLI as a script calls it: `--json` shapes of INTERFACES.md, exit codes, and no connection off loopback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests.llm_server import LLMServer
from tests.pdfgen import make_pdf


def rag(*args: str, env: dict[str, str] | None = None, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rag.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "people.txt").write_text(
        "Ada Quill was born on 3 March 1911 in Lisbon. She became a cartographer and mapped the Azores.\n\n"
        "Her brother Tomas Quill was a ship's carpenter who never left Lisbon.",
        encoding="utf-8",
    )
    (folder / "guide.md").write_text("# Guide\n\n## Parking\n\nVisitors park behind the east gate.\n")
    make_pdf(folder / "paper.pdf", ["Abstract. We measure rainfall in the Atacama desert.", "Results on page two."])
    return folder


def test_ingest_status_search_ask_json_shapes(docs: Path) -> None:
    out = rag("ingest", str(docs), "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert set(report) >= {"added", "updated", "unchanged", "deleted", "chunks_added", "failed", "skipped", "seconds"}
    assert report["added"] == 3 and report["failed"] == [] and report["chunks_added"] >= 3

    status = json.loads(rag("status", "--json").stdout)
    assert status["documents"] == 3 and status["chunks"] == report["chunks_added"]
    assert status["embedder"]["name"] == "all-MiniLM-L6-v2" and status["embedder"]["dimension"] == 384
    assert status["store"] == "embedded" and status["collection"] == "default"

    search = json.loads(rag("search", "Where was the mapmaker born?", "--top-k", "2", "--json").stdout)
    assert search["query"] == "Where was the mapmaker born?" and len(search["results"]) == 2
    top = search["results"][0]
    assert set(top) >= {"id", "text", "score", "metadata"} and Path(top["metadata"]["source"]).name == "people.txt"
    assert set(top["metadata"]) >= {"source", "document_id", "page"}

    ask = json.loads(rag("ask", "When was Ada Quill born?", "--json").stdout)
    assert set(ask) >= {"question", "answer", "mode", "found", "citations", "results"}
    assert ask["mode"] == "extractive" and ask["found"] and "1911" in ask["answer"]
    cite = ask["citations"][0]
    assert set(cite) >= {"n", "id", "source", "page", "text"} and Path(cite["source"]).name == "people.txt"

    again = json.loads(rag("ingest", str(docs), "--json").stdout)
    assert (again["added"], again["unchanged"]) == (0, 3)


def test_readable_output_and_exit_codes(docs: Path) -> None:
    (docs / "broken.pdf").write_bytes(b"not a pdf at all")
    out = rag("ingest", str(docs))
    assert out.returncode == 3 and "3 added" in out.stdout and "broken.pdf" in out.stderr
    ask = rag("ask", "When was Ada Quill born?")
    assert ask.returncode == 0 and "1911" in ask.stdout and "people.txt" in ask.stdout
    assert rag("search").returncode == 2  # usage error
    bad = rag("search", "x", "--filter", "nonsense")
    assert bad.returncode == 2 and "KEY=VALUE" in bad.stderr and "Traceback" not in bad.stderr


def test_a_store_that_cannot_be_opened_exits_1_with_advice(tmp_path: Path) -> None:
    blocker = tmp_path / "file-not-dir"
    blocker.write_text("x")
    out = rag("status", env={"RAG_DATA_DIR": str(blocker)})
    assert out.returncode == 1 and "error:" in out.stderr and "Traceback" not in out.stderr


def test_ask_through_a_loopback_llm_from_the_cli(docs: Path, llm_server: LLMServer) -> None:
    assert rag("ingest", str(docs), "--quiet").returncode == 0
    env = {"OPENAI_BASE_URL": llm_server.base_url, "OPENAI_API_KEY": "sk-test", "RAG_LLM_MODEL": "stub"}
    out = rag("ask", "When was Ada Quill born?", "--json", env=env)
    answer = json.loads(out.stdout)
    assert answer["mode"] == "llm" and answer["citations"][0]["n"] == 1
    assert "1911" in json.dumps(llm_server.chat_requests()[0]["body"]["messages"])
    forced = json.loads(rag("ask", "When was Ada Quill born?", "--no-llm", "--json", env=env).stdout)
    assert forced["mode"] == "extractive" and len(llm_server.chat_requests()) == 1


AUDIT = textwrap.dedent(
    """
    import ipaddress, json, socket, sys
    outside = []

    def loopback(host):
        if isinstance(host, bytes):
            host = host.decode()
        if host in (None, "", "localhost"):
            return True
        try:
            return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
        except ValueError:
            return False

    def hook(event, args):
        if event in ("socket.getaddrinfo", "socket.gethostbyname") and not loopback(args[0]):
            outside.append([event, str(args[0])]); raise OSError("blocked by test: " + str(args[0]))
        if event == "socket.connect" and isinstance(args[1], tuple) and not loopback(args[1][0]):
            outside.append([event, str(args[1][0])]); raise OSError("blocked by test: " + str(args[1]))

    sys.addaudithook(hook)
    from rag.cli import main
    codes = [main(["ingest", sys.argv[1], "--quiet", "--json"]), main(["search", "mapmaker", "--json"]),
             main(["ask", "When was Ada Quill born?", "--json"])]
    seen_by_app = list(outside)
    try:  # prove the hook is live: an outside lookup must be caught
        socket.getaddrinfo("example.com", 443)
    except OSError:
        pass
    print("AUDIT " + json.dumps({"codes": codes, "outside": seen_by_app, "probe": outside[len(seen_by_app):]}))
    """
)


def test_ingest_search_and_ask_open_no_connection_outside_loopback(docs: Path) -> None:
    out = subprocess.run([sys.executable, "-c", AUDIT, str(docs)], capture_output=True, text=True, timeout=300)
    line = next(x for x in out.stdout.splitlines() if x.startswith("AUDIT "))
    result: dict[str, Any] = json.loads(line[6:])
    assert result["codes"] == [0, 0, 0], out.stderr
    assert result["outside"] == []
    assert result["probe"] == [["socket.getaddrinfo", "example.com"]]
