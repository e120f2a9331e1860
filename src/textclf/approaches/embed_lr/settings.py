"""embed_lr's settings (the `classifier` group in params.yaml): the LogisticRegression, read typed
by the approach (`ctx.approach_settings(name, Settings)`). A default lives here or in conf/classifier/."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Optional

from omegaconf import MISSING


class ClassWeight(Enum):  # null (the field's default): every training row weighs the same
    balanced = "balanced"  # rows weighted inversely to their class's train count


@dataclass
class Classifier:
    C: float = 1.0
    max_iter: int = 1000
    class_weight: Optional[ClassWeight] = None
    seed: int = MISSING  # conf/ holds it: ${seed}, the run's seed


Settings = Classifier
