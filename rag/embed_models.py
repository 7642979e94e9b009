"""Embedders a user brings: any BERT-style ONNX model in a folder (`onnx:`), or a Sentence Transformers model on disk
(`st:`, through the optional `rag-plugin[sentence-transformers]` extra). Neither ever downloads anything.

    RAG_EMBED_MODEL=onnx:/models/bge-small-en-v1.5 RAG_EMBED_POOLING=cls rag ingest docs/
    RAG_EMBED_MODEL=st:/models/e5-small-v2 rag ingest docs/          # "query: "/"passage: " added for e5

Models trained with instructions or prefixes (e5, bge) lose much of their quality without them, so the prefixes
known for a model family are applied unless settings say otherwise; they are part of the embedder's identity.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rag.embeddings import EmbedderIdentity, LocalOnnxEmbedder, _check_texts, _normalise, onnx_session
from rag.errors import ConfigError, EmbeddingError
from rag.settings import Settings

if TYPE_CHECKING:
    import onnxruntime
    from tokenizers import Tokenizer

BGE_QUERY = "Represent this sentence for searching relevant passages: "
DEFAULT_MAX_TOKENS = 512


def known_prefixes(name: str) -> tuple[str, str]:
    """(query prefix, document prefix) the model family was trained with, from its name; ("", "") if none."""
    low = name.lower()
    if re.search(r"(^|[-_.])e5([-_.]|$)", low):  # e5-small-v2, multilingual-e5-base
        return "query: ", "passage: "
    if "bge" in low and "en" in low and "m3" not in low:
        return BGE_QUERY, ""
    return "", ""


def _prefixes(name: str, settings: Settings | None) -> tuple[str, str]:
    query, document = known_prefixes(name)
    if settings is not None:
        if settings.embed_query_prefix is not None:
            query = settings.embed_query_prefix
        if settings.embed_document_prefix is not None:
            document = settings.embed_document_prefix
    return query, document


def make(kind: str, target: str, settings: Settings) -> Any:
    """Build the `onnx:` or `st:` embedder `settings.embed_model` names."""
    query, document = _prefixes(Path(target).name, settings)
    if kind == "onnx":
        return OnnxFolderEmbedder(
            target,
            pooling=settings.embed_pooling,
            query_prefix=query,
            document_prefix=document,
            max_tokens=settings.embed_max_tokens,
            batch_size=settings.embed_batch_size,
            threads=settings.embed_threads,
        )
    return SentenceTransformerEmbedder(
        target, query_prefix=query, document_prefix=document, batch_size=settings.embed_batch_size
    )


def _sha256_of(paths: Sequence[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        with path.open("rb") as fh:
            for block in iter(lambda fh=fh: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


class OnnxFolderEmbedder(LocalOnnxEmbedder):
    """Any BERT-style ONNX model: a folder with `model.onnx` (or `onnx/model.onnx`) and `tokenizer.json`.

    The graph takes `input_ids`, `attention_mask` (and `token_type_ids` if it wants them) and returns
    `last_hidden_state` (pooled here, 'mean' or 'cls') or an already pooled `sentence_embedding`.
    """

    def __init__(
        self,
        folder: str | Path,
        pooling: str = "mean",
        query_prefix: str = "",
        document_prefix: str = "",
        max_tokens: int = 0,
        batch_size: int = 32,
        threads: int = 0,
    ) -> None:
        super().__init__(batch_size=batch_size, threads=threads)
        self.folder = Path(folder).expanduser()
        if pooling not in ("mean", "cls"):
            raise ConfigError(f"embed_pooling must be 'mean' or 'cls', not {pooling!r}")
        self.POOLING = pooling
        self.model_path = self._find_model()
        self.tokenizer_path = self.folder / "tokenizer.json"
        if not self.tokenizer_path.is_file():
            raise ConfigError(
                f"{self.folder} has no tokenizer.json: export it with the model (a Hugging Face `tokenizers` file)."
            )
        self.MAX_TOKENS = max_tokens or self._tokenizer_limit() or DEFAULT_MAX_TOKENS
        self._prefixes = (query_prefix, document_prefix)
        self._folder_identity: EmbedderIdentity | None = None

    def _find_model(self) -> Path:
        if not self.folder.is_dir():
            raise ConfigError(f"embed_model 'onnx:{self.folder}': no such folder (give the folder of model.onnx).")
        for candidate in (self.folder / "model.onnx", self.folder / "onnx" / "model.onnx"):
            if candidate.is_file():
                return candidate
        found = sorted(self.folder.glob("*.onnx"))
        if len(found) == 1:
            return found[0]
        raise ConfigError(
            f"{self.folder} holds {len(found) or 'no'} .onnx files: name the model model.onnx "
            "(or put it in onnx/model.onnx)."
        )

    def _tokenizer_limit(self) -> int:
        """The truncation length the tokenizer file itself sets (0 when it sets none)."""
        try:
            spec = json.loads(self.tokenizer_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{self.tokenizer_path} is not a readable tokenizer.json: {exc}") from exc
        return int((spec.get("truncation") or {}).get("max_length") or 0)

    @property
    def identity(self) -> EmbedderIdentity:
        """Weights hashed and the dimension read from one probe, both once, on first use."""
        if self._folder_identity is None:
            dimension = int(self._embed_raw(["dimension probe"]).shape[1])
            self._folder_identity = EmbedderIdentity(
                name=f"onnx:{self.folder.resolve().name}",
                variant=f"onnx-{self.POOLING}",
                weights_sha256=_sha256_of([self.model_path, self.tokenizer_path]),
                dimension=dimension,
                max_tokens=self.MAX_TOKENS,
                query_prefix=self._prefixes[0],
                document_prefix=self._prefixes[1],
            )
        return self._folder_identity

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        items = _check_texts(texts)
        prefix = self._prefixes[1]
        return self._embed_raw([prefix + t for t in items] if prefix else items)

    def embed_query(self, text: str) -> np.ndarray:
        return self._embed_raw([self._prefixes[0] + text])[0]

    def _new_tokenizer(self) -> Tokenizer:
        from tokenizers import Tokenizer

        try:
            tokenizer = Tokenizer.from_file(str(self.tokenizer_path))
        except Exception as exc:
            raise EmbeddingError(f"The tokenizer {self.tokenizer_path} cannot be loaded: {exc}") from exc
        tokenizer.enable_truncation(max_length=self.MAX_TOKENS)
        tokenizer.no_padding()
        return tokenizer

    def _new_session(self) -> onnxruntime.InferenceSession:
        try:
            data = self.model_path.read_bytes()
        except OSError as exc:
            raise EmbeddingError(f"The embedding model {self.model_path} cannot be read: {exc}") from exc
        session = onnx_session(data, self.model_path, self.threads)
        outputs = [o.name for o in session.get_outputs()]
        for name in ("last_hidden_state", "token_embeddings", "sentence_embedding"):
            if name in outputs:
                self.OUTPUT = name
                break
        else:
            self.OUTPUT = outputs[0]
        return session


class SentenceTransformerEmbedder:
    """A Sentence Transformers model from a local folder (or the local Hugging Face cache), on the CPU.

    Needs `pip install 'rag-plugin[sentence-transformers]'` (torch: ~1.3 GiB, seconds to import), so the
    default install stays light. Loading is offline: HF_HUB_OFFLINE is set and `local_files_only` is passed.
    """

    def __init__(
        self, name_or_path: str, query_prefix: str = "", document_prefix: str = "", batch_size: int = 32
    ) -> None:
        self.target = name_or_path
        self.batch_size = batch_size
        self._prefixes = (query_prefix, document_prefix)
        self._model: Any = None
        self._identity: EmbedderIdentity | None = None
        _require_sentence_transformers()

    def _load(self) -> Any:
        if self._model is None:
            from sentence_transformers import SentenceTransformer

            from rag.offline import ensure_offline_env

            ensure_offline_env()
            try:
                self._model = SentenceTransformer(self.target, device="cpu", local_files_only=True)
            except Exception as exc:
                raise EmbeddingError(
                    f"Sentence Transformers could not load {self.target!r} from disk ({exc}); give the path of a "
                    "saved model folder (nothing is downloaded)."
                ) from exc
        return self._model

    @property
    def identity(self) -> EmbedderIdentity:
        if self._identity is None:
            model = self._load()
            folder = Path(self.target)
            weights: list[Path] = []
            if folder.is_dir():  # a name found in the local Hugging Face cache has no folder of ours to hash
                weights = sorted(folder.rglob("*.safetensors")) or sorted(folder.rglob("*.bin"))
            self._identity = EmbedderIdentity(
                name=f"st:{folder.name if folder.is_dir() else self.target}",
                variant="sentence-transformers",
                weights_sha256=_sha256_of(weights) if weights else "",
                dimension=_dimension_of(model),
                max_tokens=int(model.max_seq_length or 0),
                query_prefix=self._prefixes[0],
                document_prefix=self._prefixes[1],
            )
        return self._identity

    def _encode(self, items: list[str]) -> np.ndarray:
        if not items:
            return np.empty((0, self.identity.dimension), dtype=np.float32)
        vectors = self._load().encode(items, batch_size=self.batch_size, convert_to_numpy=True, show_progress_bar=False)
        return _normalise(np.asarray(vectors, dtype=np.float32))

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode([self._prefixes[1] + t for t in _check_texts(texts)])

    def embed_query(self, text: str) -> np.ndarray:
        return self._encode([self._prefixes[0] + text])[0]


def _dimension_of(model: Any) -> int:
    # sentence-transformers 6 renamed get_sentence_embedding_dimension (which now warns) to get_embedding_dimension.
    getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    return int(getter())


def _require_sentence_transformers() -> None:
    import importlib.util

    if importlib.util.find_spec("sentence_transformers") is None:
        raise ConfigError(
            "embed_model 'st:…' needs Sentence Transformers, which is an optional extra: "
            "pip install 'rag-plugin[sentence-transformers]' (CPU torch), or use 'onnx:<folder>' with an ONNX export."
        )
