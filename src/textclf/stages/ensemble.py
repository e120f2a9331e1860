"""Stage `ensemble@<name>`: fit a stacked meta-classifier on the bases' validation scores, pick
the stack, the best base or their average on validation (ensemble.fit_and_choose), write
ensembles/<name>/{validation,test}.jsonl (the chosen candidate's; the stack's validation is
out-of-fold), models/<name>/, metrics/<name>.json and its timings, in the same shapes as predict@ does for approaches."""

from __future__ import annotations

import argparse
import json
import logging
import time

import joblib
from threadpoolctl import threadpool_limits

from textclf.core.context import Context, metrics_path, setup_logging, timing_path
from textclf.core.io import dump_json, rounded
from textclf.evaluation import ensemble as ens
from textclf.evaluation import predictions
from textclf.evaluation.ensemble_inputs import check_bases
from textclf.evaluation.ensemble_model import chosen_c
from textclf.evaluation.metrics import classification_metrics

log = logging.getLogger("textclf.evaluation.ensemble")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("ensemble")
    args = parser.parse_args(argv)
    setup_logging()
    ctx = Context.from_cwd()
    name = args.ensemble
    ensembles = ctx.settings.ensembles
    if name not in ensembles:
        raise KeyError(f"ensemble {name!r} is not configured; configured: {sorted(ensembles)}")
    spec = ensembles[name]
    bases = check_bases(name, spec, ctx.settings.approaches)
    labels, n_labels = ctx.label_names, len(ctx.label_names)
    gold = {s: ctx.split(s).labels for s in (ens.TRAIN_SPLIT, ens.EVAL_SPLIT)}

    # Hundreds of tiny fits: BLAS threads only add overhead (15x slower on a busy 2-core box).
    with threadpool_limits(1):
        start = time.perf_counter()
        out = ens.fit_and_choose(ctx.root, name, spec, bases, n_labels, gold, ctx.seed)
        fit_seconds = time.perf_counter() - start - out.test_seconds
        test_seconds = out.test_seconds

    results = {}
    for split, (pred, scores) in out.pred.items():
        path = ctx.path(predictions.split_file(name, split, ensemble=True))
        predictions.write(pred, scores, gold[split], labels, path)
        results[split] = classification_metrics(gold[split], pred, labels)
    model_dir = ctx.model_dir(name)
    model_dir.mkdir(parents=True, exist_ok=True)
    saved_model = model_dir / "meta.joblib"
    if out.model is not None:
        joblib.dump(out.model, saved_model)
    else:  # no stack was fitted (out.stack_skipped): no stale one is left to load
        saved_model.unlink(missing_ok=True)
    meta = {"bases": out.layout, "C": chosen_c(out.model) if out.model is not None else None,
            "classes": out.model.classes_.tolist() if out.model is not None else None,
            "chosen": out.chosen, "folds": out.folds,
            **({"stack_skipped": out.stack_skipped} if out.stack_skipped else {})}
    (model_dir / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    log.info("ensemble %s over %s: folds %s, C=%s; validation macro-F1 %s -> %s; %s macro-F1 %.4f", name, bases,
             out.folds, meta["C"], out.validation_f1, out.chosen, ens.EVAL_SPLIT, results[ens.EVAL_SPLIT]["macro"]["f1"])

    metrics = {"approach": name, "kind": "ensemble", "bases": bases,
               "meta_C": rounded(meta["C"]) if meta["C"] is not None else None,
               **({"stack_skipped": out.stack_skipped} if out.stack_skipped else {}),
               # what predicted test, and the validation-only numbers that chose it (stack: out-of-fold)
               "chosen": out.chosen, "validation_macro_f1": out.validation_f1, "folds": out.folds,
               **results[ens.EVAL_SPLIT],
               # the chosen candidate's validation predictions (the stack's are out-of-fold)
               "validation": {k: results[ens.TRAIN_SPLIT][k] for k in ("accuracy", "macro", "rows")}}
    dump_json(metrics, ctx.path(metrics_path(name)))
    n_test = len(gold[ens.EVAL_SPLIT])
    dump_json({"fit_seconds": round(fit_seconds, 3)}, ctx.path(timing_path("fit", name)))
    dump_json({"predict_seconds": {ens.EVAL_SPLIT: round(test_seconds, 3)},
               "test_seconds_per_1000": round(1000 * test_seconds / max(n_test, 1), 3)},
              ctx.path(timing_path("predict", name)))


if __name__ == "__main__":
    main()
