"""Stage `predict@<approach>`: predict validation and test, save predictions with scores,
and write metrics/<approach>.json (test metrics; timings go to metrics/timings/)."""

from __future__ import annotations

import argparse
import time

from textclf.approaches.base import UNPARSEABLE, module_for
from textclf.core.context import Context, metrics_path, predictions_dir, setup_logging, timing_path
from textclf.core.io import dump_json
from textclf.evaluation import predictions
from textclf.evaluation.metrics import classification_metrics

# Splits an approach predicts unless its entry sets `splits`: validation scores feed
# the ensemble, test is what every approach is compared on.
EVAL_SPLITS = ("validation", "test")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("approach")
    args = parser.parse_args(argv)
    setup_logging()
    ctx = Context.from_cwd()
    name = args.approach
    ctx.approach(name)  # a clear error for a name that is not configured
    spec = ctx.settings.approaches[name]
    module = module_for(spec.kind)
    splits = list(spec.splits or EVAL_SPLITS)
    if "test" not in splits or set(splits) - set(EVAL_SPLITS):
        raise ValueError(f"approaches.{name}.splits must include test and name only {EVAL_SPLITS}, not {splits}")
    model_dir = ctx.model_dir(name)
    results, seconds, infos, extra_timings = {}, {}, {}, {}
    for split in splits:
        gold = ctx.split(split).labels
        start = time.perf_counter()
        pred = module.predict(ctx, name, model_dir, split)
        seconds[split] = time.perf_counter() - start
        predictions.write(pred.pred, pred.scores, gold, ctx.label_names, ctx.path(predictions_dir(name) / f"{split}.jsonl"))
        results[split] = classification_metrics(gold, pred.pred, ctx.label_names, UNPARSEABLE)
        if pred.info:
            infos[split] = pred.info
        if pred.timings:
            extra_timings[split] = pred.timings
    metrics = {"approach": name, "kind": spec.kind, **results["test"],
               # what fit() learnt from, for the summary (which then needs no approach code)
               "labelled": module.labelled(ctx.params, name).as_dict()}
    if "validation" in results:
        metrics["validation"] = {k: results["validation"][k] for k in ("accuracy", "macro", "rows")}
    if infos:
        metrics["details"] = infos
    dump_json(metrics, ctx.path(metrics_path(name)))
    n_test = results["test"]["rows"]
    dump_json({"predict_seconds": {k: round(v, 3) for k, v in seconds.items()},
               "test_seconds_per_1000": round(1000 * seconds["test"] / max(n_test, 1), 3),
               **({"details": extra_timings} if extra_timings else {})},
              ctx.path(timing_path("predict", name)))


if __name__ == "__main__":
    main()
