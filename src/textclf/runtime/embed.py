"""Sentence embeddings with a choice of backend.

auto      : onnx on the CPU, torch on a GPU (the default: the same vectors to 1e-6,
            2.1x faster than torch on two idle cores, scripts/bench_embed.py).
torch     : sentence-transformers `encode`, the seed's procedure.
onnx      : the same transformer exported once to ONNX Runtime (fp32), pooled here.
onnx-int8 : that export with dynamically quantised int8 weights (ONNX Runtime).

The ONNX exports are cached under the textclf cache, keyed by the weights' sha256.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from collections.abc import Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from textclf.core import settings as schema
from textclf.core.settings import Backend
from textclf.runtime.resolve import cache_root, verify

log = logging.getLogger(__name__)


class Embedder:
    def __init__(self, model_dir: Path, spec: Mapping[str, Any], device: str = "cpu"):
        """`spec`: an `embedder` group as params.yaml has it (the raw dict: the model's identity,
        for the ONNX cache and the Ray workers); its settings are read typed."""
        self.model_dir = Path(model_dir)
        self.spec = spec
        settings = schema.typed(schema.Embedder, spec, prefix="embedder")
        self.backend = settings.backend
        if self.backend is Backend.auto:  # ONNX Runtime here runs on the CPU only
            self.backend = Backend.onnx if device == "cpu" else Backend.torch
        if self.backend is not Backend.torch and device != "cpu":
            raise ValueError(f"embedder.backend={self.backend.value} runs on the CPU only; use backend=torch on {device}")
        self.device = device
        self.batch_size = settings.batch_size
        self.normalize = settings.normalize
        self.max_len = settings.max_seq_length
        self._st = None
        self._ort = None

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any], device: str = "cpu") -> Embedder:
        """The embedder an `embedder` config names, resolved to local files (path, package or hub)."""
        from textclf.runtime.resolve import resolve

        location, _ = resolve(spec)
        return cls(location, spec, device)

    # -- torch / sentence-transformers
    def _sentence_transformer(self):
        if self._st is None:
            from sentence_transformers import SentenceTransformer

            self._st = SentenceTransformer(str(self.model_dir), device=self.device, local_files_only=True)
            if self.max_len:
                self._st.max_seq_length = int(self.max_len)
        return self._st

    # -- ONNX Runtime
    def _pooling(self) -> str:
        if getattr(self, "_pool", None) is None:
            self._pool = self._read_pooling()
        return self._pool

    def _read_pooling(self) -> str:
        cfg = self.model_dir / "1_Pooling" / "config.json"
        if not cfg.is_file():
            return "mean"
        pool = json.loads(cfg.read_text())
        if pool.get("pooling_mode_mean_tokens"):
            return "mean"
        if pool.get("pooling_mode_cls_token"):
            return "cls"
        raise ValueError(f"{self.model_dir}: pooling {pool} is not supported by the ONNX backend; use backend=torch")

    def onnx_path(self) -> Path:
        sha = verify(self.model_dir, self.spec)
        base = cache_root() / "onnx" / f"{self.spec['name']}-{sha[:12]}"
        fp32 = base / "model.onnx"
        int8 = base / "model.int8-ffn-out-fp32.onnx"
        if fp32.is_file() and (self.backend is Backend.onnx or int8.is_file()):
            return fp32 if self.backend is Backend.onnx else int8
        # Parallel experiments (`dvc queue start -j 2`), Ray workers and stages share this cache:
        # one process exports while the others wait for it, then they read its finished file.
        from filelock import FileLock

        base.mkdir(parents=True, exist_ok=True)
        with FileLock(str(base / ".export.lock")):
            if not fp32.is_file():
                export_onnx(self.model_dir, fp32)
            if self.backend is Backend.onnx:
                return fp32
            if not int8.is_file():
                quantize_int8(fp32, int8)
        return int8

    def _session(self):
        if self._ort is None:
            import onnxruntime as ort
            import torch
            from transformers import AutoTokenizer

            opts = ort.SessionOptions()
            opts.intra_op_num_threads = torch.get_num_threads()
            self._ort = (
                ort.InferenceSession(str(self.onnx_path()), opts, providers=["CPUExecutionProvider"]),
                AutoTokenizer.from_pretrained(str(self.model_dir)),
            )
        return self._ort

    def plan(self, texts: Sequence[str]) -> list[np.ndarray]:
        """The model batches, as row indices: longest first, so a batch pads little. The
        torch backend's is sentence-transformers' own order (numpy's default sort), so
        batches run one by one (engine=ray) meet the same padding as one `encode` call."""
        lengths = np.asarray([-len(t) for t in texts])
        order = np.argsort(lengths, kind="stable" if self.backend is not Backend.torch else None)
        return [order[i:i + self.batch_size] for i in range(0, len(texts), self.batch_size)]

    def encode_batch(self, texts: Sequence[str]) -> np.ndarray:
        """Unnormalised float32 vectors of one model batch, in the given order."""
        if self.backend is Backend.torch:
            return np.asarray(self._sentence_transformer().encode(
                list(texts), batch_size=len(texts), show_progress_bar=False, convert_to_numpy=True,
                normalize_embeddings=False), dtype=np.float32)
        session, tok = self._session()
        max_len = int(self.max_len or tok.model_max_length)
        enc = tok(list(texts), padding=True, truncation=True, max_length=max_len, return_tensors="np")
        mask = enc["attention_mask"].astype(np.int64)
        hidden = session.run(None, {"input_ids": enc["input_ids"].astype(np.int64), "attention_mask": mask})[0]
        if self._pooling() == "mean":
            m = mask[..., None].astype(np.float32)
            return (hidden * m).sum(1) / np.clip(m.sum(1), 1e-9, None)
        return hidden[:, 0]

    def token_limit(self):
        """(tokenizer, max tokens per text) of this backend: longer texts are cut to it."""
        if self.backend is Backend.torch:
            st = self._sentence_transformer()
            return st.tokenizer, int(st.max_seq_length)
        _, tok = self._session()
        return tok, int(self.max_len or tok.model_max_length)

    def count_truncated(self, texts: Sequence[str]) -> int:
        from textclf.runtime.tokens import count_truncated

        tok, limit = self.token_limit()
        return count_truncated(tok, texts, limit)

    def encode(self, texts: Sequence[str], progress: bool = True,
               engine: schema.Engine | Mapping[str, Any] | None = None) -> np.ndarray:
        """Vectors of `texts`, in their order. engine=ray runs the same batches on Ray Data
        actors (engine.py): the same vectors, bit for bit on the CPU (tests/test_engine.py)."""
        from textclf.runtime.engine import check_engine, map_batches

        if not texts:
            raise ValueError("nothing to embed")
        if self.backend is Backend.torch and check_engine(engine).name is schema.EngineName.local:
            # The seed's procedure: one sentence-transformers call over every text.
            emb = self._sentence_transformer().encode(
                list(texts), batch_size=self.batch_size, show_progress_bar=progress,
                convert_to_numpy=True, normalize_embeddings=False,
            )
        else:
            emb = map_batches(texts, self.plan(texts), partial(_embed_worker, self.model_dir, dict(self.spec), self.device),
                              engine, self.device, "Embedding", progress)
        emb = emb.astype(np.float32, copy=False)
        if self.normalize:
            emb = emb / np.clip(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12, None)
        return emb


def _embed_worker(model_dir: Path, spec: Mapping[str, Any], device: str):
    """An engine worker: the embedder's batch function. On a Ray worker whose disk lacks
    `model_dir`, the model is resolved there from the spec (same resolver, same sha256)."""
    if not Path(model_dir).is_dir():
        return Embedder.from_spec(spec, device).encode_batch
    return Embedder(model_dir, spec, device).encode_batch


_EMBEDDERS: dict[str, Embedder] = {}
_LAST: dict[str, Any] = {}  # the last texts embedded and their vectors


def embed_texts(ctx, texts: Sequence[str], progress: bool = True) -> np.ndarray:
    """New texts embedded as the `embed` stage embedded the splits: the run's `embedder` params
    (model, backend, batch size, length, normalisation) on its device. One Embedder per setting,
    kept: a notebook calling predict again does not reload the model."""
    key = json.dumps([ctx.params["embedder"], ctx.device], sort_keys=True, default=str)
    if key not in _EMBEDDERS:
        _EMBEDDERS[key] = Embedder.from_spec(ctx.params["embedder"], ctx.device)
    texts = list(texts)
    # An ensemble's embedding bases (embed_lr, centroid, label_desc) ask for the same texts in
    # turn: embed them once.
    if _LAST.get("key") == (key, texts):
        return _LAST["vectors"].copy()
    vectors = _EMBEDDERS[key].encode(texts, progress=progress)
    _LAST.update(key=(key, texts), vectors=vectors)
    return vectors.copy()


def _partial(dest: Path) -> Path:
    """A temp name of this process's own beside `dest`, renamed onto it when complete: a
    shared `.partial.onnx` let two exporting processes write into one file and one of them
    rename the other's half-written export into place."""
    return dest.with_name(f".{dest.stem}.{os.getpid()}.{uuid.uuid4().hex[:8]}.partial.onnx")


def quantize_int8(src: Path, dest: Path) -> None:
    """Dynamic int8 weights, per channel, reduced range (AVX2 without VNNI saturates at
    full range). The feed-forward down-projections stay fp32: their inputs carry the
    large activation outliers, and quantising them cost mpnet most of its fidelity
    (mean cosine to fp32 on 134 reviews: 0.86 with them quantised, 0.99 without)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    keep_fp32 = [n.name for n in onnx.load(str(src), load_external_data=False).graph.node
                 if n.op_type == "MatMul" and "/output/dense/" in n.name and "attention" not in n.name]
    log.info("Quantising %s to int8 (%d feed-forward output MatMuls kept fp32)", src, len(keep_fp32))
    tmp = _partial(dest)
    try:
        quantize_dynamic(src, tmp, weight_type=QuantType.QInt8, per_channel=True, reduce_range=True,
                         nodes_to_exclude=keep_fp32)
        tmp.replace(dest)
    finally:
        tmp.unlink(missing_ok=True)  # a failed run leaves no partial file behind


def export_onnx(model_dir: Path, dest: Path) -> None:
    """Export the transformer (token embeddings) to ONNX with dynamic batch and length."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    log.info("Exporting %s to ONNX at %s", model_dir, dest)
    tok = AutoTokenizer.from_pretrained(str(model_dir))
    model = AutoModel.from_pretrained(str(model_dir)).eval()
    enc = tok(["an example sentence", "another one, a little longer"], padding=True, return_tensors="pt")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = _partial(dest)
    axes = {0: "batch", 1: "tokens"}
    class TokenEmbeddings(torch.nn.Module):
        # Keyword call: models differ in positional order and extra inputs (token_type_ids).
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask):
            return self.inner(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    try:
        with torch.no_grad():
            torch.onnx.export(
                TokenEmbeddings(model), (enc["input_ids"], enc["attention_mask"]), str(tmp),
                input_names=["input_ids", "attention_mask"], output_names=["last_hidden_state"],
                dynamic_axes={"input_ids": axes, "attention_mask": axes, "last_hidden_state": axes},
                opset_version=17, dynamo=False,
            )
        tmp.replace(dest)
    finally:
        tmp.unlink(missing_ok=True)  # a failed export leaves no partial file behind
