"""The HTTP API (`rag serve`): the retrieval plugin's routes and an OpenAI-compatible chat, over `rag.Index`.

from rag.api import create_app, make_server
make_server(rag.open_index(), host="127.0.0.1", port=8000).run()
"""

from rag.api.app import create_app, make_server

__all__ = ["create_app", "make_server"]
