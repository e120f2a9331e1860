"""The fine-tune behind task_specific's `finetune` mode (part of the task_specific package:
its edits rerun that approach only).

Fine-tune an encoder with a sequence-classification head: a short, seeded torch loop
(AdamW, linear warmup/decay, dynamic padding, length-grouped batches), the checkpoint
with the best validation macro-F1 kept and saved in Hugging Face format.

A plain loop rather than `Trainer`: it needs no `accelerate`, and every source of
randomness (head init, dropout, batch order) is one seeded generator away.

Given a dvclive `Live` (the fit@ stage's, metrics/train/<name>/), each epoch's train loss
and validation macro-F1 go to it too, step = epoch, the same rounded values as the
returned history (no timestamps: the files are byte-identical across identical runs).
"""

from __future__ import annotations

import json
import logging
import random
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
from sklearn.metrics import f1_score
from tqdm.auto import tqdm

log = logging.getLogger(__name__)

# epochs is a ceiling: with `patience`, training stops after that many epochs without a
# better validation macro-F1. head_lr: the new classification head's learning rate (null: lr).
# precision: fp32, or mixed precision (autocast) in bf16 (CPU or GPU) or fp16 (GPU, loss scaled).
DEFAULTS = {"epochs": 3, "patience": None, "lr": 5e-5, "head_lr": None, "batch_size": 32, "max_length": 128,
            "warmup_ratio": 0.1, "weight_decay": 0.01, "eval_batch_size": 128, "seed": 42, "precision": "fp32"}
PRECISIONS = ("fp32", "bf16", "fp16")


def autocast(precision: str, device: str):
    """The forward passes' autocast context for `precision` (a no-op for fp32)."""
    import contextlib

    import torch

    if precision not in PRECISIONS:
        raise ValueError(f"fine-tune precision must be one of {PRECISIONS}, not {precision!r}")
    if precision == "fp16" and device != "cuda":
        raise ValueError("fine-tune precision=fp16 needs device=cuda; on the CPU use bf16 or fp32")
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device, dtype=torch.bfloat16 if precision == "bf16" else torch.float16)


def length_grouped_batches(lengths: Sequence[int], batch_size: int, rng: np.random.Generator,
                           group: int = 50) -> list[np.ndarray]:
    """Shuffled batches of similar-length rows: shuffle, sort within windows of
    `group` batches by length, cut into batches, shuffle the batches. Less padding,
    still a random order each epoch."""
    order = rng.permutation(len(lengths))
    window = batch_size * group
    batches = []
    for start in range(0, len(order), window):
        chunk = order[start:start + window]
        chunk = chunk[np.argsort([-lengths[i] for i in chunk], kind="stable")]
        batches += [chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def sorted_batches(lengths: Sequence[int], batch_size: int) -> list[np.ndarray]:
    """Inference batches, longest first (order does not matter there)."""
    order = np.argsort([-n for n in lengths], kind="stable")
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]


def param_groups(model, c: Mapping[str, Any], head: set[str] = frozenset()) -> list[dict[str, Any]]:
    """AdamW groups: no weight decay on biases and norms; the head (parameters the base
    checkpoint lacks) at head_lr when set. A fresh head over many classes learns slowly at
    an encoder's lr (hwu64, 64 intents: see the README)."""
    no_decay = ("bias", "LayerNorm.weight", "layer_norm.weight")
    groups: dict[tuple[bool, bool], list] = {}
    for n, p in model.named_parameters():
        groups.setdefault((n in head and c.get("head_lr") is not None, n.endswith(no_decay)), []).append(p)
    out = []
    for (is_head, plain), params in sorted(groups.items(), key=lambda kv: kv[0]):
        g = {"params": params, "weight_decay": 0.0 if plain else float(c["weight_decay"])}
        if is_head:
            g["lr"] = float(c["head_lr"])
        out.append(g)
    return out


def seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _collate(tok, enc: Mapping[str, list], idx: np.ndarray, device: str):
    feats = [{k: enc[k][i] for k in ("input_ids", "attention_mask")} for i in idx]
    return {k: v.to(device) for k, v in tok.pad(feats, return_tensors="pt").items()}


def predict_logits(model, tok, enc: Mapping[str, list], batch_size: int, device: str,
                   precision: str = "fp32") -> np.ndarray:
    import torch

    model.eval()
    lengths = [len(x) for x in enc["input_ids"]]
    out = np.zeros((len(lengths), model.config.num_labels), dtype=np.float32)
    with torch.no_grad(), autocast(precision, device):
        for idx in sorted_batches(lengths, batch_size):
            out[idx] = model(**_collate(tok, enc, idx, device)).logits.float().cpu().numpy()
    return out


def finetune(base_dir: Path, train: tuple[list[str], np.ndarray], validation: tuple[list[str], np.ndarray],
             label_names: list[str], cfg: Mapping[str, Any], out_dir: Path, device: str = "cpu",
             progress: bool = True, live=None) -> dict[str, Any]:
    """Train a classification head (and the encoder) on `train`, evaluate on
    `validation` after each epoch, save the best epoch's model + tokenizer to
    `out_dir`. Returns the training history (no timings: it is deterministic), which
    also goes, epoch by epoch, to `live` (a dvclive Live) when one is given."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, get_linear_schedule_with_warmup

    unknown = sorted(set(cfg) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"unknown fine-tune settings {unknown}; known: {sorted(DEFAULTS)}")
    c = {**DEFAULTS, **{k: v for k, v in cfg.items() if v is not None}}
    if int(c["epochs"]) < 1:
        raise ValueError(f"fine-tune epochs must be >= 1, got {c['epochs']}")
    if c["patience"] is not None and int(c["patience"]) < 1:
        raise ValueError(f"fine-tune patience must be >= 1 or null (no early stopping), got {c['patience']}")
    precision = str(c["precision"])
    autocast(precision, device)  # checks the setting before any work
    seed_everything(int(c["seed"]))
    tok = AutoTokenizer.from_pretrained(str(base_dir))
    model, loading = AutoModelForSequenceClassification.from_pretrained(
        str(base_dir), num_labels=len(label_names), id2label=dict(enumerate(label_names)),
        label2id={n: i for i, n in enumerate(label_names)}, problem_type="single_label_classification",
        ignore_mismatched_sizes=True,  # a base that already has a head (other labels) gets a new one
        output_loading_info=True,
    )
    model.to(device)
    # The head: what the checkpoint did not have (or had in another size).
    head = set(loading["missing_keys"]) | {k[0] if isinstance(k, tuple) else k for k in loading["mismatched_keys"]}

    def encode(texts):
        return tok(list(texts), truncation=True, max_length=int(c["max_length"]))

    train_enc, val_enc = encode(train[0]), encode(validation[0])
    from textclf.runtime.tokens import count_truncated

    truncated = {"train": count_truncated(tok, train[0], int(c["max_length"])),
                 "validation": count_truncated(tok, validation[0], int(c["max_length"]))}
    if any(truncated.values()):
        log.warning("Texts longer than max_length=%s tokens, trained and validated on their start: %s",
                    c["max_length"], truncated)
    y_train = torch.as_tensor(np.asarray(train[1]), dtype=torch.long)
    lengths = [len(x) for x in train_enc["input_ids"]]
    rng = np.random.default_rng(int(c["seed"]))
    steps_per_epoch = -(-len(lengths) // int(c["batch_size"]))
    total = steps_per_epoch * int(c["epochs"])
    opt = torch.optim.AdamW(param_groups(model, c, head), lr=float(c["lr"]))
    sched = get_linear_schedule_with_warmup(opt, int(float(c["warmup_ratio"]) * total), total)

    # fp16 gradients underflow without loss scaling; for fp32/bf16 the scaler is a pass-through.
    scaler = torch.amp.GradScaler(device, enabled=precision == "fp16")
    history: list[dict[str, Any]] = []
    best_f1, best_state, stopped_early = -1.0, None, False
    bar = tqdm(total=total, desc="Fine-tuning", disable=not progress)
    for epoch in range(1, int(c["epochs"]) + 1):
        model.train()
        loss_sum = 0.0
        for idx in length_grouped_batches(lengths, int(c["batch_size"]), rng):
            with autocast(precision, device):
                out = model(**_collate(tok, train_enc, idx, device), labels=y_train[idx].to(device))
            scaler.scale(out.loss).backward()
            scaler.unscale_(opt)
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            scaler.step(opt)
            scaler.update()
            sched.step()
            opt.zero_grad(set_to_none=True)
            loss = out.loss.item()
            loss_sum += loss * len(idx)
            bar.update(1)
            bar.set_postfix(epoch=epoch, loss=f"{loss:.3f}")
        val_pred = predict_logits(model, tok, val_enc, int(c["eval_batch_size"]), device, precision).argmax(1)
        f1 = float(f1_score(validation[1], val_pred, average="macro"))
        history.append({"epoch": epoch, "train_loss": round(loss_sum / len(lengths), 6), "validation_macro_f1": round(f1, 6)})
        log.info("epoch %d: train loss %.4f, validation macro-F1 %.4f", epoch, loss_sum / len(lengths), f1)
        if live is not None:
            live.step = epoch  # the curves' x is the epoch, as in the history
            for key in ("train_loss", "validation_macro_f1"):
                live.log_metric(key, history[-1][key])
            live.next_step()  # writes this epoch's summary: the curves grow while training runs
        if f1 > best_f1:  # ties keep the earlier epoch
            best_f1, best_state = f1, {k: v.detach().clone() for k, v in model.state_dict().items()}
        since_best = epoch - max(history, key=lambda h: (h["validation_macro_f1"], -h["epoch"]))["epoch"]
        if c["patience"] is not None and since_best >= int(c["patience"]) and epoch < int(c["epochs"]):
            log.info("Stopping early after epoch %d: no better validation macro-F1 for %d epoch(s)", epoch, since_best)
            stopped_early = True
            break
    bar.close()
    assert best_state is not None
    model.load_state_dict(best_state)
    best_epoch = max(history, key=lambda h: (h["validation_macro_f1"], -h["epoch"]))["epoch"]
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out_dir))
    tok.save_pretrained(str(out_dir))
    report = {"settings": c, "history": history, "best_epoch": best_epoch,
              "best_validation_macro_f1": round(best_f1, 6), "epochs_run": len(history),
              "stopped_early": stopped_early, "truncated_rows": truncated}
    if live is not None:  # the kept epoch, beside the last one's values (written when the log ends)
        live.summary.update(best_epoch=best_epoch, best_validation_macro_f1=report["best_validation_macro_f1"],
                            epochs_run=len(history), stopped_early=stopped_early)
    (out_dir / "finetune.json").write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    return report
