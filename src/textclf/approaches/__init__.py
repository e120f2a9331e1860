"""One module per approach, each with the same small interface:

    fit(ctx, name, out_dir)            -> None   (write what predict needs into out_dir)
    predict(ctx, name, model_dir, split) -> Prediction

`name` is the approach's key under `approaches` in params; its `kind` picks the module.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType

import numpy as np

UNPARSEABLE = -1  # a prediction that maps to no label (generative approaches)

KINDS = {
    "embed_lr": "textclf.approaches.embed_lr",
    "centroid": "textclf.approaches.centroid",
    "label_desc": "textclf.approaches.label_desc",
    "task_specific": "textclf.approaches.task_specific",
    "text2text": "textclf.approaches.text2text",
    "llm": "textclf.approaches.llm",
}


@dataclass
class Prediction:
    pred: np.ndarray  # (n,) label indices, UNPARSEABLE where no label was produced
    scores: np.ndarray | None = None  # (n, n_labels) probabilities or similarities
    score_kind: str = "probability"  # or "similarity"
    info: dict | None = None  # approach-specific, deterministic: merged into metrics/<name>.json
    timings: dict | None = None  # approach-specific, run-dependent: into metrics/timings/


def module_for(kind: str) -> ModuleType:
    if kind not in KINDS:
        raise KeyError(f"unknown approach kind {kind!r}; known kinds: {sorted(KINDS)}")
    return importlib.import_module(KINDS[kind])


def argmax_prediction(scores: np.ndarray, score_kind: str) -> Prediction:
    scores = np.asarray(scores, dtype=np.float64)
    return Prediction(scores.argmax(axis=1).astype(np.int64), scores, score_kind)
