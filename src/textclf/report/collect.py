"""The figures of the comparison (metrics/summary.json): every configured approach's and
ensemble's test metrics, seeded bootstrap intervals, paired tests against the best, labelled rows
used, how much their test errors overlap (`error_overlap`) and the rarest classes' F1. Only what
the predictions determine, so identical runs give identical bytes (timings go into the Markdown
only: report/costs.py).

Fields read from metrics/<name>.json: kind, rows, accuracy, macro.f1, weighted.f1,
unparseable, validation.macro.f1 (optional), and an optional block of LLM usage, `llm` or
else `details.test` (what the LLM approach writes), whose keys in LLM_KEYS are copied as
llm_<key>.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import precision_recall_fscore_support

from textclf.core.context import Context, metrics_path
from textclf.core.io import rounded
from textclf.core.settings import Approach, Compare, Ensemble
from textclf.evaluation import compare, predictions
from textclf.evaluation.metrics import macro_f1

# Optional keys of an `llm` block in metrics/<name>.json that the summary carries over.
LLM_KEYS = ("requests", "prompt_tokens", "completion_tokens", "estimated_cost_usd", "cost_usd")

Spec = Approach | Ensemble  # an entry of the comparison


def read_json(path: Path) -> dict[str, Any]:
    """A JSON file's object, or {} when it is absent (a stage that has not run)."""
    return json.loads(path.read_text()) if path.is_file() else {}


def llm_usage(m: Mapping[str, Any]) -> dict[str, Any]:
    """The deterministic LLM usage an approach reported for test, or {} (read defensively:
    approaches without an LLM have neither block)."""
    block = m.get("llm")
    if not isinstance(block, Mapping):
        details = m.get("details")
        block = details.get("test") if isinstance(details, Mapping) else None
    if not isinstance(block, Mapping):
        return {}
    return {f"llm_{k}": block[k] for k in LLM_KEYS if isinstance(block.get(k), (int, float))}


def entries(ctx: Context) -> dict[str, Spec]:
    """Every compared model by name: the approaches, then the ensembles."""
    out: dict[str, Spec] = dict(ctx.settings.approaches)
    for name, spec in ctx.settings.ensembles.items():
        if name in out:
            raise ValueError(f"{name!r} names both an approach and an ensemble; rename one")
        out[name] = spec
    return out


def labelled(name: str, spec: Spec, all_specs: Mapping[str, Spec],
             split_rows: Mapping[str, int], metrics: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Labelled rows an approach learns from, as its predict stage recorded them in
    metrics/<name>.json (`labelled`: whole splits plus single rows such as few-shot examples).
    An ensemble needs its bases' labels plus the validation split it is trained on.
    Read from the metrics rather than asked of the approach's code, so the summary does not
    depend on (and rerun with) every approach's module."""
    if isinstance(spec, Ensemble):
        parts = [labelled(b, all_specs[b], all_specs, split_rows, metrics) for b in spec.bases]
        if any(p["labelled_rows"] is None for p in parts):
            return {"labelled_rows": None, "labelled_splits": "unknown"}
        splits = sorted({s for p in parts for s in p["_splits"]} | {"validation"})
        extra = sum(p["_extra"] for p in parts)
        return {"labelled_rows": sum(split_rows[s] for s in splits) + extra,
                "labelled_splits": "+".join(splits) + ("+examples" if extra else ""), "_splits": splits, "_extra": extra}
    lab = metrics[name].get("labelled")
    if not isinstance(lab, Mapping):  # an approach that does not say: unknown rather than a guess
        return {"labelled_rows": None, "labelled_splits": "unknown"}
    splits, extra = list(lab.get("splits") or []), int(lab.get("rows") or 0)
    if not splits and extra:
        return {"labelled_rows": extra, "labelled_splits": "examples", "_splits": [], "_extra": extra}
    return {"labelled_rows": sum(split_rows[s] for s in splits) + extra,
            "labelled_splits": "+".join(splits) + ("+examples" if extra else "") if splits else "none",
            "_splits": splits, "_extra": extra}


def rare_classes_k(settings: Compare) -> int:
    """compare.rare_classes: how many of the rarest classes get a per-class table (0: none)."""
    k = settings.rare_classes
    if k < 0:
        raise ValueError(f"compare.rare_classes must be a whole number >= 0 (0: no table), got {k!r}; "
                         "set it in conf/compare/default.yaml or -S compare.rare_classes=5")
    return k


def rare_classes(gold: np.ndarray, preds: Mapping[str, np.ndarray], train_counts: Sequence[int],
                 label_names: Sequence[str], k: int) -> dict[str, Any] | None:
    """Per-class test F1 of every approach for the k classes with the fewest train rows (ties: label
    order), where a macro average hides them: only for more than 2 classes (with 2, both rows are
    in the per-approach metrics already) and k > 0; else None."""
    n = len(label_names)
    if n <= 2 or k <= 0:
        return None
    if len(train_counts) != n:
        raise ValueError(f"{len(train_counts)} train counts for {n} labels")
    rarest = sorted(range(n), key=lambda i: (int(train_counts[i]), i))[:k]
    labels = list(range(n))
    f1 = {name: precision_recall_fscore_support(gold, pred, labels=labels, average=None, zero_division=0)[2]
          for name, pred in preds.items()}
    test_rows = np.bincount(gold, minlength=n)
    return {"k": k, "by": "train rows", "classes": [
        {"label": label_names[i], "train_rows": int(train_counts[i]), "test_rows": int(test_rows[i]),
         "f1": {name: rounded(f[i]) for name, f in sorted(f1.items())}} for i in rarest]}


def significant(p_bootstrap: float, p_mcnemar: float, alpha: float = compare.ALPHA) -> bool:
    """The best beats another at `alpha` only when both paired tests say so: the bootstrap of
    the macro-F1 difference and McNemar's test on per-row correctness can disagree near the line."""
    return bool(p_bootstrap < alpha and p_mcnemar < alpha)


def metrics_row(m: Mapping[str, Any]) -> dict[str, Any]:
    """The summary's columns of one metrics/<name>.json."""
    return {"kind": m["kind"], "rows": m["rows"], "accuracy": m["accuracy"], "macro_f1": m["macro"]["f1"],
            "weighted_f1": m["weighted"]["f1"], "unparseable": m["unparseable"],
            "unparseable_rate": rounded(m["unparseable"] / max(m["rows"], 1)),
            "validation_macro_f1": m["validation"]["macro"]["f1"] if "validation" in m else None}


def read_results(ctx: Context, specs: Mapping[str, Spec],
                 split_rows: Mapping[str, int]) -> tuple[dict[str, dict[str, Any]], dict[str, predictions.Saved]]:
    """Per name: its summary row (metrics, labelled rows, LLM usage) and its saved test predictions,
    all on the same test rows."""
    rows, tests = {}, {}
    gold = None
    metrics = {name: read_json(ctx.path(metrics_path(name))) for name in specs}
    for name, spec in specs.items():
        m = metrics[name]
        ensemble = isinstance(spec, Ensemble)
        if not m:
            stage = f"ensemble@{name}" if ensemble else f"predict@{name}"
            raise FileNotFoundError(f"{metrics_path(name)} is missing: run `dvc repro {stage}`")
        saved = predictions.read(ctx.path(predictions.split_file(name, "test", ensemble)))
        if gold is None:
            gold = saved.labels
        elif not np.array_equal(saved.labels, gold):
            raise ValueError(f"{name}'s test predictions are on other rows than the others': rerun `dvc repro`")
        tests[name] = saved
        r = metrics_row(m)
        if ensemble:
            r["bases"] = "+".join(spec.bases)
        lab = labelled(name, spec, specs, split_rows, metrics)
        r.update({k: v for k, v in lab.items() if not k.startswith("_")})
        r.update(llm_usage(m))
        rows[name] = r
    return rows, tests


def vs_best(p: compare.Paired) -> dict[str, Any]:
    return {"best_minus_this_macro_f1": rounded(p.delta), "ci_low": rounded(p.delta_ci[0]),
            "ci_high": rounded(p.delta_ci[1]), "p_bootstrap": rounded(p.p_bootstrap), "p_mcnemar": rounded(p.p_mcnemar),
            "significant": significant(p.p_bootstrap, p.p_mcnemar),
            "best_only_correct": p.a_only_correct, "this_only_correct": p.b_only_correct}


def vs_baseline(p: compare.Paired) -> dict[str, Any]:
    """This approach against the stronger baseline: better only when ahead and both tests agree."""
    return {"this_minus_baseline_macro_f1": rounded(p.delta), "ci_low": rounded(p.delta_ci[0]),
            "ci_high": rounded(p.delta_ci[1]), "p_bootstrap": rounded(p.p_bootstrap), "p_mcnemar": rounded(p.p_mcnemar),
            "significantly_better": bool(p.delta > 0 and significant(p.p_bootstrap, p.p_mcnemar))}


def baseline_rows(gold: np.ndarray, preds: Mapping[str, np.ndarray], n_labels: int,
                  weights: np.ndarray) -> dict[str, dict[str, Any]]:
    """Macro-F1 with its interval and accuracy of each baseline (evaluation/baselines.py)."""
    out = {}
    for name, pred in preds.items():
        lo, hi = compare.interval(compare.weighted_macro_f1(gold, pred, n_labels, weights))
        out[name] = {"macro_f1": macro_f1(gold, pred, n_labels), "macro_f1_ci_low": rounded(lo),
                     "macro_f1_ci_high": rounded(hi), "accuracy": rounded(float(np.mean(pred == gold)))}
    return out


def error_overlap(gold: np.ndarray, preds: Mapping[str, np.ndarray]) -> dict[str, dict[str, dict[str, float | None]]]:
    """compare.error_overlap rounded as every figure of the summary (None stays: undefined)."""
    return {key: {a: {b: None if v is None else rounded(v) + 0.0 for b, v in row.items()} for a, row in table.items()}
            for key, table in compare.error_overlap(gold, preds).items()}


def collect(ctx: Context, split_rows: Mapping[str, int], n_labels: int, resamples: int, seed: int, *,
            rare: tuple[Sequence[int], Sequence[str], int] | None = None,
            baselines: Mapping[str, np.ndarray] | None = None) -> dict[str, Any]:
    """The summary of the configured approaches and ensembles only (`entries(ctx)`: files of
    an approach dropped from the config are never read; `python -m textclf.report.stale` lists them).
    rare: (train rows per class, label names, k) for the rarest-classes table, or None for none.
    baselines: {name: test predictions} of trivial baselines (evaluation/baselines.py): scored,
    and every approach tested against the stronger one; they are never `best`."""
    rows, tests = read_results(ctx, entries(ctx), split_rows)
    if not rows:
        return {"approaches": {}, "best": None}
    gold = next(iter(tests.values())).labels
    weights = compare.bootstrap_weights(len(gold), resamples, seed)
    for name, saved in tests.items():
        samples = compare.weighted_macro_f1(gold, saved.pred, n_labels, weights)
        lo, hi = compare.interval(samples)
        rows[name].update(macro_f1_ci_low=rounded(lo), macro_f1_ci_high=rounded(hi))
    # Ties go to the earlier name in sorted order, so the choice does not depend on dict order.
    best = min(rows, key=lambda n: (-rows[n]["macro_f1"], n))
    for name, saved in tests.items():
        if name != best:
            rows[name]["vs_best"] = vs_best(compare.paired(gold, tests[best].pred, saved.pred, n_labels, weights))
    out = {"approaches": dict(sorted(rows.items())), "best": best,
           "bootstrap": {"resamples": resamples, "seed": seed, "confidence": compare.CONFIDENCE},
           "significance": {"alpha": compare.ALPHA, "rule": "both the paired bootstrap and McNemar below alpha"}}
    if baselines:
        base = baseline_rows(gold, baselines, n_labels, weights)
        stronger = min(base, key=lambda n: (-base[n]["macro_f1"], list(base).index(n)))
        for name, saved in tests.items():
            rows[name]["vs_baseline"] = vs_baseline(
                compare.paired(gold, saved.pred, baselines[stronger], n_labels, weights))
        out["baselines"] = {**base, "compared_with": stronger,
                            "not_significantly_better": sorted(n for n in rows
                                                               if not rows[n]["vs_baseline"]["significantly_better"])}
    out["error_overlap"] = error_overlap(gold, {n: tests[n].pred for n in sorted(tests)})
    table = rare_classes(gold, {n: t.pred for n, t in tests.items()}, *rare) if rare else None
    if table:  # absent for binary tasks: their summary.json stays as it was
        out["rare_classes"] = table
    return out
