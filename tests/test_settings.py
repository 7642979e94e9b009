"""Settings: defaults ← rag.toml ← environment ← explicit overrides; secrets never printed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag.cli import main
from rag.errors import ConfigError
from rag.settings import load_settings


def test_defaults_match_the_documented_interface(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RAG_DATA_DIR")
    s = load_settings()
    assert s.data_dir == Path("rag-data") and s.collection == "default" and s.embed_model == "local"
    assert s.llm_model == "gpt-4o-mini" and s.chroma_url is None and not s.llm_configured


def test_precedence_file_then_env_then_overrides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "rag.toml").write_text('collection = "from-file"\ntop_k = 9\nllm_model = "file-model"\n')
    assert load_settings().collection == "from-file"
    monkeypatch.setenv("RAG_COLLECTION", "from-env")
    s = load_settings()
    assert (s.collection, s.top_k, s.llm_model) == ("from-env", 9, "file-model")
    assert load_settings(collection="from-flag").collection == "from-flag"


def test_openai_variables_are_read_without_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret-value")
    s = load_settings()
    assert s.openai_base_url == "http://127.0.0.1:9/v1" and s.llm_configured
    assert s.openai_api_key is not None and s.openai_api_key.get_secret_value() == "sk-secret-value"


def test_invalid_values_raise_config_error_naming_the_field(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_TOP_K", "many")
    with pytest.raises(ConfigError, match="top_k"):
        load_settings()
    monkeypatch.delenv("RAG_TOP_K")
    with pytest.raises(ConfigError, match="chunk_overlap"):
        load_settings(chunk_size=50, chunk_overlap=50)


def test_a_missing_explicit_config_file_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_CONFIG", "/nonexistent/rag.toml")
    with pytest.raises(ConfigError, match="RAG_CONFIG"):
        load_settings()


def test_rag_config_masks_secrets(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-do-not-print")
    monkeypatch.setenv("RAG_API_TOKEN", "token-do-not-print")
    monkeypatch.setenv("RAG_LLM_MODEL", "my-model")
    assert main(["config", "--json"]) == 0
    out = capsys.readouterr().out
    assert "do-not-print" not in out
    values = json.loads(out)
    assert values["openai_api_key"] == "***" and values["api_token"] == "***" and values["llm_model"] == "my-model"
    assert main(["config"]) == 0
    assert "do-not-print" not in capsys.readouterr().out


def test_importing_rag_reads_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings are built by a function call, never at import: a broken environment cannot break `import rag`."""
    import importlib
    import sys

    monkeypatch.setenv("RAG_TOP_K", "not-a-number")
    for name in [m for m in sys.modules if m == "rag" or m.startswith("rag.")]:
        monkeypatch.delitem(sys.modules, name)
    rag = importlib.import_module("rag")
    assert hasattr(rag, "open_index")
    with pytest.raises(rag.ConfigError):
        rag.load_settings()
