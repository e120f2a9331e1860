"""Statistics for comparing approaches on the same test rows: seeded bootstrap confidence
intervals for macro-F1, a paired bootstrap of the difference, McNemar's exact test, and how
much approaches' errors overlap (`error_overlap`).

All resampling draws one matrix of row multiplicities (`bootstrap_weights`) and scores every
approach on it, so differences are paired: both sides see the same resampled rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from scipy.stats import binomtest

CONFIDENCE = 0.95
# "Significant" in the summary: below this p on both the paired bootstrap and McNemar
# (the level that matches the 95% intervals).
ALPHA = 0.05


def bootstrap_weights(n_rows: int, n_resamples: int, seed: int) -> np.ndarray:
    """(n_resamples, n_rows) counts: how often each row appears in each resample of n_rows rows
    drawn with replacement. Seeded, so the same inputs give the same intervals."""
    if n_rows <= 0:
        raise ValueError("cannot bootstrap zero test rows")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n_rows, size=(n_resamples, n_rows))
    weights = np.zeros((n_resamples, n_rows), dtype=np.int32)
    np.add.at(weights, (np.arange(n_resamples)[:, None], idx), 1)
    return weights


def weighted_macro_f1(y_true: np.ndarray, y_pred: np.ndarray, n_labels: int, weights: np.ndarray) -> np.ndarray:
    """Macro-F1 over labels 0..n_labels-1 for each row of `weights` (one resample per row).

    Same definition as metrics.macro_f1 (sklearn's f1_score(average="macro", zero_division=0)
    over the labels in gold or predictions): a label absent from a resample's gold rows and
    predictions is not averaged; a prediction outside the labels (unparseable) is a false
    negative for its gold class and counts for no class."""
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    w = np.atleast_2d(weights).astype(np.float64)
    f1 = np.zeros((w.shape[0], n_labels))
    seen = np.zeros((w.shape[0], n_labels), dtype=bool)
    for c in range(n_labels):
        tp = w @ ((y_true == c) & (y_pred == c))
        denom = w @ (y_true == c) + w @ (y_pred == c)
        f1[:, c] = np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)
        seen[:, c] = denom > 0
    return f1.sum(axis=1) / np.maximum(seen.sum(axis=1), 1)


def interval(samples: np.ndarray, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Percentile interval of bootstrap samples."""
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(samples, [alpha, 1 - alpha])
    return float(lo), float(hi)


@dataclass
class Paired:
    delta: float  # metric(a) - metric(b) on the test rows
    delta_ci: tuple[float, float]
    p_bootstrap: float  # two-sided: how often the resampled difference crosses zero
    a_only_correct: int  # rows a gets right and b gets wrong
    b_only_correct: int
    p_mcnemar: float  # exact (binomial) McNemar test on those discordant rows


def paired_bootstrap_p(delta_samples: np.ndarray) -> float:
    """Two-sided bootstrap p-value for "the difference is zero": twice the smaller tail
    of the resampled differences beyond zero, capped at 1."""
    d = np.asarray(delta_samples)
    return float(min(1.0, 2 * min((d <= 0).mean(), (d >= 0).mean())))


def mcnemar_exact(correct_a: np.ndarray, correct_b: np.ndarray) -> tuple[int, int, float]:
    """Discordant counts and the exact two-sided McNemar p-value (1.0 when none disagree)."""
    a = np.asarray(correct_a, dtype=bool)
    b = np.asarray(correct_b, dtype=bool)
    n01, n10 = int((a & ~b).sum()), int((~a & b).sum())
    p = 1.0 if n01 + n10 == 0 else float(binomtest(min(n01, n10), n01 + n10, 0.5).pvalue)
    return n01, n10, p


def paired(y_true: np.ndarray, pred_a: np.ndarray, pred_b: np.ndarray, n_labels: int,
           weights: np.ndarray) -> Paired:
    """Compare a against b on the same rows: macro-F1 difference with its paired bootstrap
    interval and p-value, and McNemar's test on per-row correctness."""
    y = np.asarray(y_true)
    full = np.ones((1, len(y)))
    delta = float(weighted_macro_f1(y, pred_a, n_labels, full)[0] - weighted_macro_f1(y, pred_b, n_labels, full)[0])
    samples = weighted_macro_f1(y, pred_a, n_labels, weights) - weighted_macro_f1(y, pred_b, n_labels, weights)
    n01, n10, p_mc = mcnemar_exact(np.asarray(pred_a) == y, np.asarray(pred_b) == y)
    return Paired(delta, interval(samples), paired_bootstrap_p(samples), n01, n10, p_mc)


def error_overlap(y_true: np.ndarray, preds: Mapping[str, np.ndarray]) -> dict[str, dict[str, dict[str, float | None]]]:
    """How alike approaches err on the same rows, in `preds`' order, for every pair (a with itself too):
    correctness_correlation[a][b]: Pearson correlation (phi) of their per-row correctness (1 right,
    0 wrong; an unparseable prediction is wrong), None when a or b has zero variance (right on every
    row, or wrong on every row: the correlation is undefined); both_wrong[a][b]: the share of rows
    both get wrong (both_wrong[a][a]: a's error rate). Unrounded floats.

    An ensemble gains only where its members err on different rows: a correlation near 1 means
    they fail together and combining them has little to gain."""
    y = np.asarray(y_true)
    if y.size == 0:
        raise ValueError("no test rows to compare errors on")
    names = list(preds)
    correct = np.array([np.asarray(preds[n]) == y for n in names], dtype=np.float64).reshape(len(names), y.size)
    r = np.full((len(names), len(names)), np.nan)
    varies = np.flatnonzero(correct.min(axis=1) != correct.max(axis=1))
    if varies.size:  # only rows with variance: np.corrcoef would warn (and give NaN) on the others
        r[np.ix_(varies, varies)] = np.atleast_2d(np.corrcoef(correct[varies]))
    wrong = 1.0 - correct
    both = (wrong @ wrong.T) / y.size
    return {"correctness_correlation": {a: {b: None if np.isnan(r[i, j]) else float(r[i, j])
                                            for j, b in enumerate(names)} for i, a in enumerate(names)},
            "both_wrong": {a: {b: float(both[i, j]) for j, b in enumerate(names)} for i, a in enumerate(names)}}
