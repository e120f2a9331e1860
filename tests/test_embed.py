import numpy as np
import pytest

from test_resolve import MINILM
from textclf.core.device import resolve_device
from textclf.core.settings import Backend, typed
from textclf.core.settings import Embedder as EmbedderSettings
from textclf.runtime.embed import Embedder
from textclf.runtime.resolve import resolve

TEXTS = ["a gorgeous, moving film", "tedious and far too long", "the cast is fine", "i hated every minute"]


@pytest.fixture(scope="module")
def minilm_dir(tmp_path_factory):
    """MiniLM resolved into this module's own cache, offline (from its PyPI package), as in
    test_resolve: not the caller's TEXTCLF_CACHE or network, and set for this module only (a bare
    os.environ.setdefault leaked into every later test, and kept a caller's value)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TEXTCLF_CACHE", str(tmp_path_factory.mktemp("cache")))
        mp.setenv("HF_HUB_OFFLINE", "1")
        yield resolve(MINILM)[0]


def test_torch_backend_matches_plain_sentence_transformers(minilm_dir):
    from sentence_transformers import SentenceTransformer

    ours = Embedder(minilm_dir, {**MINILM, "backend": "torch", "batch_size": 2}).encode(TEXTS, progress=False)
    plain = SentenceTransformer(str(minilm_dir), device="cpu").encode(TEXTS, normalize_embeddings=True)
    assert ours.shape == (4, 384) and ours.dtype == np.float32
    np.testing.assert_allclose(ours, plain, atol=1e-5)


@pytest.mark.parametrize("backend,min_cos", [("onnx", 0.9999), ("onnx-int8", 0.95)])
def test_onnx_backends_agree_with_torch(minilm_dir, backend, min_cos):
    ref = Embedder(minilm_dir, {**MINILM, "backend": "torch"}).encode(TEXTS, progress=False)
    got = Embedder(minilm_dir, {**MINILM, "backend": backend, "batch_size": 3}).encode(TEXTS, progress=False)
    cos = (ref * got).sum(axis=1)
    assert cos.min() >= min_cos, cos
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


def test_bad_backend_and_device():
    with pytest.raises(ValueError, match=r"embedder.backend: Invalid value .tensorrt., "
                                         r"expected one of \[auto, torch, onnx, onnx-int8\]"):
        Embedder(".", {"name": "x", "backend": "tensorrt"})
    # Every backend conf/ may name passes the schema as written (onnx-int8 is no identifier).
    assert [typed(EmbedderSettings, {"backend": b.value}).backend for b in Backend] == list(Backend)
    with pytest.raises(ValueError, match="device.name must be cpu, cuda or auto"):
        resolve_device("tpu")
    assert resolve_device("auto") in {"cpu", "cuda"}


@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_texts_past_the_token_limit_are_counted(minilm_dir, backend):
    """Both backends cut at max_seq_length and say how many texts they cut; a 1 MB text embeds."""
    emb = Embedder(minilm_dir, {**MINILM, "backend": backend, "max_seq_length": 16})
    tok, limit = emb.token_limit()
    assert limit == 16
    huge = "a gorgeous, moving film " * 40_000
    texts = TEXTS + [huge, "word " * 14, "word " * 15]  # 14 words + 2 special tokens fit in 16
    assert emb.count_truncated(texts) == 2
    vecs = emb.encode(texts, progress=False)
    assert vecs.shape[0] == len(texts) and np.isfinite(vecs).all()


def test_auto_backend_is_onnx_on_cpu_and_torch_elsewhere(minilm_dir):
    assert Embedder(minilm_dir, {**MINILM, "backend": "auto"}, "cpu").backend is Backend.onnx
    assert Embedder(minilm_dir, {**MINILM, "backend": "auto"}, "cuda").backend is Backend.torch
