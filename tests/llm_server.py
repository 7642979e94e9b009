"""A real OpenAI-compatible chat server on 127.0.0.1 for tests: records every request and answers from the
numbered context it receives, so a test can check both what the pipeline sent and what it did with the reply."""

from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def default_reply(messages: list[dict[str, Any]]) -> str:
    """Quote the first line of context block [1] and cite it; a follow-up rewrite request gets its last message."""
    text = "\n".join(str(m.get("content", "")) for m in messages)
    if str(messages[0].get("content", "")).startswith("Rewrite the user's last message"):
        return text.rsplit("Last message:", 1)[-1].strip()
    match = re.search(r"\[1\] source: [^\n]*\n([^\n]+)", text)
    quote = match.group(1).strip() if match else "nothing"
    return f"From the documents: {quote} [1]."


class LLMServer:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.reply = default_reply
        self.status = 200
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send_json(self, code: int, obj: Any) -> None:
                body = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                outer.requests.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
                if outer.status != 200:
                    return self._send_json(outer.status, {"error": {"message": "test server says no"}})
                if not self.path.endswith("/chat/completions"):
                    return self._send_json(404, {"error": {"message": "not here"}})
                answer = outer.reply(body.get("messages", []))
                base = {"id": "chatcmpl-test", "created": int(time.time()), "model": body.get("model")}
                if not body.get("stream"):
                    return self._send_json(
                        200,
                        {
                            **base,
                            "object": "chat.completion",
                            "choices": [
                                {
                                    "index": 0,
                                    "finish_reason": "stop",
                                    "message": {"role": "assistant", "content": answer},
                                }
                            ],
                            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                        },
                    )
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                pieces = re.findall(r"\S+\s*", answer)
                for i, piece in enumerate(pieces):
                    delta = {"role": "assistant", "content": piece} if i == 0 else {"content": piece}
                    chunk = {
                        **base,
                        "object": "chat.completion.chunk",
                        "choices": [{"index": 0, "delta": delta, "finish_reason": None}],
                    }
                    self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                    self.wfile.flush()
                end = {
                    **base,
                    "object": "chat.completion.chunk",
                    "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                }
                self.wfile.write(f"data: {json.dumps(end)}\n\ndata: [DONE]\n\n".encode())

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def chat_requests(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["path"].endswith("/chat/completions")]
