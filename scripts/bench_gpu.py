"""The GPU path, measured: embedding, fine-tune (fp32 / bf16 / fp16) and transformer
inference on `cuda` against the CPU of the same machine, through the pipeline's own code
(Embedder, finetune, run_pipeline), on rotten_tomatoes.

    python scripts/bench_gpu.py --minilm DIR --mpnet DIR --data DIR [--out FILE]

--minilm: all-MiniLM-L6-v2 as a sentence-transformers folder (weights may be stored in
          fp16 to travel light: they are upcast to fp32 first).
--mpnet:  all-mpnet-base-v2's folder; without weights (config and tokenizer only) its
          figures are speed only, from seeded random weights of the same architecture.
--data:   a folder with train/validation/test .jsonl (`text`, `label`).

Prints one JSON object per measurement and writes them all to --out. Run it where a GPU
is (docs/engine.md gives the figures of the last run); it refuses to run without one.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

RESULTS: list[dict] = []


def report(**kw) -> None:
    RESULTS.append(kw)
    print(json.dumps(kw), flush=True)


def read_split(folder: Path, split: str) -> tuple[list[str], np.ndarray]:
    rows = [json.loads(line) for line in (folder / f"{split}.jsonl").read_text(encoding="utf-8").split("\n") if line.strip()]
    return [r["text"] for r in rows], np.asarray([int(r["label"]) for r in rows])


def fp32_copy(src: Path, dest: Path, random_init: bool = False) -> Path:
    """A sentence-transformers folder with fp32 weights: upcast, or seeded random weights
    of the architecture when the folder has none."""
    import torch
    from transformers import AutoConfig, AutoModel

    shutil.copytree(src, dest, dirs_exist_ok=True, ignore=shutil.ignore_patterns("*.safetensors", "*.bin", "onnx"))
    if random_init:
        torch.manual_seed(0)
        model = AutoModel.from_config(AutoConfig.from_pretrained(str(src)))
    else:
        model = AutoModel.from_pretrained(str(src), dtype=torch.float32)
    model.float().save_pretrained(str(dest))
    return dest


def sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def bench_embed(name: str, model_dir: Path, texts: list[str], device: str, batch_size: int, weights: str) -> np.ndarray:
    from textclf.runtime.embed import Embedder

    spec = {"name": name, "backend": "torch", "batch_size": batch_size, "max_seq_length": 256, "normalize": True}
    emb = Embedder(model_dir, spec, device)
    emb.encode(texts[:64], progress=False)  # load + warm-up, not timed
    sync()
    start = time.perf_counter()
    vecs = emb.encode(texts, progress=False)
    sync()
    secs = time.perf_counter() - start
    report(what="embed", model=name, weights=weights, device=device, batch_size=batch_size, texts=len(texts),
           seconds=round(secs, 2), texts_per_second=round(len(texts) / secs, 1))
    return vecs


def bench_finetune(name: str, base: Path, data: dict, device: str, precision: str, epochs: int, weights: str,
                   work: Path, extra: dict | None = None) -> None:
    from sklearn.metrics import f1_score

    from textclf.approaches.task_specific.approach import run_pipeline
    from textclf.approaches.task_specific.finetune import finetune
    from textclf.approaches.task_specific.settings import Finetune
    from textclf.core.settings import typed

    out = work / f"ft-{name}-{device}-{precision}"
    settings = typed(Finetune, {"epochs": epochs, "patience": 1, "lr": 5e-5, "head_lr": 1e-2, "batch_size": 32,
                                "seed": 42, "precision": precision, **(extra or {})}, prefix="task_specific.finetune")
    sync()
    start = time.perf_counter()
    rep = finetune(base, data["train"], data["validation"], ["negative", "positive"], settings, 128, out, device,
                   progress=False)
    sync()
    secs = time.perf_counter() - start
    test_texts, test_y = data["test"]
    run_pipeline(out, test_texts[:64], 128, 64, device, progress=False)  # load + warm-up
    sync()
    t0 = time.perf_counter()
    probs, _ = run_pipeline(out, test_texts, 128, 64, device, progress=False)
    sync()
    infer = time.perf_counter() - t0
    report(what="finetune", model=name, weights=weights, device=device, precision=precision, epochs_run=rep["epochs_run"],
           best_epoch=rep["best_epoch"], best_validation_macro_f1=rep["best_validation_macro_f1"],
           test_macro_f1=round(float(f1_score(test_y, probs.argmax(1), average="macro")), 4),
           seconds=round(secs, 1), seconds_per_epoch=round(secs / rep["epochs_run"], 1),
           inference_texts_per_second=round(len(test_texts) / infer, 1))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minilm", type=Path, required=True)
    ap.add_argument("--mpnet", type=Path, required=True)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--out", type=Path, default=Path("bench_gpu.json"))
    ap.add_argument("--cpu-texts", type=int, default=2000, help="texts embedded on the CPU for the comparison")
    ap.add_argument("--skip", nargs="*", default=[], help="parts to skip: embed finetune mpnet_ft")
    ap.add_argument("--device", default="cuda", help="cpu: a dry run of this script on a machine without a GPU")
    ap.add_argument("--limit", type=int, default=None, help="rows per split (dry runs)")
    a = ap.parse_args(argv)

    import torch
    import transformers

    dev = a.device
    if dev == "cuda" and not torch.cuda.is_available():
        sys.exit("no GPU visible to torch: this benchmark measures the cuda path")
    report(what="machine", gpu=torch.cuda.get_device_name(0) if dev == "cuda" else None, cpus=os.cpu_count(),
           torch=torch.__version__, transformers=transformers.__version__, cuda=torch.version.cuda)
    data = {s: read_split(a.data, s) for s in ("train", "validation", "test")}
    if a.limit:
        data = {s: (t[:a.limit], y[:a.limit]) for s, (t, y) in data.items()}
    texts = [t for s in ("train", "validation", "test") for t in data[s][0]]
    work = Path(tempfile.mkdtemp(prefix="bench_gpu_"))
    has_mpnet_weights = any(a.mpnet.glob("*.safetensors"))
    minilm = fp32_copy(a.minilm, work / "minilm")
    mpnet = fp32_copy(a.mpnet, work / "mpnet", random_init=not has_mpnet_weights)
    mpnet_weights = "real" if has_mpnet_weights else "random (speed only)"

    if "embed" not in a.skip:
        # The same texts on both devices: the GPU path must give the CPU's vectors.
        sub = texts[:a.cpu_texts]
        cpu = bench_embed("all-MiniLM-L6-v2", minilm, sub, "cpu", 32, "real")
        gpu = bench_embed("all-MiniLM-L6-v2", minilm, sub, dev, 32, "real")
        report(what="embed_agreement", model="all-MiniLM-L6-v2", texts=len(sub),
               max_abs_difference=float(np.abs(cpu - gpu).max()),
               min_cosine=float((cpu * gpu).sum(1).min()))
        for bs in (32, 128):
            bench_embed("all-MiniLM-L6-v2", minilm, texts, dev, bs, "real")
            bench_embed("all-mpnet-base-v2", mpnet, texts, dev, bs, mpnet_weights)
        bench_embed("all-mpnet-base-v2", mpnet, texts[:a.cpu_texts // 4], "cpu", 32, mpnet_weights)
    if "finetune" not in a.skip:
        for precision in ("fp32", "bf16", "fp16") if dev == "cuda" else ("fp32", "bf16"):
            bench_finetune("all-MiniLM-L6-v2", minilm, data, dev, precision, 3, "real", work)
    if "mpnet_ft" not in a.skip:
        # profile=best's fine-tune (conf/task_specific/mpnet_ft.yaml: lr 3e-5, batch 16): time per epoch.
        bench_finetune("all-mpnet-base-v2", mpnet, data, dev, "bf16", 1, mpnet_weights, work,
                       {"lr": 3e-5, "batch_size": 16})
    a.out.write_text(json.dumps(RESULTS, indent=2) + "\n")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
