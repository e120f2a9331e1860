"""Benchmark the embed stage against a plain `SentenceTransformer.encode` call.

One run, the same texts and model for every variant, each variant in a fresh
subprocess (so peak RSS is its own):
  plain       SentenceTransformer(path).encode(texts)           (the baseline)
  torch       our Embedder, backend=torch (the default stage)
  onnx        our Embedder, backend=onnx      (fp32 ONNX Runtime)
  onnx-int8   our Embedder, backend=onnx-int8 (dynamic int8 ONNX Runtime)
Prints texts/s, the ratio to the baseline, peak RSS, cosine to the baseline, and the
test macro-F1 of LogisticRegression(random_state=42) trained on each variant's own
train embeddings (so the F1 loss of a faster backend is measured, not assumed).

    python scripts/bench_embed.py                       # mpnet, full train + test
    python scripts/bench_embed.py --embedder minilm --train-rows 2000
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = ("plain", "torch", "onnx", "onnx-int8")


def load_texts(split: str, rows: int | None) -> tuple[list[str], np.ndarray]:
    path = ROOT.parent / "shared/data/rotten_tomatoes" / f"{split}.jsonl"
    data = [json.loads(line) for line in path.open()]
    if rows and rows < len(data):
        # the file is sorted by class: take a seeded sample, not the head
        idx = np.sort(np.random.default_rng(0).choice(len(data), rows, replace=False))
        data = [data[i] for i in idx]
    return [d["text"] for d in data], np.array([d["label"] for d in data])


def child(args) -> None:
    """Embed train+test with one variant; write embeddings and figures to args.out."""
    import yaml

    sys.path.insert(0, str(ROOT / "src"))
    from textclf.runtime.embed import Embedder
    from textclf.runtime.resolve import resolve

    spec = yaml.safe_load((ROOT / "conf/embedder" / f"{args.embedder}.yaml").read_text())
    path, _ = resolve(spec)
    texts = load_texts("train", args.train_rows)[0] + load_texts("test", None)[0]
    if args.variant == "plain":
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(str(path), device="cpu")
        model.encode(texts[:8])  # warm-up, as for the others
        start = time.perf_counter()
        emb = model.encode(texts)
    else:
        emb_model = Embedder(path, {**spec, "backend": args.variant}, "cpu")
        emb_model.encode(texts[:8], progress=False)  # warm-up (and the one-off ONNX export)
        start = time.perf_counter()
        emb = emb_model.encode(texts, progress=False)
    secs = time.perf_counter() - start
    np.save(args.out / f"{args.variant}.npy", emb)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    (args.out / f"{args.variant}.json").write_text(json.dumps({"seconds": secs, "texts": len(texts), "peak_mb": peak_mb}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--embedder", default="mpnet", help="a conf/embedder option")
    ap.add_argument("--train-rows", type=int, default=None, help="sample of train rows (default: all 8,530)")
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    ap.add_argument("--variant", help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.variant:
        return child(args)

    import torch
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score

    y_train = load_texts("train", args.train_rows)[1]
    y_test = load_texts("test", None)[1]
    n_train = len(y_train)
    print(f"embedder={args.embedder} texts={n_train}+{len(y_test)} torch_threads={torch.get_num_threads()} "
          f"cpus={os.cpu_count()}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        for v in args.variants:
            cmd = [sys.executable, __file__, "--variant", v, "--out", str(out), "--embedder", args.embedder]
            if args.train_rows:
                cmd += ["--train-rows", str(args.train_rows)]
            subprocess.run(cmd, check=True)
        rows = []
        base = None
        for v in args.variants:
            fig = json.loads((out / f"{v}.json").read_text())
            emb = np.load(out / f"{v}.npy")
            emb = emb / np.linalg.norm(emb, axis=1, keepdims=True)
            clf = LogisticRegression(random_state=42, max_iter=1000).fit(emb[:n_train], y_train)
            f1 = f1_score(y_test, clf.predict(emb[n_train:]), average="macro")
            tps = fig["texts"] / fig["seconds"]
            if base is None:
                base = (tps, emb, f1)
            cos = float((emb * base[1]).sum(axis=1).mean())
            rows.append((v, tps, tps / base[0], fig["peak_mb"], cos, f1, f1 - base[2]))
    print(f"{'variant':<10} {'texts/s':>8} {'x base':>7} {'peak MB':>8} {'cos':>7} {'macroF1':>8} {'dF1':>8}")
    for v, tps, ratio, mb, cos, f1, d in rows:
        print(f"{v:<10} {tps:8.1f} {ratio:7.2f} {mb:8.0f} {cos:7.4f} {f1:8.4f} {d:+8.4f}")


if __name__ == "__main__":
    main()
