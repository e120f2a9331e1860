"""Files the tests write as a stage would: JSONL rows, and prediction files through the
pipeline's own writer (so a change to the prediction format reaches the tests' fakes)."""

import json
from pathlib import Path

import numpy as np

from textclf.evaluation import predictions


def write_jsonl(path: Path, rows) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def read_jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as fh:  # not splitlines(): texts may hold U+2028
        return [json.loads(line) for line in fh]


def write_predictions(path: Path, labels, pred, scores=None, label_names: list[str] | None = None) -> Path:
    """A saved prediction file (predictions/<name>/<split>.jsonl or ensembles/...) written by
    `predictions.write`; label_names default to the indices as strings ("0", "1", ...)."""
    labels, pred = np.asarray(labels, dtype=np.int64), np.asarray(pred, dtype=np.int64)
    scores = None if scores is None else np.asarray(scores, dtype=np.float64)
    if label_names is None:
        n = max(int(labels.max()), int(pred.max())) + 1 if len(labels) else 0
        label_names = [str(i) for i in range(max(n, 0 if scores is None else scores.shape[1]))]
    path.parent.mkdir(parents=True, exist_ok=True)
    predictions.write(pred, scores, labels, label_names, path)
    return path
