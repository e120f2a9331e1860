"""The stack's meta-classifier: StandardScaler + LogisticRegression with C picked by an inner
cross-validated grid search scored over all labels, its fold plan (adapted to the smallest
validation class) and its out-of-fold validation estimate."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score, log_loss
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from textclf.core.settings import Ensemble, Scoring
from textclf.evaluation.ensemble_inputs import TRAIN_SPLIT, EnsembleError, Features


@dataclass(frozen=True)
class AllLabelsScorer:
    """A CV score computed over ALL labels: with many classes a fold can lack a class (in y or
    in the fitted model's classes_), and a scorer that infers the labels from the fold scores on
    the wrong label set (sklearn's "y_true and y_prob contain different number of classes"
    warning). Greater is better, as GridSearchCV expects. A class (not a closure): the fitted
    GridSearchCV, which keeps its scorer, is saved with joblib."""
    scoring: Scoring
    n_labels: int

    def __call__(self, model: Any, x: np.ndarray, y: np.ndarray) -> float:
        labels = list(range(self.n_labels))
        if self.scoring is Scoring.neg_log_loss:
            return -float(log_loss(y, full_proba(model, x, self.n_labels), labels=labels))
        return float(f1_score(y, model.predict(x), labels=labels, average="macro", zero_division=0))


def build(spec: Ensemble, seed: int, n_labels: int, inner_folds: int) -> GridSearchCV:
    """Scaler + LogisticRegression, C chosen from spec.Cs by stratified `inner_folds`-fold CV
    (refit on all rows); `inner_folds` from fold_plan."""
    folds = StratifiedKFold(inner_folds, shuffle=True, random_state=seed)
    pipe = make_pipeline(
        StandardScaler(),  # similarities and probabilities live on different scales
        LogisticRegression(max_iter=spec.max_iter, random_state=seed),
    )
    return GridSearchCV(pipe, {"logisticregression__C": [float(c) for c in spec.Cs]}, cv=folds,
                        scoring=AllLabelsScorer(spec.scoring, n_labels),
                        error_score="raise")  # a failing fit must stop the stage, not score NaN


def chosen_c(model: GridSearchCV) -> float:
    return float(model.best_params_["logisticregression__C"])


def fold_plan(name: str, labels: np.ndarray, n_labels: int, folds: int) -> dict[str, int]:
    """How many folds the nested CV can use on these labels: outer = min(configured, smallest
    class), so every outer test fold holds every class; inner (the C search, run on an outer
    training part) = min(configured, smallest class in an outer training part), so every inner
    fold does too. StratifiedKFold spreads a class of m rows over k folds as evenly as it can, so
    an outer training part holds at least m - ceil(m / outer) of them (m=3: 3 outer, 2 inner)."""
    counts = np.bincount(labels, minlength=n_labels)
    smallest = int(counts.min())
    outer = min(folds, smallest)
    inner = min(folds, smallest - -(-smallest // outer)) if outer >= 2 else 0
    if outer < 2 or inner < 2:
        rare = [i for i in np.argsort(counts, kind="stable")[:5] if counts[i] < 3]
        raise EnsembleError(
            f"ensemble {name!r}: the {TRAIN_SPLIT} split has {smallest} rows of its smallest class "
            f"(label indices {[int(i) for i in rare]} have fewer than 3); the nested cross-validation needs 3 or "
            f"more per class (2 outer folds, each training part with 2 rows for a 2-fold C search). Use a larger "
            f"{TRAIN_SPLIT} split (e.g. data.limits.validation, or more validation rows per class), or drop the "
            f"ensemble: -S '~ensemble@ensembles.{name}'")
    return {"configured": int(folds), "smallest_class": smallest, "outer": int(outer), "inner": int(inner)}


def out_of_fold(model: GridSearchCV, feats: Features, outer_folds: int, seed: int) -> np.ndarray:
    """Validation probabilities from models that never saw the row they score (nested:
    the inner CV that picks C runs inside each outer training fold)."""
    folds = StratifiedKFold(outer_folds, shuffle=True, random_state=seed + 1)
    return cross_val_predict(model, feats.x, feats.labels, cv=folds, method="predict_proba")


def full_proba(model: GridSearchCV, x: np.ndarray, n_labels: int) -> np.ndarray:
    """predict_proba with one column per label, also when a label was absent from training."""
    proba = np.zeros((len(x), n_labels))
    proba[:, model.classes_] = model.predict_proba(x)
    return proba
