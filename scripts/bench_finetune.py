"""Benchmark the task_specific fine-tune: the committed path (precision fp32) against the new
default (precision auto), and the levers around it, in one run on one machine.

Every variant trains the pipeline's own model code (finetune.load_base, Optimiser, train_epoch)
from the same seed on the same batches: rotten_tomatoes train, cut by the fine-tune's own
length-grouped batcher. Each variant runs STEPS optimiser steps after WARMUP untimed ones: 60
steps are 1,920 MiniLM texts (23% of an epoch), enough for a stable rate (per-step times vary
with batch length, and the batches are the same for every variant), at a fraction of a full
epoch's 5-9 minutes (MiniLM) or 25+ minutes (mpnet) per variant. Variants alternate
(old, new, old, new) so that a change of machine load hits both.

Figures per variant: training texts/s, and the time split into forward, backward and optimiser
(clipping + AdamW + schedule), i.e. where a step's time goes.

Levers (MiniLM, ratios against the committed path measured in the same run):
  fused      torch.optim.AdamW(fused=True): one kernel for the update of all parameters
  frozen_emb the word-embedding matrix (30,522 x 384, half of MiniLM's weights) not trained
  threads1   torch.set_num_threads(1) (is the second core used well?)
and bf16 autocast when the CPU runs it natively (the `auto` choice there).

f1_delta: when auto resolves to fp32 (a CPU without native bf16) the new default trains the same
bytes as the old path (tests/test_transformers.py asserts it), so the delta is 0 by construction
and no full fine-tune is repeated; otherwise both full default fine-tunes run and their test
macro-F1 is compared.

    python scripts/bench_finetune.py                     # writes results/bench/finetune.json
    python scripts/bench_finetune.py --steps 20 --no-mpnet
    python scripts/bench_finetune.py --profile results/bench/finetune_profile.json   # where a step's time goes
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from textclf.approaches.task_specific import finetune as ft  # noqa: E402
from textclf.approaches.task_specific import precision as prec  # noqa: E402
from textclf.approaches.task_specific.settings import Finetune, Precision  # noqa: E402
from textclf.core.settings import typed  # noqa: E402
from textclf.runtime.resolve import resolve  # noqa: E402

DATA = ROOT.parent / "shared/data/rotten_tomatoes"


def load(split: str) -> tuple[list[str], np.ndarray]:
    rows = [json.loads(line) for line in (DATA / f"{split}.jsonl").open()]
    return [r["text"] for r in rows], np.array([r["label"] for r in rows])


def settings_for(conf_name: str, precision: str) -> tuple[Finetune, dict]:
    """The fine-tune settings and base model spec of conf/task_specific/<conf_name>.yaml."""
    import yaml

    own = yaml.safe_load((ROOT / f"conf/task_specific/{conf_name}.yaml").read_text())
    base = yaml.safe_load((ROOT / "conf/task_specific/minilm_ft.yaml").read_text())
    merged = {**base["finetune"], **(own.get("finetune") or {}), "seed": 42, "precision": precision}
    embedder = "mpnet" if conf_name == "mpnet_ft" else "minilm"
    spec = yaml.safe_load((ROOT / f"conf/embedder/{embedder}.yaml").read_text())
    return typed(Finetune, merged), spec


def run_steps(base_dir: Path, settings: Finetune, used: Precision, steps: int, warmup: int,
              lever: str = "") -> dict:
    import torch

    texts, labels = load("train")
    ft.seed_everything(settings.seed)
    tok, model, head = ft.load_base(base_dir, ["negative", "positive"], "cpu")
    if lever == "frozen_emb":
        model.base_model.embeddings.word_embeddings.weight.requires_grad_(False)
    enc = tok(texts, truncation=True, max_length=128)
    lengths = [len(x) for x in enc["input_ids"]]
    batches = ft.length_grouped_batches(lengths, settings.batch_size, np.random.default_rng(settings.seed))
    batches = batches[:warmup + steps]
    total = -(-len(lengths) // settings.batch_size) * settings.epochs
    optimiser = ft.Optimiser.build(model, settings, head, total, "cpu", used)
    if lever == "fused":
        groups = [{k: v for k, v in g.items() if k != "initial_lr"} for g in optimiser.opt.param_groups]
        optimiser.opt = torch.optim.AdamW(groups, lr=settings.lr, fused=True)
    threads = torch.get_num_threads()
    if lever == "threads1":
        torch.set_num_threads(1)
    y = torch.as_tensor(labels, dtype=torch.long)
    model.train()
    parts = {"forward": 0.0, "backward": 0.0, "optimiser": 0.0}
    rows, start = 0, 0.0
    try:
        for i, idx in enumerate(batches):
            if i == warmup:
                parts = dict.fromkeys(parts, 0.0)
                rows, start = 0, time.perf_counter()
            t0 = time.perf_counter()
            with prec.autocast(used, "cpu"):
                out = model(**ft._collate(tok, enc, idx, "cpu"), labels=y[idx])
            t1 = time.perf_counter()
            optimiser.scaler.scale(out.loss).backward()
            t2 = time.perf_counter()
            optimiser.scaler.unscale_(optimiser.opt)
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimiser.scaler.step(optimiser.opt)
            optimiser.scaler.update()
            optimiser.opt.zero_grad(set_to_none=True)  # (the lr schedule's scalar update is left out)
            t3 = time.perf_counter()
            parts["forward"] += t1 - t0
            parts["backward"] += t2 - t1
            parts["optimiser"] += t3 - t2
            rows += len(idx)
    finally:
        torch.set_num_threads(threads)
    wall = time.perf_counter() - start
    return {"texts_per_second": round(rows / wall, 2), "seconds": round(wall, 2), "rows": rows,
            "share": {k: round(v / wall, 3) for k, v in parts.items()}, "load_avg_after": round(os.getloadavg()[0], 2)}


def compare(conf_name: str, steps: int, warmup: int, levers: list[str]) -> dict:
    old, spec = settings_for(conf_name, "fp32")
    new, _ = settings_for(conf_name, "auto")
    base_dir, _ = resolve(spec)
    choice = prec.choose(new.precision, "cpu")
    runs: dict[str, list[dict]] = {"old": [], "new": []}
    for _ in range(2):  # alternate, so a change of load hits both
        runs["old"].append(run_steps(base_dir, old, Precision.fp32, steps, warmup))
        runs["new"].append(run_steps(base_dir, new, choice.used, steps, warmup))
        print(conf_name, {k: v[-1]["texts_per_second"] for k, v in runs.items()}, flush=True)
    rate = {k: float(np.mean([r["texts_per_second"] for r in v])) for k, v in runs.items()}
    out = {"conf": conf_name, "precision_new": choice.record(), "old": runs["old"], "new": runs["new"],
           "speedup": round(rate["new"] / rate["old"], 3)}
    lever_runs = {}
    for lever in levers:
        r = run_steps(base_dir, old, Precision.fp32, steps, warmup, lever)
        lever_runs[lever] = {**r, "ratio_to_old": round(r["texts_per_second"] / rate["old"], 3)}
        print(conf_name, lever, lever_runs[lever]["ratio_to_old"], flush=True)
    out["levers"] = lever_runs
    return out


OP_GROUPS = {  # aten op name prefixes -> what they are, for the profile of a step
    "matmul (mm, addmm, bmm)": ("aten::mm", "aten::addmm", "aten::bmm"),
    "attention (sdpa, softmax)": ("aten::_scaled_dot_product", "aten::scaled_dot_product", "aten::_softmax"),
    "elementwise (AdamW update, residuals, scaling)": ("aten::mul", "aten::add", "aten::div", "aten::sqrt",
                                                       "aten::lerp", "aten::addcmul", "aten::addcdiv", "aten::sum"),
    "copies": ("aten::copy_",),
    "dropout": ("aten::bernoulli_", "aten::native_dropout"),
    "layer norm, gelu": ("aten::native_layer_norm", "aten::gelu"),
    "embedding": ("aten::embedding",),
}


def profile_steps(steps: int = 20, warmup: int = 5) -> dict:
    """torch.profiler over `steps` MiniLM steps of the committed path: where a step's time goes, by
    phase (data, forward, backward, optimiser) and by kind of op (self CPU time)."""
    import torch
    from torch.profiler import ProfilerActivity, profile, record_function

    settings, spec = settings_for("minilm_ft", "fp32")
    base_dir, _ = resolve(spec)
    texts, labels = load("train")
    ft.seed_everything(settings.seed)
    tok, model, head = ft.load_base(base_dir, ["negative", "positive"], "cpu")
    enc = tok(texts, truncation=True, max_length=128)
    lengths = [len(x) for x in enc["input_ids"]]
    batches = ft.length_grouped_batches(lengths, settings.batch_size, np.random.default_rng(settings.seed))
    optimiser = ft.Optimiser.build(model, settings, head, len(batches), "cpu", Precision.fp32)
    y = torch.as_tensor(labels, dtype=torch.long)
    model.train()
    for idx in batches[:warmup]:
        optimiser.step(model(**ft._collate(tok, enc, idx, "cpu"), labels=y[idx]).loss)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for idx in batches[warmup:warmup + steps]:
            with record_function("data"):
                feats = ft._collate(tok, enc, idx, "cpu")
            with record_function("forward"):
                out = model(**feats, labels=y[idx])
            with record_function("backward"):
                out.loss.backward()
            with record_function("optimiser"):
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimiser.opt.step()
                optimiser.opt.zero_grad(set_to_none=True)
    events = prof.key_averages()
    phases = {e.key: e.cpu_time_total for e in events if e.key in ("data", "forward", "backward", "optimiser")}
    ops = [e for e in events if e.key.startswith("aten::")]
    total = sum(e.self_cpu_time_total for e in ops)
    groups: dict[str, float] = {}
    for e in ops:
        name = next((g for g, prefixes in OP_GROUPS.items() if e.key.startswith(prefixes)), "other")
        groups[name] = groups.get(name, 0) + e.self_cpu_time_total
    return {"steps": steps, "phase_share": {k: round(v / sum(phases.values()), 3) for k, v in sorted(phases.items())},
            "op_share": {k: round(v / total, 3) for k, v in sorted(groups.items(), key=lambda kv: -kv[1])},
            "top_ops": {e.key: round(e.self_cpu_time_total / total, 3)
                        for e in sorted(ops, key=lambda e: -e.self_cpu_time_total)[:10]},
            "load_avg": [round(x, 2) for x in os.getloadavg()]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--no-mpnet", action="store_true")
    ap.add_argument("--out", type=Path, default=ROOT / "results/bench/finetune.json")
    ap.add_argument("--profile", type=Path, help="only profile 20 steps (torch.profiler) and write this JSON")
    args = ap.parse_args()
    if args.profile:
        args.profile.parent.mkdir(parents=True, exist_ok=True)
        args.profile.write_text(json.dumps(profile_steps(), indent=2, sort_keys=True) + "\n")
        print(args.profile.read_text())
        return
    load_before = [round(x, 2) for x in os.getloadavg()]
    started = time.time()
    minilm = compare("minilm_ft", args.steps, args.warmup, ["fused", "frozen_emb", "threads1"])
    mpnet = None if args.no_mpnet else compare("mpnet_ft", max(args.steps // 3, 10), 2, [])
    same_path = minilm["precision_new"]["used"] == "fp32"
    if not same_path:
        raise SystemExit("auto resolves to bf16 here: run the two full default fine-tunes "
                         "(make repro with task_specific.finetune.precision=fp32 and =auto) and compare their "
                         "metrics/task_specific.json; this script measures speed only on such a CPU")
    flags = prec.cpu_flags()
    result = {
        "speedup": minilm["speedup"], "speedup_mpnet": mpnet and mpnet["speedup"],
        # auto chose fp32 here: the same path as the committed one, byte-identical weights (tested).
        "f1_delta": 0.0, "f1_delta_mpnet": 0.0 if mpnet else None, "same_path_as_old": same_path,
        "speedup_note": "auto chose fp32: old and new run the same code, so speedup is the run-to-run spread "
                        "of identical runs, not a gain",
        "precision_new": minilm["precision_new"],
        "cpu_flags": sorted(f for f in flags if f.startswith(("avx", "amx", "fma", "sse4"))),
        "cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
        "load_avg": {"before": load_before, "after": [round(x, 2) for x in os.getloadavg()]},
        "wall_seconds": round(time.time() - started, 1), "steps": args.steps, "warmup_steps": args.warmup,
        "minilm": minilm, "mpnet": mpnet,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    print(json.dumps({k: result[k] for k in ("speedup", "speedup_mpnet", "f1_delta", "precision_new", "load_avg")}, indent=2))
    print({k: v["ratio_to_old"] for k, v in minilm["levers"].items()}, "shares (old):", minilm["old"][0]["share"])


if __name__ == "__main__":
    main()
