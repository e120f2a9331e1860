"""Stage `summary`: metrics/summary.json (deterministic), metrics/macro_f1.json (each approach's
test macro-F1 alone: `dvc exp show`'s first columns) and reports/summary.md (with timings) over
the approaches and ensembles that ran."""

from __future__ import annotations

import logging
import shutil

import numpy as np

from textclf.core.context import Context, metrics_path, setup_logging
from textclf.core.io import dump_json, write_text_atomic
from textclf.data.prepared import SPLITS
from textclf.evaluation import baselines
from textclf.report.cards import model_cards
from textclf.report.collect import collect, rare_classes_k
from textclf.report.markdown import markdown
from textclf.report.stale import fixed_outputs, stale_outputs

log = logging.getLogger("textclf.report.summary")


def main() -> None:
    setup_logging()
    ctx = Context.from_cwd()
    split_rows = {s: len(ctx.split(s).labels) for s in SPLITS}
    cfg = ctx.settings.compare
    k = rare_classes_k(cfg)
    train = ctx.split("train").labels
    train_counts = np.bincount(train, minlength=len(ctx.label_names)).tolist()
    summary = collect(ctx, split_rows, len(ctx.label_names), cfg.bootstrap_resamples, cfg.seed,
                      rare=(train_counts, ctx.label_names, k),
                      # compare.seed, as the bootstrap: a declared param of this stage (dvc.yaml)
                      baselines=baselines.predict(train, split_rows["test"], cfg.seed))
    dump_json(summary, ctx.path(metrics_path("summary")))
    # The figure experiments are compared on, alone and first in `dvc exp show` (dvc.yaml).
    dump_json({"test_macro_f1": {n: r["macro_f1"] for n, r in summary["approaches"].items()}},
              ctx.path(metrics_path("macro_f1")))
    # Only a warning (dvc.yaml is read, not a dependency: it changes no output). Leftovers of
    # dropped approaches are not read above, but stay in the workspace (and git) beside the current ones.
    stale = stale_outputs(ctx.root, ctx.params, fixed_outputs((ctx.root / "dvc.yaml").read_text()))
    if stale:
        log.warning("not in this summary, from approaches/ensembles no longer configured: %s; "
                    "`python -m textclf.report.stale --remove` deletes them", ", ".join(p.as_posix() for p in stale))
    md = markdown(summary, ctx)
    write_text_atomic(ctx.root / "reports/summary.md", md)
    cards = ctx.root / "reports/cards"
    shutil.rmtree(cards, ignore_errors=True)  # no cards of approaches dropped since
    for name, card in model_cards(summary, ctx).items():
        write_text_atomic(cards / f"{name}.md", card)
    print(md)


if __name__ == "__main__":
    main()
