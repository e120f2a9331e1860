"""An ensemble's inputs: its configured bases checked, and their saved predictions for a split
turned into the meta-classifier's features (evaluation/ensemble.py explains the choice of features).

Features per base: its scores when it saved them, centred per row (log first for
probabilities), else a one-hot of its predicted label (all zeros for an unparseable answer)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from textclf.core.settings import Approach, Ensemble
from textclf.evaluation import predictions

TRAIN_SPLIT = "validation"  # what the meta-classifier learns from
EVAL_SPLIT = "test"


class EnsembleError(ValueError):
    """An ensemble whose configuration or inputs cannot work; the message says what to change."""


@dataclass
class Features:
    x: np.ndarray  # (n, sum of per-base widths)
    labels: np.ndarray
    layout: list[dict[str, Any]]  # per base: name, kind of feature ("scores"/"onehot"), width


def check_bases(name: str, spec: Ensemble, approaches: Mapping[str, Approach]) -> list[str]:
    bases = list(spec.bases)
    if len(bases) < 2:
        raise EnsembleError(f"ensembles.{name}.bases needs two or more approaches, got {bases}")
    if len(set(bases)) != len(bases):
        raise EnsembleError(f"ensembles.{name}.bases lists an approach twice: {bases}")
    unknown = [b for b in bases if b not in approaches]
    if unknown:
        raise EnsembleError(f"ensembles.{name}.bases names {unknown}, not configured under approaches "
                            f"(configured: {sorted(approaches)}); fix the list, e.g. "
                            f"-S 'ensembles.{name}.bases=[{','.join(b for b in bases if b in approaches)}]'")
    if name in approaches:
        raise EnsembleError(f"ensemble {name!r} has the same name as an approach; rename one")
    for b in bases:
        splits = approaches[b].splits
        if splits and TRAIN_SPLIT not in splits:
            raise EnsembleError(
                f"ensemble {name!r}: base {b!r} predicts only {list(splits)}, but the meta-classifier learns from "
                f"its {TRAIN_SPLIT} predictions; set approaches.{b}.splits=[{TRAIN_SPLIT},{EVAL_SPLIT}] "
                f"or drop {b} from ensembles.{name}.bases")
    return bases


def is_probability(scores: np.ndarray) -> bool:
    """Rows in [0, 1] that sum to 1 (to the 6 digits predictions are saved with)."""
    return bool(((scores >= 0) & (scores <= 1)).all() and np.allclose(scores.sum(axis=1), 1, atol=1e-4))


def centred(scores: np.ndarray) -> np.ndarray:
    """Each row minus its mean: log-probabilities (logits up to a constant) or similarities."""
    x = np.log(np.clip(scores, 1e-6, 1)) if is_probability(scores) else np.asarray(scores, dtype=np.float64)
    return x - x.mean(axis=1, keepdims=True)


def base_feature(pred: np.ndarray, scores: np.ndarray | None, n_labels: int) -> tuple[np.ndarray, str]:
    """One base's features and their kind: centred scores, or a one-hot of its labels when it gives none."""
    if scores is not None:
        return centred(scores), "scores"
    feat = np.zeros((len(pred), n_labels))
    ok = pred >= 0
    feat[np.flatnonzero(ok), pred[ok]] = 1.0
    return feat, "onehot"


def base_features(root: Path, name: str, bases: Sequence[str], split: str, n_labels: int,
                  gold: np.ndarray, layout: list[dict[str, Any]] | None = None) -> Features:
    """Stack the bases' saved predictions for one split into a feature matrix. With `layout`
    (from training), each base must give the same kind and width of features as then."""
    cols, out_layout = [], []
    for i, b in enumerate(bases):
        path = root / predictions.split_file(b, split)
        if not path.is_file():
            raise EnsembleError(f"ensemble {name!r}: base {b!r} has no {split} predictions ({path}); "
                                f"run `dvc repro predict@{b}`, and make sure approaches.{b}.splits includes {split}")
        saved = predictions.read(path)
        if not np.array_equal(saved.labels, gold):
            raise EnsembleError(f"ensemble {name!r}: {path} does not hold the current {split} rows "
                                f"({len(saved.labels)} rows vs {len(gold)}); rerun `dvc repro predict@{b}`")
        if saved.scores is not None and saved.scores.shape[1] != n_labels:
            raise EnsembleError(f"{path}: {saved.scores.shape[1]} scores per row for {n_labels} labels")
        feat, kind = base_feature(saved.pred, saved.scores, n_labels)
        if layout is not None and layout[i]["features"] != kind:
            raise EnsembleError(f"ensemble {name!r}: base {b!r} gave {layout[i]['features']} on {TRAIN_SPLIT} but "
                                f"{kind} on {split}; rerun `dvc repro predict@{b}`")
        cols.append(feat)
        out_layout.append({"base": b, "features": kind, "width": int(feat.shape[1])})
    return Features(np.hstack(cols), gold, out_layout)


def read_saved(root: Path, bases: Sequence[str], split: str) -> dict[str, predictions.Saved]:
    """The bases' saved predictions (base_features has checked they exist and match the split)."""
    return {b: predictions.read(root / predictions.split_file(b, split)) for b in bases}
