"""Texts per second of `textclf predict` (new texts, embedded on the spot) against the pipeline's
own predict path for the same approach (stage predict@: the `embed` stage's vectors, then the
classifier), on the same test texts, in one process after a warm-up.

    PYTHONPATH=src python scripts/bench_predict.py --repo . --approach embed_lr   # 1,066 test texts

The pipeline's path is timed as `embed` (data/embeddings' texts/s, metrics/timings/embed.json,
re-measured here on the test split) plus the classifier on the cached vectors: both embed every
text once, so the two should be about equal. Report the load average beside the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import textclf
from textclf.approaches.base import module_for
from textclf.core.context import Context, load_params
from textclf.runtime.embed import embed_texts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repo", default=".")
    ap.add_argument("--approach", default="embed_lr")
    ap.add_argument("--limit", type=int, default=None, help="first N test texts (default: all)")
    args = ap.parse_args()
    root = Path(args.repo).resolve()
    ctx = Context(root, load_params(root))
    texts = ctx.split("test").texts[: args.limit]
    clf = textclf.load(args.approach, root)
    clf.predict(texts[:32])  # warm-up: model load, ONNX session
    module = module_for(ctx.approach(args.approach)["kind"])

    start = time.perf_counter()
    embed_texts(clf.ctx, texts, progress=False)  # what the `embed` stage does for these texts
    module.predict(clf.ctx, args.approach, clf.ctx.model_dir(args.approach), "test")  # predict@ on its vectors
    pipeline = time.perf_counter() - start

    start = time.perf_counter()
    clf.predict(texts)
    api = time.perf_counter() - start

    # The command itself, start-up and model loading included (what a user waits for).
    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp) / "texts.jsonl", Path(tmp) / "out.jsonl"
        src.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts), encoding="utf-8")
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "textclf.serving.cli", "predict", "--repo", str(root), "-a", args.approach,
                        "--input", str(src), "--output", str(out), "--no-progress"], check=True,
                       env={**os.environ, "PYTHONPATH": str(Path(textclf.__file__).parents[1])})
        cli = time.perf_counter() - start
    n = len(texts)
    print(f"{args.approach}, {n} texts, load average {os.getloadavg()[0]:.2f}:")
    print(f"  pipeline predict path (embed + predict@): {n / pipeline:8.1f} texts/s")
    print(f"  textclf.load(...).predict (warm):          {n / api:8.1f} texts/s")
    print(f"  textclf predict (command, cold start):     {n / cli:8.1f} texts/s")


if __name__ == "__main__":
    main()
