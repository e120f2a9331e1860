"""Plot data for `dvc plots show/diff` (templates and fields are declared in dvc.yaml):

    plots/confusion/<name>.json  rows {actual, predicted}     template confusion
    plots/macro_f1.json          rows {approach, macro_f1, ci_low, ci_high}  .dvc/plots/interval.json
    plots/roc.json               rows {approach, step, fpr, tpr}             .dvc/plots/overlay.json
    plots/pr.json                rows {approach, step, recall, precision}    .dvc/plots/overlay.json
                                 (every approach with scores in one chart, coloured by approach)

ROC and PR need scores. Each (row, label) decision is ranked by the label's margin: its
score minus the best other label's, so similarity scores (not calibrated per row) rank as
their argmax decides and a margin above 0 is the predicted label. Binary tasks take the
positive (second) label's margin; multi-class tasks pool every (row, label) pair into one
micro-averaged one-vs-rest curve. Approaches without scores get no curve.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score, roc_curve
from sklearn.preprocessing import label_binarize

from textclf.approaches.base import UNPARSEABLE
from textclf.core.io import rounded, write_text_atomic

FIELDS = {  # what each template reads; tests check the files against this
    "confusion": ("actual", "predicted"),
    "macro_f1": ("approach", "macro_f1", "ci_low", "ci_high"),
    "roc": ("fpr", "tpr"),
    "pr": ("recall", "precision"),
}


def confusion_rows(labels: np.ndarray, pred: np.ndarray, label_names: Sequence[str]) -> list[dict[str, str]]:
    name = lambda i: "unparseable" if i == UNPARSEABLE else label_names[i]  # noqa: E731
    return [{"actual": label_names[y], "predicted": name(p)} for y, p in zip(labels.tolist(), pred.tolist())]


def binary_view(labels: np.ndarray, scores: np.ndarray, n_labels: int) -> tuple[np.ndarray, np.ndarray]:
    """(is-positive, margin) pairs: the positive label's for two labels, else every
    (row, label) pair one-vs-rest (micro average)."""
    scores = np.asarray(scores, dtype=np.float64)
    margin = np.empty_like(scores)
    for c in range(n_labels):
        margin[:, c] = scores[:, c] - np.delete(scores, c, axis=1).max(axis=1)
    if n_labels == 2:
        return (labels == 1).astype(int), margin[:, 1]
    return label_binarize(labels, classes=list(range(n_labels))).ravel(), margin.ravel()


def curves(labels: np.ndarray, scores: np.ndarray, n_labels: int) -> dict[str, Any]:
    y, s = binary_view(labels, scores, n_labels)
    if y.min() == y.max():
        raise ValueError("ROC/PR need test rows of both the positive and the negative class")
    fpr, tpr, _ = roc_curve(y, s)
    precision, recall, _ = precision_recall_curve(y, s)
    return {
        "roc": [{"fpr": rounded(a), "tpr": rounded(b)} for a, b in zip(fpr, tpr)],
        "pr": [{"recall": rounded(a), "precision": rounded(b)} for a, b in zip(recall, precision)],
        "roc_auc": rounded(roc_auc_score(y, s)),
        "average_precision": rounded(average_precision_score(y, s)),
    }


def overlay_rows(name: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One approach's curve for the overlaid chart: its name and each point's order along the curve."""
    return [{"approach": name, "step": i, **r} for i, r in enumerate(rows)]


def interval_rows(summary: Mapping[str, Any]) -> list[dict[str, Any]]:
    rows = summary["approaches"]
    return [{"approach": n, "macro_f1": r["macro_f1"], "ci_low": r["macro_f1_ci_low"], "ci_high": r["macro_f1_ci_high"]}
            for n, r in sorted(rows.items(), key=lambda kv: (-kv[1]["macro_f1"], kv[0]))]


def dump(rows: list[dict[str, Any]], path: Path) -> None:
    write_text_atomic(path, "[\n" + ",\n".join(json.dumps(r) for r in rows) + "\n]\n")  # a row a line: readable diffs
