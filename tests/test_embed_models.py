"""Models a user brings: a tiny BERT-style ONNX model + tokenizer made here (`onnx:`), and `st:` without its extra."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from rag.embed_models import BGE_QUERY, OnnxFolderEmbedder, known_prefixes
from rag.embeddings import make_embedder
from rag.errors import ConfigError
from rag.settings import load_settings
from tests.tiny_onnx import DIM, VOCAB, build_model_folder, expected


def test_an_onnx_folder_model_embeds_with_its_tokenizer_and_mean_pooling(tmp_path: Path) -> None:
    table = build_model_folder(tmp_path / "tiny-bert")
    emb = make_embedder(load_settings(embed_model=f"onnx:{tmp_path / 'tiny-bert'}", embed_batch_size=2))
    assert isinstance(emb, OnnxFolderEmbedder)
    texts = ["lighthouse keeper lamp", "tax", "filing tax return now", "lamp"]
    v = emb.embed(texts)
    assert v.shape == (4, DIM) and v.dtype == np.float32
    # "now" is not in the vocabulary: it becomes [UNK] and still counts in the mean.
    want = [expected(table, t.replace("now", "[UNK]").split()) for t in texts]
    np.testing.assert_allclose(v, np.stack(want), atol=1e-5)  # padding across batches changes nothing
    np.testing.assert_allclose(emb.embed_query("tax"), want[1], atol=1e-5)

    ident = emb.identity
    assert (ident.name, ident.variant, ident.dimension, ident.max_tokens) == ("onnx:tiny-bert", "onnx-mean", DIM, 512)
    assert len(ident.weights_sha256) == 64 and (ident.query_prefix, ident.document_prefix) == ("", "")


def test_onnx_prefixes_and_cls_pooling_come_from_settings_and_join_the_identity(tmp_path: Path) -> None:
    table = build_model_folder(tmp_path / "m", with_cls=True)
    settings = load_settings(
        embed_model=f"onnx:{tmp_path / 'm'}",
        embed_pooling="cls",
        embed_query_prefix="query: ",
        embed_document_prefix="passage: ",
        embed_max_tokens=3,
    )
    emb = make_embedder(settings)
    # cls pooling takes the first token, which the template makes [CLS] whatever the prefix.
    np.testing.assert_allclose(emb.embed(["lamp"])[0], expected(table, ["[CLS]"], "cls"), atol=1e-5)
    plain = make_embedder(settings.model_copy(update={"embed_pooling": "mean"}))
    # mean over [CLS] passage : (truncated at 3 tokens: "lamp" is cut off)
    np.testing.assert_allclose(plain.embed(["lamp"])[0], expected(table, ["[CLS]", "passage", ":"]), atol=1e-5)
    np.testing.assert_allclose(plain.embed_query("lamp"), expected(table, ["[CLS]", "query", ":"]), atol=1e-5)
    unprefixed = make_embedder(load_settings(embed_model=f"onnx:{tmp_path / 'm'}"))
    keys = {emb.identity.key(), plain.identity.key(), unprefixed.identity.key()}
    assert len(keys) == 3 and "passage: " in plain.identity.key()


def test_known_model_families_get_their_prefixes() -> None:
    assert known_prefixes("e5-small-v2") == ("query: ", "passage: ")
    assert known_prefixes("multilingual-e5-base") == ("query: ", "passage: ")
    assert known_prefixes("bge-small-en-v1.5") == (BGE_QUERY, "")
    assert known_prefixes("all-MiniLM-L6-v2") == ("", "")
    assert known_prefixes("gte-base") == ("", "")


def test_onnx_folder_problems_are_config_errors_that_say_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such folder"):
        make_embedder(load_settings(embed_model=f"onnx:{tmp_path / 'absent'}"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match=r"no \.onnx files"):
        make_embedder(load_settings(embed_model=f"onnx:{tmp_path / 'empty'}"))
    build_model_folder(tmp_path / "notok")
    (tmp_path / "notok" / "tokenizer.json").unlink()
    with pytest.raises(ConfigError, match=r"tokenizer\.json"):
        make_embedder(load_settings(embed_model=f"onnx:{tmp_path / 'notok'}"))


@pytest.mark.skipif(importlib.util.find_spec("sentence_transformers") is not None, reason="the extra is installed here")
def test_st_without_the_extra_says_how_to_install_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        make_embedder(load_settings(embed_model=f"st:{tmp_path}"))
    assert "rag-plugin[sentence-transformers]" in str(info.value)


def test_st_loads_a_saved_model_folder_offline_with_its_prefixes(tmp_path: Path) -> None:
    """Runs where the `sentence-transformers` extra is installed (it needs torch, so not in the default CI)."""
    pytest.importorskip("sentence_transformers")
    import torch
    from sentence_transformers import SentenceTransformer
    from transformers import BertConfig, BertModel, BertTokenizerFast

    hf = tmp_path / "hf"
    hf.mkdir()
    (hf / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *VOCAB[2:]]) + "\n")
    BertTokenizerFast(vocab_file=str(hf / "vocab.txt")).save_pretrained(str(hf))
    torch.manual_seed(0)
    config = BertConfig(vocab_size=16, hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=16)
    BertModel(config).save_pretrained(str(hf))
    try:  # sentence-transformers 6 moved the modules; 3-5 have them in `models`
        from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
    except ImportError:
        from sentence_transformers.models import Pooling, Transformer
    model = SentenceTransformer(modules=[Transformer(str(hf), max_seq_length=32), Pooling(8, "mean")])
    model.save(str(tmp_path / "tiny-e5"))

    emb = make_embedder(load_settings(embed_model=f"st:{tmp_path / 'tiny-e5'}"))
    ident = emb.identity
    assert (ident.name, ident.variant) == ("st:tiny-e5", "sentence-transformers")
    assert (ident.dimension, ident.max_tokens) == (8, 32)
    assert (ident.query_prefix, ident.document_prefix) == ("query: ", "passage: ") and len(ident.weights_sha256) == 64
    want = model.encode(["passage: lighthouse keeper", "query: lamp"], normalize_embeddings=True)
    np.testing.assert_allclose(emb.embed(["lighthouse keeper"])[0], want[0], atol=1e-5)
    np.testing.assert_allclose(emb.embed_query("lamp"), want[1], atol=1e-5)
