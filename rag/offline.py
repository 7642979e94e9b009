"""Make the stack's libraries behave offline before they are first used.

Each variable closes a known outbound call of a dependency (measured in shared/design/RECIPES.md):
tiktoken downloads its encodings unless pointed at the copies inside llama-index-core; Chroma and Gradio send
telemetry/analytics by default; huggingface_hub tries the hub unless told it is offline.
Called by `open_index()` and the CLI, never at import time, and only sets what the user has not set.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

_done = False


def tiktoken_cache_dir() -> Path | None:
    """The tiktoken cache shipped inside llama-index-core (cl100k_base, o200k_base), found without importing it."""
    spec = importlib.util.find_spec("llama_index.core")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "_static" / "tiktoken_cache"
        if candidate.is_dir():
            return candidate
    return None


def ensure_offline_env() -> None:
    """Set the environment so that no dependency reaches out on its own. Idempotent."""
    global _done
    if _done:
        return
    cache = tiktoken_cache_dir()
    if cache is not None:
        os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(cache))
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    _done = True
