"""Run the real `rag serve` app (uvicorn) in a thread on 127.0.0.1, port 0, for tests."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx

from rag.api import make_server

TOKEN = "test-token-0123456789"


class ApiServer:
    """`with ApiServer(index) as api:` — `api.base` is the URL, `api.client()` an authorised httpx client."""

    def __init__(self, index: Any) -> None:
        self.index = index
        self.server = make_server(index, "127.0.0.1", 0, log_level="warning")
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ApiServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the API server did not start")
            time.sleep(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.base = f"http://127.0.0.1:{port}"
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

    def client(self, token: str | None = TOKEN, **kwargs: Any) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.base, headers=headers, timeout=120, **kwargs)
