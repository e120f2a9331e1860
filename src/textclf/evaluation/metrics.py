"""Evaluation metrics, written so that the same predictions give the same bytes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

from textclf.core.io import rounded


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
    out: dict[str, Any] = {"rows": int(len(y_true)), "accuracy": rounded(accuracy_score(y_true, y_pred))}
    for avg in ("macro", "weighted"):
        p, r, f, _ = precision_recall_fscore_support(y_true, y_pred, labels=scored_labels(y_true, y_pred, len(labels)),
                                                     average=avg, zero_division=0)
        out[avg] = {"precision": rounded(p), "recall": rounded(r), "f1": rounded(f)}
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=labels, average=None, zero_division=0)
    out["per_class"] = {
        name: {"precision": rounded(p[i]), "recall": rounded(r[i]), "f1": rounded(f[i]), "support": int(s[i])}
        for i, name in enumerate(label_names)
    }
    out["unparseable"] = int((y_pred == unparseable).sum())
    cm_labels = labels + ([unparseable] if out["unparseable"] else [])
    out["confusion_matrix"] = {
        "labels": list(label_names) + (["unparseable"] if out["unparseable"] else []),
        "matrix": confusion_matrix(y_true, y_pred, labels=cm_labels)[: len(labels)].tolist(),
    }
    return out


def scored_labels(gold: Sequence[int], pred: Sequence[int], n_labels: int) -> list[int]:
    """The labels a macro average runs over: those in the gold rows or the predictions, as
    sklearn's f1_score does by default (an unparseable prediction is no label). A label with
    neither has no F1 to average: counting it as 0 would cap TREC's test macro-F1 at 39/47, as 8
    of its 47 types have no test row."""
    seen = set(np.asarray(gold).tolist()) | set(np.asarray(pred).tolist())
    return [c for c in range(n_labels) if c in seen]


def macro_f1(gold: Sequence[int], pred: Sequence[int], n_labels: int) -> float:
    """Macro-F1 over the labels in gold or predictions (a gold label never predicted counts 0),
    rounded as every metric is."""
    return rounded(f1_score(gold, pred, labels=scored_labels(gold, pred, n_labels), average="macro", zero_division=0))
