"""Stacking: a regularised meta-classifier over base approaches' saved predictions.

The meta-classifier (StandardScaler + LogisticRegression, C picked by an inner
cross-validated grid search, log-loss by default) is trained on the VALIDATION split's base scores only; test
is never seen in training. Its honest validation estimate comes from out-of-fold
predictions (cross_val_predict over the same validation rows), and the final model is
refitted on all validation rows and applied to test. The numbers of outer and inner folds adapt
to the smallest validation class (fold_plan).

The ensemble then predicts test with whichever of the stack, the best base and a plain average
of the bases scores highest on VALIDATION (fit_and_choose), so it is never worse there than its
best base: with few validation rows per class the meta-classifier can lose to it.

Here: the candidates and the choice. The bases' features: ensemble_inputs.py; the
meta-classifier and its folds: ensemble_model.py.

Features per base: its scores when it saved them, centred per row (log first for
probabilities), else a one-hot of its predicted label (all zeros for an unparseable answer),
so approaches without scores (e.g. an LLM's bare answer) can still be stacked. Centring
keeps what the base's argmax sees (how much one label beats the others) and drops the
per-row offset of similarity scores, which the meta-classifier would otherwise have to learn
from the few validation rows (it raised out-of-fold validation macro-F1 0.772 -> 0.782 with
MiniLM bases on rotten_tomatoes).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.model_selection import GridSearchCV

from textclf.core.io import rounded
from textclf.core.settings import Candidate, Ensemble
from textclf.evaluation.ensemble_inputs import (
    EVAL_SPLIT,
    TRAIN_SPLIT,
    EnsembleError,
    Features,
    base_feature,
    base_features,
    read_saved,
)
from textclf.evaluation.ensemble_model import build, fold_plan, full_proba, out_of_fold
from textclf.evaluation.metrics import macro_f1

log = logging.getLogger(__name__)

# ------------------------------------------------ never worse than the best base (by design)
#
# The stack only earns its place when it beats its bases, and with few validation rows per class
# (e.g. 77 intents, 3 validation rows in the smallest) it may not. So the ensemble picks, on the
# VALIDATION split only, among: the stack (its out-of-fold macro-F1: each row scored by a model that
# never saw it), the best base (its validation macro-F1) and a simple average of the bases'
# features; test rows are predicted by the winner. Test labels never enter the choice.
# Validation macro-F1 is rounded as reported, so ties are decided on the numbers written down.

def check_candidates(name: str, spec: Ensemble) -> list[Candidate]:
    """Some candidates, each once (their values are checked by the schema's Candidate)."""
    cands = list(spec.candidates)
    if not cands or len(set(cands)) != len(cands):
        raise EnsembleError(f"ensembles.{name}.candidates must list some of {[c.value for c in Candidate]} once each "
                            f"(got {[c.value for c in cands]}); "
                            f"e.g. -S 'ensembles.{name}.candidates=[best_base,average,stack]'")
    return cands


def average_scales(train: Features) -> np.ndarray:
    """One scale per base: the spread of its features on the training (validation) rows, so a base
    on a small scale (similarities) weighs as much in the average as one on a large one (log-probs)."""
    scales, start = [], 0
    for part in train.layout:
        block = train.x[:, start:start + part["width"]]
        scales.append(float(block.std()) or 1.0)  # a constant block (e.g. all unparseable) adds nothing
        start += part["width"]
    return np.asarray(scales)


def average_scores(feats: Features, scales: np.ndarray, n_labels: int) -> np.ndarray:
    """The mean over bases of their (centred) features divided by the base's scale: (n, n_labels)."""
    total, start = np.zeros((len(feats.x), n_labels)), 0
    for part, scale in zip(feats.layout, scales):
        total += feats.x[:, start:start + part["width"]] / scale
        start += part["width"]
    return total / len(feats.layout)


def choose(validation_f1: Mapping[str, float], candidates: Sequence[Candidate], bases: Sequence[str]) -> str:
    """The candidate with the highest validation macro-F1; `best_base` stands for the base with the
    highest (earlier base on ties), named as `best_base:<base>`. Ties go to the earlier entry of
    `candidates` (default: best_base, average, stack: the simpler one), so the stack has to BEAT the
    best base to be used."""
    named = {}
    for c in candidates:
        if c is Candidate.best_base:
            best = max(bases, key=lambda b: (validation_f1[b], -list(bases).index(b)))
            named[f"{c.value}:{best}"] = validation_f1[best]
        else:
            named[c.value] = validation_f1[c.value]
    order = list(named)
    return max(order, key=lambda c: (named[c], -order.index(c)))


@dataclass
class Outcome:
    chosen: str  # "stack" | "average" | "best_base:<base>"
    validation_f1: dict[str, float]  # per candidate and per base, on validation only
    folds: dict[str, int]
    model: GridSearchCV | None  # the stack, refitted on all validation rows (kept whatever is chosen)
    layout: list[dict[str, Any]]
    # per split: (pred, scores) of the chosen candidate; validation is out-of-fold for the stack
    pred: dict[str, tuple[np.ndarray, np.ndarray | None]]
    test_seconds: float  # predicting test with the chosen candidate
    stack_skipped: str | None = None  # why the stack was no candidate (too few validation rows per class)


def fit_and_choose(root: Path, name: str, spec: Ensemble, bases: Sequence[str], n_labels: int,
                   gold: Mapping[str, np.ndarray], seed: int) -> Outcome:
    """Fit the stack on validation, estimate every candidate on validation, predict test with the winner.
    `gold[EVAL_SPLIT]` is used only to check the saved test rows are the current ones."""
    candidates = check_candidates(name, spec)
    train = base_features(root, name, bases, TRAIN_SPLIT, n_labels, gold[TRAIN_SPLIT])
    test = base_features(root, name, bases, EVAL_SPLIT, n_labels, gold[EVAL_SPLIT], train.layout)
    skipped = None
    try:
        plan = fold_plan(name, train.labels, n_labels, spec.folds)
    except EnsembleError as err:
        # A class with under 3 validation rows (TREC's rarest types have none) leaves the nested CV
        # no honest estimate: the stack is left out, said in metrics/<name>.json and the log, and
        # the other candidates (chosen on validation as always) still run. Without any, stop.
        candidates = [c for c in candidates if c is not Candidate.stack]
        if not candidates:
            raise
        skipped = str(err)
        counts = np.bincount(train.labels, minlength=n_labels)
        plan = {"configured": int(spec.folds), "smallest_class": int(counts.min()), "outer": 0, "inner": 0}
        log.warning("%s. The stack is left out; choosing among %s on validation.", skipped,
                    [c.value for c in candidates])
    model = None
    if skipped is None:
        model = build(spec, seed, n_labels, plan["inner"])
        oof = out_of_fold(model, train, plan["outer"], seed)
        model.fit(train.x, train.labels)

    scales = average_scales(train)
    saved = {s: read_saved(root, bases, s) for s in (TRAIN_SPLIT, EVAL_SPLIT)}
    avg = {TRAIN_SPLIT: average_scores(train, scales, n_labels), EVAL_SPLIT: average_scores(test, scales, n_labels)}
    y = train.labels
    f1 = {**({} if skipped else {Candidate.stack.value: macro_f1(y, oof.argmax(1), n_labels)}),
          Candidate.average.value: macro_f1(y, avg[TRAIN_SPLIT].argmax(1), n_labels),
          **{b: macro_f1(y, saved[TRAIN_SPLIT][b].pred, n_labels) for b in bases}}
    chosen = choose(f1, candidates, bases)

    start = time.perf_counter()
    if chosen == Candidate.stack.value:
        pred = {TRAIN_SPLIT: (oof.argmax(1), oof)}
        test_proba = full_proba(model, test.x, n_labels)
        pred[EVAL_SPLIT] = (test_proba.argmax(1), test_proba)
    elif chosen == Candidate.average.value:
        pred = {s: (avg[s].argmax(1), avg[s]) for s in avg}
    else:
        base = chosen.split(":", 1)[1]
        pred = {s: (saved[s][base].pred, saved[s][base].scores) for s in saved}
    return Outcome(chosen, f1, plan, model, train.layout, pred, time.perf_counter() - start, skipped)


def apply_saved(root: Path, name: str, meta: Mapping[str, Any], model: GridSearchCV,
                base_preds: Mapping[str, tuple[np.ndarray, np.ndarray | None]], n_labels: int,
                validation_gold: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """The saved ensemble (models/<name>/meta.json + meta.joblib) on new rows, given its bases'
    (pred, scores) for them: what fit_and_choose does for test. Scores are rounded to the digits
    predictions are saved with, as the stage reads them from predictions/<base>/."""
    layout = meta["bases"]
    cols = []
    for part in layout:
        pred, scores = base_preds[part["base"]]
        if scores is not None:
            scores = np.asarray([[rounded(v) for v in row] for row in scores])
        feat, kind = base_feature(np.asarray(pred), scores, n_labels)
        if kind != part["features"]:
            raise EnsembleError(f"ensemble {name!r}: base {part['base']!r} now gives {kind}, but the saved "
                                f"ensemble was fit on {part['features']}; rerun `dvc repro`")
        cols.append(feat)
    feats = Features(np.hstack(cols), np.zeros(len(cols[0]), dtype=np.int64), list(layout))
    chosen = meta["chosen"]
    if chosen == Candidate.stack.value:
        proba = full_proba(model, feats.x, n_labels)
        return proba.argmax(1), proba
    if chosen == Candidate.average.value:
        # scaled as at fit: by the bases' spread on the saved validation predictions
        bases = [p["base"] for p in layout]
        scales = average_scales(base_features(root, name, bases, TRAIN_SPLIT, n_labels, validation_gold, layout))
        avg = average_scores(feats, scales, n_labels)
        return avg.argmax(1), avg
    pred, scores = base_preds[chosen.split(":", 1)[1]]
    return np.asarray(pred), scores
