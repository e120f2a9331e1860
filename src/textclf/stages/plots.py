"""Stage `plots`: plot data files under plots/ for the `plots:` section of dvc.yaml, and
metrics/curves.json (ROC AUC and average precision per approach with scores)."""

from __future__ import annotations

import json
import logging
import shutil

from textclf.core.context import Context, metrics_path, setup_logging
from textclf.core.io import dump_json
from textclf.evaluation import predictions
from textclf.report import plots

log = logging.getLogger("textclf.report.plots")


def main() -> None:
    setup_logging()
    ctx = Context.from_cwd()
    out = ctx.root / "plots"
    shutil.rmtree(out, ignore_errors=True)  # no stale files from approaches dropped since
    n_labels = len(ctx.label_names)
    curve_metrics, skipped = {}, []
    overlay: dict[str, list] = {"roc": [], "pr": []}  # every approach in one chart per kind
    ensembles = set(ctx.ensemble_names)
    for name in ctx.approach_names + ctx.ensemble_names:  # the summary's order
        saved = predictions.read(ctx.path(predictions.split_file(name, "test", name in ensembles)))
        plots.dump(plots.confusion_rows(saved.labels, saved.pred, ctx.label_names), out / "confusion" / f"{name}.json")
        if saved.scores is None:
            skipped.append(name)
            continue
        c = plots.curves(saved.labels, saved.scores, n_labels)
        for kind in overlay:
            overlay[kind] += plots.overlay_rows(name, c[kind])
        curve_metrics[name] = {"roc_auc": c["roc_auc"], "average_precision": c["average_precision"]}
    if skipped:
        log.info("no ROC/PR curves for %s: their predictions carry no scores", skipped)
    for kind, rows in overlay.items():
        if rows:
            plots.dump(rows, out / f"{kind}.json")
    summary = json.loads(ctx.path(metrics_path("summary")).read_text())
    plots.dump(plots.interval_rows(summary), out / "macro_f1.json")
    dump_json({"averaging": "positive label" if n_labels == 2 else "micro one-vs-rest",
               "approaches": curve_metrics, "no_scores": skipped}, ctx.path(metrics_path("curves")))


if __name__ == "__main__":
    main()
