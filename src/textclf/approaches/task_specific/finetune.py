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
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import f1_score
from tqdm.auto import tqdm

from textclf.approaches.task_specific.precision import Choice, autocast, choose
from textclf.approaches.task_specific.settings import Finetune, Precision

log = logging.getLogger(__name__)



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


def param_groups(model, settings: Finetune, head: set[str] = frozenset()) -> list[dict[str, Any]]:
    """AdamW groups: no weight decay on biases and norms; the head (parameters the base
    checkpoint lacks) at head_lr when set. A fresh head over many classes learns slowly at
    an encoder's lr (hwu64, 64 intents: see the README)."""
    no_decay = ("bias", "LayerNorm.weight", "layer_norm.weight")
    groups: dict[tuple[bool, bool], list] = {}
    for n, p in model.named_parameters():
        groups.setdefault((n in head and settings.head_lr is not None, n.endswith(no_decay)), []).append(p)
    out = []
    for (is_head, plain), params in sorted(groups.items(), key=lambda kv: kv[0]):
        g = {"params": params, "weight_decay": 0.0 if plain else settings.weight_decay}
        if is_head:
            g["lr"] = settings.head_lr
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
                   precision: Precision = Precision.fp32) -> np.ndarray:
    import torch

    model.eval()
    lengths = [len(x) for x in enc["input_ids"]]
    out = np.zeros((len(lengths), model.config.num_labels), dtype=np.float32)
    with torch.no_grad(), autocast(precision, device):
        for idx in sorted_batches(lengths, batch_size):
            out[idx] = model(**_collate(tok, enc, idx, device)).logits.float().cpu().numpy()
    return out


def check(settings: Finetune) -> None:
    """Ranges the schema's types cannot say."""
    if settings.epochs < 1:
        raise ValueError(f"fine-tune epochs must be >= 1, got {settings.epochs}")
    if settings.patience is not None and settings.patience < 1:
        raise ValueError(f"fine-tune patience must be >= 1 or null (no early stopping), got {settings.patience}")


def record(settings: Finetune, max_length: int) -> dict[str, Any]:
    """The settings as finetune.json records them (plain JSON values)."""
    return {**asdict(settings), "precision": settings.precision.value, "max_length": max_length}


def load_base(base_dir: Path, label_names: list[str], device: str):
    """Tokenizer, model with a head for `label_names`, and the head's parameter names: what
    the checkpoint did not have (or had in another size)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(base_dir))
    model, loading = AutoModelForSequenceClassification.from_pretrained(
        str(base_dir), num_labels=len(label_names), id2label=dict(enumerate(label_names)),
        label2id={n: i for i, n in enumerate(label_names)}, problem_type="single_label_classification",
        ignore_mismatched_sizes=True,  # a base that already has a head (other labels) gets a new one
        output_loading_info=True,
    )
    model.to(device)
    head = set(loading["missing_keys"]) | {k[0] if isinstance(k, tuple) else k for k in loading["mismatched_keys"]}
    return tok, model, head


@dataclass
class Optimiser:
    """AdamW with linear warmup/decay, gradient clipping and (fp16) loss scaling: one step per batch."""
    model: Any
    opt: Any
    sched: Any
    scaler: Any

    @classmethod
    def build(cls, model, settings: Finetune, head: set[str], total: int, device: str, precision: Precision) -> Optimiser:
        import torch
        from transformers import get_linear_schedule_with_warmup

        opt = torch.optim.AdamW(param_groups(model, settings, head), lr=settings.lr)
        sched = get_linear_schedule_with_warmup(opt, int(settings.warmup_ratio * total), total)
        # fp16 gradients underflow without loss scaling; for fp32/bf16 the scaler is a pass-through.
        scaler = torch.amp.GradScaler(device, enabled=precision is Precision.fp16)
        return cls(model, opt, sched, scaler)

    def step(self, loss) -> None:
        import torch

        self.scaler.scale(loss).backward()
        self.scaler.unscale_(self.opt)
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.scaler.step(self.opt)
        self.scaler.update()
        self.sched.step()
        self.opt.zero_grad(set_to_none=True)


def train_epoch(model, tok, enc: Mapping[str, list], labels, batches: list[np.ndarray], optimiser: Optimiser,
                precision: Precision, device: str, bar, epoch: int) -> float:
    """One pass over `batches`; returns the summed (per-row) training loss."""
    model.train()
    loss_sum = 0.0
    for idx in batches:
        with autocast(precision, device):
            out = model(**_collate(tok, enc, idx, device), labels=labels[idx].to(device))
        optimiser.step(out.loss)
        loss = out.loss.item()
        loss_sum += loss * len(idx)
        bar.update(1)
        bar.set_postfix(epoch=epoch, loss=f"{loss:.3f}")
    return loss_sum


def evaluate(model, tok, enc: Mapping[str, list], gold, settings: Finetune, device: str, precision: Precision) -> float:
    """Validation macro-F1, unrounded (the best epoch is chosen on it)."""
    pred = predict_logits(model, tok, enc, settings.eval_batch_size, device, precision).argmax(1)
    return float(f1_score(gold, pred, average="macro"))


def best_epoch(history: list[dict[str, Any]]) -> int:
    """The epoch with the best rounded validation macro-F1, the earlier one on a tie."""
    return max(history, key=lambda h: (h["validation_macro_f1"], -h["epoch"]))["epoch"]


@dataclass
class EarlyStopping:
    """Keeps the weights of the best validation epoch (ties keep the earlier one) and says when
    `patience` epochs have passed without a better one (never before the last epoch; null: never)."""
    patience: int | None
    epochs: int
    best_f1: float = -1.0
    best_state: dict | None = None
    stopped_early: bool = False

    def update(self, model, f1: float, history: list[dict[str, Any]]) -> bool:
        """Record epoch `history[-1]` (its unrounded F1 `f1`); True when training should stop."""
        epoch = history[-1]["epoch"]
        if f1 > self.best_f1:
            self.best_f1, self.best_state = f1, {k: v.detach().clone() for k, v in model.state_dict().items()}
        since_best = epoch - best_epoch(history)
        if self.patience is not None and since_best >= self.patience and epoch < self.epochs:
            log.info("Stopping early after epoch %d: no better validation macro-F1 for %d epoch(s)", epoch, since_best)
            self.stopped_early = True
        return self.stopped_early


def log_epoch(live, entry: dict[str, Any]) -> None:
    """One epoch's row in the dvclive log: x is the epoch, as in the history."""
    live.step = entry["epoch"]
    for key in ("train_loss", "validation_macro_f1"):
        live.log_metric(key, entry[key])
    live.next_step()  # writes this epoch's summary: the curves grow while training runs


def finetune(base_dir: Path, train: tuple[list[str], np.ndarray], validation: tuple[list[str], np.ndarray],
             label_names: list[str], settings: Finetune, max_length: int, out_dir: Path, device: str = "cpu",
             progress: bool = True, live=None) -> dict[str, Any]:
    """Train a classification head (and the encoder) on `train`, evaluate on
    `validation` after each epoch, save the best epoch's model + tokenizer to
    `out_dir`. Returns the training history (no timings: it is deterministic), which
    also goes, epoch by epoch, to `live` (a dvclive Live) when one is given."""
    import torch

    from textclf.runtime.tokens import count_truncated

    check(settings)
    choice = choose(settings.precision, device)  # auto resolved, and checked before any work
    log.info("Fine-tune precision: %s (%s)", choice.used.value, choice.reason)
    seed_everything(settings.seed)  # before the model load: the new head's init draws from it
    tok, model, head = load_base(base_dir, label_names, device)
    train_enc, val_enc = (tok(list(texts), truncation=True, max_length=max_length) for texts in (train[0], validation[0]))
    truncated = {"train": count_truncated(tok, train[0], max_length),
                 "validation": count_truncated(tok, validation[0], max_length)}
    if any(truncated.values()):
        log.warning("Texts longer than max_length=%s tokens, trained and validated on their start: %s",
                    max_length, truncated)
    y_train = torch.as_tensor(np.asarray(train[1]), dtype=torch.long)
    lengths = [len(x) for x in train_enc["input_ids"]]
    rng = np.random.default_rng(settings.seed)
    total = -(-len(lengths) // settings.batch_size) * settings.epochs
    optimiser = Optimiser.build(model, settings, head, total, device, choice.used)
    history: list[dict[str, Any]] = []
    stopping = EarlyStopping(settings.patience, settings.epochs)
    bar = tqdm(total=total, desc="Fine-tuning", disable=not progress)
    for epoch in range(1, settings.epochs + 1):
        batches = length_grouped_batches(lengths, settings.batch_size, rng)
        loss_sum = train_epoch(model, tok, train_enc, y_train, batches, optimiser, choice.used, device, bar, epoch)
        f1 = evaluate(model, tok, val_enc, validation[1], settings, device, choice.used)
        history.append({"epoch": epoch, "train_loss": round(loss_sum / len(lengths), 6), "validation_macro_f1": round(f1, 6)})
        log.info("epoch %d: train loss %.4f, validation macro-F1 %.4f", epoch, loss_sum / len(lengths), f1)
        if live is not None:
            log_epoch(live, history[-1])
        if stopping.update(model, f1, history):
            break
    bar.close()
    report = {"settings": record(settings, max_length), "train_rows": len(train[0]), "history": history,
              "truncated_rows": truncated}
    return save(model, tok, out_dir, stopping, report, choice, live)


def save(model, tok, out_dir: Path, stopping: EarlyStopping, report: dict[str, Any], choice: Choice,
         live=None) -> dict[str, Any]:
    """The best epoch's model and tokenizer, and finetune.json (the report completed with the pick)."""
    assert stopping.best_state is not None
    model.load_state_dict(stopping.best_state)
    history = report["history"]
    report = {**report, "best_epoch": best_epoch(history), "best_validation_macro_f1": round(stopping.best_f1, 6),
              "epochs_run": len(history), "stopped_early": stopping.stopped_early, "precision": choice.record()}
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out_dir))
    tok.save_pretrained(str(out_dir))
    if live is not None:  # the kept epoch, beside the last one's values (written when the log ends)
        live.summary.update(best_epoch=report["best_epoch"], best_validation_macro_f1=report["best_validation_macro_f1"],
                            epochs_run=len(history), stopped_early=stopping.stopped_early,
                            precision=choice.used.value)
    (out_dir / "finetune.json").write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    return report
