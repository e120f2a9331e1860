"""Evaluation metrics, written so that the same predictions give the same bytes."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

DIGITS = 6


def _r(x: float) -> float:
    return round(float(x), DIGITS)


def classification_metrics(y_true: Sequence[int], y_pred: Sequence[int], label_names: Sequence[str],
                           unparseable: int = -1) -> dict[str, Any]:
    """Accuracy, macro/weighted P/R/F1, per-class P/R/F1/support, confusion matrix.

    A prediction equal to `unparseable` (an approach that produced no label) counts as
    wrong for every class; it is reported separately and never folded into a class."""
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"{len(y_true)} gold labels but {len(y_pred)} predictions")
    labels = list(range(len(label_names)))
    out: dict[str, Any] = {"rows": int(len(y_true)), "accuracy": _r(accuracy_score(y_true, y_pred))}
    for avg in ("macro", "weighted"):
        p, r, f, _ = precision_recall_fscore_support(y_true, y_pred, labels=labels, average=avg, zero_division=0)
        out[avg] = {"precision": _r(p), "recall": _r(r), "f1": _r(f)}
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=labels, average=None, zero_division=0)
    out["per_class"] = {
        name: {"precision": _r(p[i]), "recall": _r(r[i]), "f1": _r(f[i]), "support": int(s[i])}
        for i, name in enumerate(label_names)
    }
    out["unparseable"] = int((y_pred == unparseable).sum())
    cm_labels = labels + ([unparseable] if out["unparseable"] else [])
    out["confusion_matrix"] = {
        "labels": list(label_names) + (["unparseable"] if out["unparseable"] else []),
        "matrix": confusion_matrix(y_true, y_pred, labels=cm_labels)[: len(labels)].tolist(),
    }
    return out


def write_text_atomic(path: Path, text: str) -> None:
    """Write through a temp file in the same folder, then rename: an interrupted or disk-full
    run leaves the old file or the new one, never a truncated one that git would track."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def dump_json(obj: Any, path: Path) -> None:
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")
