"""Stage `fit@<approach>`: fit one approach and write models/<approach>/, with its training
log (dvclive) in metrics/train/<approach>/."""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dvclive import Live

from textclf.approaches.base import module_for
from textclf.core.context import TRAIN_LOGS, Context, setup_logging, timing_path
from textclf.core.io import dump_json

# The per-epoch curves dvc.yaml's fit@ declares for every approach (in plots/metrics/).
CURVES = ("train_loss", "validation_macro_f1")


class TrainingLog(Live):
    """dvclive's files and nothing else: the fit@ stage declares them in dvc.yaml. Its DVC
    integration (finding or even `dvc init`-ing a repo, saving experiments, writing
    dvc.yaml) stays off: DVC runs this stage, not the other way round."""

    def _init_dvc(self) -> None:
        pass


def open_training_log(path: Path) -> TrainingLog:
    # No report, no dvc.yaml, no experiment; log_metric writes no timestamps by default.
    return TrainingLog(dir=str(path), save_dvc_exp=False, dvcyaml=None, report=None)


@contextmanager
def training_log(path: Path) -> Iterator[TrainingLog]:
    """A dvclive log at `path` for one fit: metrics.json (the summary) and plots/metrics/*.tsv
    (one row per step). On exit every curve in CURVES exists: an approach that fits in one
    shot logs no epochs, and gets zero-row curves (DVC fails on a declared output that is
    missing, and git keeps no empty folder)."""
    live = open_training_log(path)
    yield live
    live.end()
    for name in CURVES:
        tsv = Path(live.plots_dir) / "metrics" / f"{name}.tsv"
        if not tsv.exists():
            tsv.parent.mkdir(parents=True, exist_ok=True)
            tsv.write_text(f"step\t{name}\n")


@dataclass
class FitContext(Context):
    """The stage's context plus the fit's training log: approaches that train in steps log
    to `live` (read with getattr: other callers pass a plain Context)."""

    live: Any = None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("approach")
    args = parser.parse_args(argv)
    setup_logging()
    ctx = FitContext.from_cwd()
    name = args.approach
    ctx.approach(name)  # a clear error for a name that is not configured
    out_dir = ctx.model_dir(name)
    start = time.perf_counter()
    with training_log(ctx.path(TRAIN_LOGS / name)) as live:
        ctx.live = live
        module_for(ctx.settings.approaches[name].kind).fit(ctx, name, out_dir)
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    # Timings stay out of the training log: it is deterministic.
    dump_json({"fit_seconds": round(time.perf_counter() - start, 3)}, ctx.path(timing_path("fit", name)))


if __name__ == "__main__":
    main()
