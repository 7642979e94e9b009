"""Web sources: pages and files fetched from a real HTTP server on 127.0.0.1, the SSRF guard refusing private
targets before any connection (and after redirects), and the size and time limits."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

import connectors
from connectors import LoadOptions
from connectors.web import BlockedAddress, check_host
from rag.errors import SourceError, UnsupportedFormat
from tests.pdfgen import make_pdf

Route = tuple[int, dict[str, str], bytes]


class Server:
    """A loopback HTTP server answering from a dict of routes, recording every request path it receives."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests.append(self.path)
                status, headers, body = server.routes.get(self.path, (404, {}, b"missing"))
                self.send_response(status)
                headers = dict(headers)
                chunked = headers.pop("x-chunked", None)
                for key, value in headers.items():
                    self.send_header(key, value)
                if chunked:  # no Content-Length: the client cannot know the size in advance
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    for i in range(0, len(body), 65536):
                        piece = body[i : i + 65536]
                        self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
                    self.wfile.write(b"0\r\n\r\n")
                    return
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.base = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def add(self, path: str, body: bytes, content_type: str = "text/html; charset=utf-8", **headers: str) -> str:
        self.routes[path] = (200, {"Content-Type": content_type, **headers}, body)
        return self.base + path


@pytest.fixture
def server() -> Iterator[Server]:
    srv = Server()
    srv.thread.start()
    try:
        yield srv
    finally:
        srv.httpd.shutdown()
        srv.httpd.server_close()


PRIVATE = LoadOptions(allow_private=True)
PAGE = b"""<html><head><title>Refund policy</title></head><body><nav>Home | Shop</nav>
<main><h1>Refunds</h1><p>Refunds are paid within 14 days of the return.</p></main><script>x()</script></body></html>"""


def test_a_page_is_fetched_and_read_as_html(server: Server) -> None:
    url = server.add("/policy", PAGE, **{"Last-Modified": "Wed, 21 Oct 2025 07:28:00 GMT"})

    doc = connectors.load(url, PRIVATE)

    assert (doc.source, doc.title, doc.mime) == (url, "Refund policy", "text/html")
    assert "Refunds are paid within 14 days" in doc.text and "Home | Shop" not in doc.text and "x()" not in doc.text
    assert doc.sections[0].heading == "Refunds"
    assert doc.size == len(PAGE) and doc.mtime == 1761031680.0


def test_files_are_read_by_content_type_or_else_by_the_url_suffix(server: Server, tmp_path: Path) -> None:
    pdf = make_pdf(tmp_path / "a.pdf", ["Quarterly numbers went up"]).read_bytes()
    pdf_url = server.add("/download?id=7", pdf, "application/pdf")
    csv_url = server.add("/export/teams.csv", b"Team,Cups\nBlues,1\n", "application/octet-stream")
    zip_url = server.add("/archive", b"PK\x03\x04", "application/zip")

    doc = connectors.load(pdf_url, PRIVATE)
    assert (doc.mime, doc.sections[0].page) == ("application/pdf", 1) and "Quarterly numbers" in doc.text
    assert connectors.load(csv_url, PRIVATE).text == "Team: Blues | Cups: 1"
    with pytest.raises(UnsupportedFormat, match="unsupported content type 'application/zip'"):
        connectors.load(zip_url, PRIVATE)


def test_the_charset_of_the_content_type_header_is_honoured(server: Server) -> None:
    latin = server.add("/note.txt", "Crème brûlée au café, naïve".encode("latin-1"), "text/plain; charset=ISO-8859-1")
    cyrillic = "<html><head><meta charset='utf-8'><title>Москва</title></head><body><p>Столица России</p></body>"
    page = server.add("/ru", cyrillic.encode("cp1251"), 'text/html; charset="windows-1251"')  # the header wins

    assert connectors.load(latin, PRIVATE).text == "Crème brûlée au café, naïve"
    doc = connectors.load(page, PRIVATE)
    assert (doc.title, doc.text) == ("Москва", "Столица России")


def test_redirects_are_followed_and_errors_reported(server: Server) -> None:
    target = server.add("/new", PAGE)
    server.routes["/old"] = (301, {"Location": "/new"}, b"")
    server.routes["/loop"] = (302, {"Location": "/loop"}, b"")

    doc = connectors.load(server.base + "/old", PRIVATE)
    assert doc.source == server.base + "/old" and doc.extra == {"final_url": target}
    with pytest.raises(SourceError, match="too many redirects"):
        connectors.load(server.base + "/loop", PRIVATE)
    with pytest.raises(SourceError, match="HTTP 404"):
        connectors.load(server.base + "/nothing-here", PRIVATE)


def test_loopback_is_refused_without_allow_private_and_nothing_is_sent(server: Server) -> None:
    url = server.add("/policy", PAGE)

    for target in (url, f"http://localhost:{server.port}/policy", f"http://[::1]:{server.port}/policy"):
        with pytest.raises(BlockedAddress, match=r"loopback address \(use --allow-private to fetch it\)") as err:
            connectors.load(target)
        assert err.value.source == target
    assert server.requests == []


@pytest.mark.parametrize(
    ("host", "kind"),
    [
        ("localhost", "loopback"),
        ("127.0.0.1", "loopback"),
        ("127.5.5.5", "loopback"),
        ("[::1]", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        ("169.254.169.254", "link-local"),  # cloud metadata endpoints
        ("fe80::1", "link-local"),
        ("10.0.0.1", "private"),
        ("192.168.1.20", "private"),
        ("172.16.0.1", "private"),
        ("fd00::1", "private"),
        ("224.0.0.1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("100.64.0.1", "non-public"),  # carrier-grade NAT
    ],
)
def test_the_guard_refuses_every_non_public_address_before_connecting(
    host: str, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_connect(*args: Any) -> None:
        raise AssertionError("the guard must refuse before any connection")

    monkeypatch.setattr(socket.socket, "connect", no_connect)
    with pytest.raises(BlockedAddress, match=f"is an? {kind} address"):
        check_host(host, 80)
    url_host = f"[{host.strip('[]')}]" if ":" in host else host
    with pytest.raises(BlockedAddress, match=f"is an? {kind} address"):
        connectors.load(f"http://{url_host}/latest/meta-data/")


def test_public_addresses_pass_and_allow_hosts_lets_one_private_host_through() -> None:
    assert check_host("93.184.215.14", 443) == ["93.184.215.14"]  # a literal: no lookup, no connection
    assert check_host("2606:4700::1111", 443) == ["2606:4700::1111"]
    assert check_host("127.0.0.1", 80, allow_hosts=["127.0.0.1"]) == ["127.0.0.1"]
    with pytest.raises(BlockedAddress):
        check_host("127.0.0.2", 80, allow_hosts=["127.0.0.1"])


def test_a_redirect_from_an_allowed_host_to_a_private_one_is_refused(server: Server) -> None:
    server.add("/secret", b"<p>internal admin panel</p>")
    server.routes["/go"] = (302, {"Location": f"http://localhost:{server.port}/secret"}, b"")
    server.routes["/meta"] = (302, {"Location": "http://169.254.169.254/latest/meta-data/"}, b"")
    server.routes["/file"] = (302, {"Location": "file:///etc/passwd"}, b"")
    allowed = LoadOptions(allow_hosts=("127.0.0.1",))  # 127.0.0.1 stands in for an allowed public host

    with pytest.raises(BlockedAddress, match=r"loopback address .*\(redirected to http://localhost:\d+/secret\)"):
        connectors.load(server.base + "/go", allowed)
    with pytest.raises(BlockedAddress, match="link-local address"):
        connectors.load(server.base + "/meta", allowed)
    with pytest.raises(SourceError, match="refused: redirect to a file URL"):
        connectors.load(server.base + "/file", allowed)
    assert server.requests == ["/go", "/meta", "/file"]  # the private targets were never contacted


def test_a_host_that_resolves_privately_at_connect_time_is_refused(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DNS rebinding: the name looks public when checked, then points at loopback when connecting."""
    real = socket.getaddrinfo
    answers = iter(["93.184.215.14", "127.0.0.1"])

    def rebinding(host: str, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "rebind.test":
            return real(next(answers), port, *args, **kwargs)
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    server.add("/policy", PAGE)

    with pytest.raises(BlockedAddress, match=r"rebind\.test resolves to 127\.0\.0\.1, which is a loopback address"):
        connectors.load(f"http://rebind.test:{server.port}/policy")
    assert server.requests == []


def test_size_limit_by_declared_length_and_while_streaming(server: Server) -> None:
    body = b"<p>" + b"word " * 60_000 + b"</p>"  # 300 KB
    declared = server.add("/big", body)
    streamed = server.add("/big-chunked", body, **{"x-chunked": "1"})
    small = LoadOptions(allow_private=True, max_file_bytes=100_000)

    with pytest.raises(SourceError, match=r"over the 97.7 KB limit \(293 KB declared\)"):
        connectors.load(declared, small)
    with pytest.raises(SourceError, match=r"over the 97.7 KB limit \(download stopped\)"):
        connectors.load(streamed, small)
    assert connectors.load(streamed, PRIVATE).size == len(body)


def test_a_server_that_never_answers_times_out() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)  # accepts the connection in the kernel, never replies
    try:
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/"
        with pytest.raises(SourceError, match=r"timed out after 0.3 s"):
            connectors.load(url, LoadOptions(allow_private=True, timeout=0.3))
    finally:
        listener.close()


def test_discover_passes_urls_through() -> None:
    assert list(connectors.discover(["https://example.org/a.pdf", "http://example.org/"])) == [
        "https://example.org/a.pdf",
        "http://example.org/",
    ]


# --- through the index and the CLI ----------------------------------------------------------------------------


def test_a_url_is_ingested_into_the_real_index_with_its_metadata(server: Server, make_index: Any) -> None:
    url = server.add("/policy", PAGE)
    index = make_index(web_allow_private=True)

    report = index.ingest([url])
    hits = index.search("refunds paid within 14 days", top_k=1, mode="keyword")

    assert (report.added, report.failed) == (1, [])
    meta = hits[0].metadata
    assert (meta["source"], meta["title"], meta["mime"], meta["heading"]) == (
        url,
        "Refund policy",
        "text/html",
        "Refunds",
    )
    assert meta["size"] == len(PAGE) and len(meta["sha256"]) == 64
    assert index.ingest([url]).unchanged == 1  # same bytes: skipped by content hash


def test_rag_ingest_refuses_loopback_unless_allow_private(server: Server, tmp_path: Path) -> None:
    url = server.add("/policy", PAGE)

    def rag(*args: str) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "rag.cli", "ingest", url, "--json", "--data-dir", str(tmp_path / "d"), *args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=dict(os.environ))

    refused = rag()
    assert refused.returncode == 3, refused.stderr
    assert json.loads(refused.stdout)["failed"] == [
        {"source": url, "error": "refused: 127.0.0.1 is a loopback address (use --allow-private to fetch it)"}
    ]
    allowed = rag("--allow-private")
    assert allowed.returncode == 0, allowed.stderr
    assert json.loads(allowed.stdout)["added"] == 1
