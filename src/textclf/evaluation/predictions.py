"""Writing and reading saved predictions: predictions/<approach>/<split>.jsonl (stage predict@) and
ensembles/<ensemble>/<split>.jsonl (stage ensemble@; kept outside predictions/ because
an ensemble depends on that whole directory).

Each row: {"row", "label", "pred", "pred_name", optional "scores"}."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# PREDICTIONS: stages/predict.py reads it from here
from textclf.core.context import PREDICTIONS, predictions_dir  # noqa: F401
from textclf.core.io import rounded, write_text_atomic


@dataclass
class Saved:
    labels: np.ndarray  # (n,) gold label indices
    pred: np.ndarray  # (n,) predicted indices, -1 = unparseable
    scores: np.ndarray | None  # (n, n_labels) or None when the approach gives no scores


def split_file(name: str, split: str, ensemble: bool = False) -> Path:
    """predictions/<name>/<split>.jsonl, or ensembles/<name>/<split>.jsonl (relative to the root)."""
    return predictions_dir(name, ensemble) / f"{split}.jsonl"


def write(pred: np.ndarray, scores: np.ndarray | None, labels: np.ndarray, label_names: list[str], path: Path) -> None:
    """One row per example; `pred` -1 is an unparseable reply (no label)."""
    lines = []
    for i, (y, p) in enumerate(zip(labels.tolist(), pred.tolist())):
        row = {"row": i, "label": y, "pred": p, "pred_name": "unparseable" if p == -1 else label_names[p]}
        if scores is not None:
            row["scores"] = [rounded(s) for s in scores[i]]
        lines.append(json.dumps(row) + "\n")
    write_text_atomic(path, "".join(lines))


def read(path: Path) -> Saved:
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing")
    labels, pred, scores = [], [], []
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            try:
                row = json.loads(line)
                labels.append(int(row["label"]))
                pred.append(int(row["pred"]))
            except (ValueError, KeyError, TypeError) as exc:
                raise ValueError(f"{path}:{lineno}: not a prediction row ({exc!r})") from None
            scores.append(row.get("scores"))
    have = [s is not None for s in scores]
    if any(have) and not all(have):
        raise ValueError(f"{path}: scores on {sum(have)} of {len(have)} rows; expected all or none")
    return Saved(np.asarray(labels, dtype=np.int64), np.asarray(pred, dtype=np.int64),
                 np.asarray(scores, dtype=np.float64) if have and all(have) else None)
