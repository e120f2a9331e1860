"""Stage `ensemble@<name>`: fit a stacked meta-classifier on the bases' validation scores,
write ensembles/<name>/{validation,test}.jsonl (validation: out-of-fold), models/<name>/,
metrics/<name>.json and its timings, in the same shapes as predict@ does for approaches."""

from __future__ import annotations

import argparse
import json
import logging
import time

import joblib
from threadpoolctl import threadpool_limits

from .. import ensemble as ens
from ..approaches import argmax_prediction
from ..context import Context, setup_logging
from ..metrics import classification_metrics, dump_json
from .. import predictions

log = logging.getLogger("textclf.ensemble")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("ensemble")
    args = parser.parse_args(argv)
    setup_logging()
    ctx = Context.from_cwd()
    name = args.ensemble
    ensembles = ctx.params.get("ensembles") or {}
    if name not in ensembles:
        raise KeyError(f"ensemble {name!r} is not configured; configured: {sorted(ensembles)}")
    spec = ensembles[name]
    bases = ens.check_bases(name, spec, ctx.params.get("approaches") or {})
    labels, n_labels = ctx.label_names, len(ctx.label_names)
    gold = {s: ctx.split(s).labels for s in (ens.TRAIN_SPLIT, ens.EVAL_SPLIT)}
    train = ens.base_features(ctx.root, name, bases, ens.TRAIN_SPLIT, n_labels, gold[ens.TRAIN_SPLIT])
    test = ens.base_features(ctx.root, name, bases, ens.EVAL_SPLIT, n_labels, gold[ens.EVAL_SPLIT], train.layout)
    ens.check_folds(name, train.labels, n_labels, int(spec.get("folds", 5)))

    # Hundreds of tiny fits: BLAS threads only add overhead (15x slower on a busy 2-core box).
    with threadpool_limits(1):
        start = time.perf_counter()
        model = ens.build(spec, ctx.seed)
        oof = ens.out_of_fold(model, train, spec, ctx.seed)
        model.fit(train.x, train.labels)
        fit_seconds = time.perf_counter() - start
        start = time.perf_counter()
        test_proba = ens.full_proba(model, test.x, n_labels)
        test_seconds = time.perf_counter() - start

    out_dir = ctx.root / predictions.ENSEMBLES / name
    results = {}
    for split, proba in ((ens.TRAIN_SPLIT, oof), (ens.EVAL_SPLIT, test_proba)):
        pred = argmax_prediction(proba, "probability")
        predictions.write(pred.pred, pred.scores, gold[split], labels, out_dir / f"{split}.jsonl")
        results[split] = classification_metrics(gold[split], pred.pred, labels)
    model_dir = ctx.model_dir(name)
    model_dir.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, model_dir / "meta.joblib")
    meta = {"bases": train.layout, "C": ens.chosen_c(model), "classes": model.classes_.tolist()}
    (model_dir / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    log.info("ensemble %s over %s: C=%g, out-of-fold %s macro-F1 %.4f, %s macro-F1 %.4f", name, bases, meta["C"],
             ens.TRAIN_SPLIT, results[ens.TRAIN_SPLIT]["macro"]["f1"], ens.EVAL_SPLIT,
             results[ens.EVAL_SPLIT]["macro"]["f1"])

    metrics = {"approach": name, "kind": "ensemble", "bases": bases, "meta_C": round(meta["C"], 6),
               **results[ens.EVAL_SPLIT],
               # out-of-fold: each validation row scored by a meta-model that did not train on it
               "validation": {k: results[ens.TRAIN_SPLIT][k] for k in ("accuracy", "macro", "rows")}}
    dump_json(metrics, ctx.root / "metrics" / f"{name}.json")
    n_test = len(gold[ens.EVAL_SPLIT])
    timings = ctx.root / "metrics/timings"
    dump_json({"fit_seconds": round(fit_seconds, 3)}, timings / f"fit_{name}.json")
    dump_json({"predict_seconds": {ens.EVAL_SPLIT: round(test_seconds, 3)},
               "test_seconds_per_1000": round(1000 * test_seconds / max(n_test, 1), 3)},
              timings / f"predict_{name}.json")


if __name__ == "__main__":
    main()
