"""embed_lr's settings (the `classifier` group in params.yaml): the LogisticRegression."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Dict, List, Optional

class ClassWeight(Enum):
    balanced = "balanced"


@dataclass
class Classifier:
    C: float = 1.0
    max_iter: int = 1000
    class_weight: Optional[ClassWeight] = None
    seed: int = 0


Settings = Classifier
