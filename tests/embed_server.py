"""A real OpenAI-compatible `/v1/embeddings` server on 127.0.0.1 (port 0) for the tests of API embedders."""

from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np


def fake_vector(text: str, dim: int) -> list[float]:
    """Deterministic, text-dependent and deliberately not unit length (the embedder must normalise)."""
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
    return (np.random.default_rng(seed).standard_normal(dim) * 3.0).tolist()


def unit(v: list[float]) -> np.ndarray:
    a = np.asarray(v, dtype=np.float32)
    return a / np.linalg.norm(a)


class EmbeddingServer:
    """A real HTTP server on 127.0.0.1 speaking POST /v1/embeddings; answers rows in reverse `index` order."""

    def __init__(self, dim: int = 8) -> None:
        self.dim = dim
        self.status = 200
        self.fail_next: list[int] = []  # statuses to answer, one per request, before behaving normally
        self.requests: list[dict[str, Any]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                outer.requests.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
                headers = {}
                if outer.fail_next:
                    code = outer.fail_next.pop(0)
                    reply = {"error": {"message": "slow down", "type": "rate_limit"}}
                    headers["retry-after-ms"] = "5"  # the client must wait this long, not its default backoff
                elif outer.status != 200:
                    code, reply = outer.status, {"error": {"message": "embedding backend crashed", "type": "server"}}
                elif self.path != "/v1/embeddings":
                    code, reply = 404, {"error": {"message": f"no route {self.path}"}}
                else:
                    inputs = body["input"]
                    dim = body.get("dimensions") or outer.dim
                    data = [
                        {"object": "embedding", "index": i, "embedding": fake_vector(t, dim)}
                        for i, t in enumerate(inputs)
                    ]
                    code = 200
                    reply = {
                        "object": "list",
                        "data": data[::-1],  # out of order on purpose: the client must sort by index
                        "model": body["model"],
                        "usage": {"prompt_tokens": 1, "total_tokens": 1},
                    }
                raw = json.dumps(reply).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(raw)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> EmbeddingServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
