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

Features per base: its scores when it saved them, centred per row (log first for
probabilities), else a one-hot of its predicted label (all zeros for an unparseable answer),
so approaches without scores (e.g. an LLM's bare answer) can still be stacked. Centring
keeps what the base's argmax sees (how much one label beats the others) and drops the
per-row offset of similarity scores, which the meta-classifier would otherwise have to learn
from the few validation rows (it raised out-of-fold validation macro-F1 0.772 -> 0.782 with
MiniLM bases on rotten_tomatoes).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Mapping, Sequence

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score, log_loss
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from textclf.evaluation import predictions
from textclf.core.io import DIGITS

TRAIN_SPLIT = "validation"  # what the meta-classifier learns from
EVAL_SPLIT = "test"


class EnsembleError(ValueError):
    """An ensemble whose configuration or inputs cannot work; the message says what to change."""


@dataclass
class Features:
    x: np.ndarray  # (n, sum of per-base widths)
    labels: np.ndarray
    layout: list[dict[str, Any]]  # per base: name, kind of feature ("scores"/"onehot"), width


def check_bases(name: str, spec: Mapping[str, Any], approaches: Mapping[str, Any]) -> list[str]:
    bases = list(spec.get("bases") or [])
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
        splits = approaches[b].get("splits")
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
        path = root / predictions.PREDICTIONS / b / f"{split}.jsonl"
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


@dataclass(frozen=True)
class AllLabelsScorer:
    """A CV score computed over ALL labels: with many classes a fold can lack a class (in y or
    in the fitted model's classes_), and a scorer that infers the labels from the fold scores on
    the wrong label set (sklearn's "y_true and y_prob contain different number of classes"
    warning). Greater is better, as GridSearchCV expects. A class (not a closure): the fitted
    GridSearchCV, which keeps its scorer, is saved with joblib."""
    name: str
    n_labels: int

    KINDS: ClassVar[tuple[str, ...]] = ("neg_log_loss", "f1_macro")

    def __post_init__(self) -> None:
        if self.name not in self.KINDS:
            raise EnsembleError(f"scoring {self.name!r} is not supported; use one of {list(self.KINDS)}")

    def __call__(self, model: Any, x: np.ndarray, y: np.ndarray) -> float:
        labels = list(range(self.n_labels))
        if self.name == "neg_log_loss":
            return -float(log_loss(y, full_proba(model, x, self.n_labels), labels=labels))
        return float(f1_score(y, model.predict(x), labels=labels, average="macro", zero_division=0))


def build(spec: Mapping[str, Any], seed: int, n_labels: int, inner_folds: int) -> GridSearchCV:
    """Scaler + LogisticRegression, C chosen from spec["Cs"] by stratified `inner_folds`-fold CV
    (refit on all rows); `inner_folds` from fold_plan."""
    folds = StratifiedKFold(inner_folds, shuffle=True, random_state=seed)
    pipe = make_pipeline(
        StandardScaler(),  # similarities and probabilities live on different scales
        LogisticRegression(max_iter=int(spec["max_iter"]), random_state=seed),
    )
    return GridSearchCV(pipe, {"logisticregression__C": [float(c) for c in spec["Cs"]]}, cv=folds,
                        scoring=AllLabelsScorer(spec["scoring"], n_labels),
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


# ------------------------------------------------ never worse than the best base (by design)
#
# The stack only earns its place when it beats its bases, and with few validation rows per class
# (e.g. 77 intents, 3 validation rows in the smallest) it may not. So the ensemble picks, on the
# VALIDATION split only, among: the stack (its out-of-fold macro-F1: each row scored by a model that
# never saw it), the best base (its validation macro-F1) and a simple average of the bases'
# features; test rows are predicted by the winner. Test labels never enter the choice.

CANDIDATES = ("stack", "best_base", "average")


def check_candidates(name: str, spec: Mapping[str, Any]) -> list[str]:
    cands = list(spec.get("candidates") or [])
    bad = [c for c in cands if c not in CANDIDATES]
    if not cands or bad or len(set(cands)) != len(cands):
        raise EnsembleError(f"ensembles.{name}.candidates must list some of {list(CANDIDATES)} once each "
                            f"(got {cands}); e.g. -S 'ensembles.{name}.candidates=[best_base,average,stack]'")
    return cands


def macro_f1(gold: np.ndarray, pred: np.ndarray, n_labels: int) -> float:
    """Over all labels (a class never predicted scores 0; an unparseable -1 is wrong), 6 digits as
    reported, so ties are decided on the numbers that are written down."""
    return round(float(f1_score(gold, pred, labels=list(range(n_labels)), average="macro", zero_division=0)), 6)


def read_saved(root: Path, bases: Sequence[str], split: str) -> dict[str, predictions.Saved]:
    """The bases' saved predictions (base_features has checked they exist and match the split)."""
    return {b: predictions.read(root / predictions.PREDICTIONS / b / f"{split}.jsonl") for b in bases}


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


def choose(validation_f1: Mapping[str, float], candidates: Sequence[str], bases: Sequence[str]) -> str:
    """The candidate with the highest validation macro-F1; `best_base` stands for the base with the
    highest (earlier base on ties), named as `best_base:<base>`. Ties go to the earlier entry of
    `candidates` (default: best_base, average, stack: the simpler one), so the stack has to BEAT the
    best base to be used."""
    named = {}
    for c in candidates:
        if c == "best_base":
            best = max(bases, key=lambda b: (validation_f1[b], -list(bases).index(b)))
            named[f"best_base:{best}"] = validation_f1[best]
        else:
            named[c] = validation_f1[c]
    order = list(named)
    return max(order, key=lambda c: (named[c], -order.index(c)))


@dataclass
class Outcome:
    chosen: str  # "stack" | "average" | "best_base:<base>"
    validation_f1: dict[str, float]  # per candidate and per base, on validation only
    folds: dict[str, int]
    model: GridSearchCV  # the stack, refitted on all validation rows (kept whatever is chosen)
    layout: list[dict[str, Any]]
    # per split: (pred, scores) of the chosen candidate; validation is out-of-fold for the stack
    pred: dict[str, tuple[np.ndarray, np.ndarray | None]]
    test_seconds: float  # predicting test with the chosen candidate


def fit_and_choose(root: Path, name: str, spec: Mapping[str, Any], bases: Sequence[str], n_labels: int,
                   gold: Mapping[str, np.ndarray], seed: int) -> Outcome:
    """Fit the stack on validation, estimate every candidate on validation, predict test with the winner.
    `gold[EVAL_SPLIT]` is used only to check the saved test rows are the current ones."""
    candidates = check_candidates(name, spec)
    train = base_features(root, name, bases, TRAIN_SPLIT, n_labels, gold[TRAIN_SPLIT])
    test = base_features(root, name, bases, EVAL_SPLIT, n_labels, gold[EVAL_SPLIT], train.layout)
    plan = fold_plan(name, train.labels, n_labels, int(spec["folds"]))
    model = build(spec, seed, n_labels, plan["inner"])
    oof = out_of_fold(model, train, plan["outer"], seed)
    model.fit(train.x, train.labels)

    scales = average_scales(train)
    saved = {s: read_saved(root, bases, s) for s in (TRAIN_SPLIT, EVAL_SPLIT)}
    avg = {TRAIN_SPLIT: average_scores(train, scales, n_labels), EVAL_SPLIT: average_scores(test, scales, n_labels)}
    y = train.labels
    f1 = {"stack": macro_f1(y, oof.argmax(1), n_labels), "average": macro_f1(y, avg[TRAIN_SPLIT].argmax(1), n_labels),
          **{b: macro_f1(y, saved[TRAIN_SPLIT][b].pred, n_labels) for b in bases}}
    chosen = choose(f1, candidates, bases)

    start = time.perf_counter()
    if chosen == "stack":
        pred = {TRAIN_SPLIT: (oof.argmax(1), oof)}
        test_proba = full_proba(model, test.x, n_labels)
        pred[EVAL_SPLIT] = (test_proba.argmax(1), test_proba)
    elif chosen == "average":
        pred = {s: (avg[s].argmax(1), avg[s]) for s in avg}
    else:
        base = chosen.split(":", 1)[1]
        pred = {s: (saved[s][base].pred, saved[s][base].scores) for s in saved}
    return Outcome(chosen, f1, plan, model, train.layout, pred, time.perf_counter() - start)


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
            scores = np.asarray([[round(float(v), DIGITS) for v in row] for row in scores])
        feat, kind = base_feature(np.asarray(pred), scores, n_labels)
        if kind != part["features"]:
            raise EnsembleError(f"ensemble {name!r}: base {part['base']!r} now gives {kind}, but the saved "
                                f"ensemble was fit on {part['features']}; rerun `dvc repro`")
        cols.append(feat)
    feats = Features(np.hstack(cols), np.zeros(len(cols[0]), dtype=np.int64), list(layout))
    chosen = meta["chosen"]
    if chosen == "stack":
        proba = full_proba(model, feats.x, n_labels)
        return proba.argmax(1), proba
    if chosen == "average":  # scaled as at fit: by the bases' spread on the saved validation predictions
        bases = [p["base"] for p in layout]
        scales = average_scales(base_features(root, name, bases, TRAIN_SPLIT, n_labels, validation_gold, layout))
        avg = average_scores(feats, scales, n_labels)
        return avg.argmax(1), avg
    pred, scores = base_preds[chosen.split(":", 1)[1]]
    return np.asarray(pred), scores
