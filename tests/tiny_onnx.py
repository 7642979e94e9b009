"""A tiny BERT-style ONNX model folder made on the spot: `model.onnx` (a masked embedding lookup, output
`last_hidden_state`) and a WordLevel `tokenizer.json`, for testing `onnx:<folder>` embedders without any download."""

from __future__ import annotations

from pathlib import Path

import numpy as np

VOCAB = ["[UNK]", "[CLS]", "query", "passage", ":", "lighthouse", "keeper", "lamp", "tax", "return", "filing"]
DIM = 6


def build_model_folder(folder: Path, with_cls: bool = False) -> np.ndarray:
    """model.onnx (Gather of an embedding table, masked) + a WordLevel tokenizer.json; returns the table."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    from tokenizers import Tokenizer, models, pre_tokenizers, processors

    folder.mkdir(parents=True, exist_ok=True)
    table = np.random.default_rng(3).standard_normal((len(VOCAB), DIM)).astype(np.float32)
    nodes = [
        helper.make_node("Gather", ["table", "input_ids"], ["tokens"], axis=0),
        helper.make_node("Cast", ["attention_mask"], ["mask_f"], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["mask_f", "last_axis"], ["mask_3d"]),
        helper.make_node("Mul", ["tokens", "mask_3d"], ["last_hidden_state"]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny-bert",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "seq"]),
        ],
        [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, ["batch", "seq", DIM])],
        initializer=[
            numpy_helper.from_array(table, "table"),
            numpy_helper.from_array(np.array([2], dtype=np.int64), "last_axis"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(folder / "model.onnx"))

    tokenizer = Tokenizer(models.WordLevel({w: i for i, w in enumerate(VOCAB)}, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    if with_cls:
        tokenizer.post_processor = processors.TemplateProcessing(single="[CLS] $A", special_tokens=[("[CLS]", 1)])
    tokenizer.save(str(folder / "tokenizer.json"))
    return table


def expected(table: np.ndarray, words: list[str], how: str = "mean") -> np.ndarray:
    rows = table[[VOCAB.index(w) if w in VOCAB else 0 for w in words]]
    v = rows[0] if how == "cls" else rows.mean(axis=0)
    return v / np.linalg.norm(v)
