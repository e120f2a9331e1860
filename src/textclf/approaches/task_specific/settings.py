"""task_specific's settings (the `task_specific` group in params.yaml): types, allowed values and
defaults, read typed by the approach (`ctx.approach_settings(name, Settings)`). A default lives
here or in conf/task_specific/, not in the code (and where both say one, they agree)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Dict, List, Optional

from omegaconf import MISSING

from textclf.core.settings import Embedder, ModelSpec


class Precision(Enum):  # the fine-tune's forward passes: fp32, or autocast to bf16 / fp16 (GPU, loss scaled)
    auto = "auto"  # the fastest the hardware runs natively (precision.py), recorded in finetune.json
    fp32 = "fp32"
    bf16 = "bf16"
    fp16 = "fp16"


@dataclass
class Labels:
    map: Optional[Dict[str, str]] = None
    ignore: List[str] = field(default_factory=list)


@dataclass
class Finetune:
    epochs: int = 3  # a ceiling: see patience
    patience: Optional[int] = 1  # stop after this many epochs without a better validation macro-F1; null: never
    lr: float = 5e-5
    head_lr: Optional[float] = 1e-2  # the new classification head's learning rate; null: lr
    batch_size: int = 32
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    eval_batch_size: int = 128
    seed: int = MISSING  # conf/ holds it: ${seed}, the run's seed
    precision: Precision = Precision.auto
    # Fine-tune on a seeded, class-stratified sample of this many train rows (null: all): the
    # cost of a large model in a time budget (the benchmark's profile=best), the other approaches
    # still learning from the whole split. Recorded in models/<name>/finetune.json.
    max_train_rows: Optional[int] = None


class TaskSpecificMode(Enum):
    finetune = "finetune"
    pretrained = "pretrained"


@dataclass
class TaskSpecific:
    mode: TaskSpecificMode = TaskSpecificMode.finetune
    base: Optional[Embedder] = None
    model: Optional[ModelSpec] = None
    labels: Labels = field(default_factory=Labels)
    max_length: int = 128
    batch_size: int = 64
    finetune: Optional[Finetune] = None


Settings = TaskSpecific
