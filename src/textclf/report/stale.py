"""Outputs of approaches and ensembles that are no longer configured.

Dropping an approach (`-S '~approach@approaches.llm'`) drops its stages, so `dvc metrics show`
and the summary no longer read metrics/llm.json (DVC shows only the metrics its stages declare;
the summary reads only configured names). But DVC deletes nothing: metrics/llm.json and its
timings (git-tracked, cache: false) stay in the workspace, and a `git add -A` commits them beside
the current ones as if they were current; predictions/llm/ and models/llm/ stay on disk. This
lists them, and removes them with --remove:

    python -m textclf.report.stale            # list (exit 1 when there are some)
    python -m textclf.report.stale --remove   # delete them; then commit the deletions
"""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from textclf.core.context import (
    ENSEMBLES,
    METRICS,
    MODELS,
    PREDICTIONS,
    TIMINGS,
    TRAIN_LOGS,
    approach_names,
    ensemble_names,
    load_params,
)

# Folders with one entry per approach or ensemble (a folder each).
PER_NAME_DIRS = (TRAIN_LOGS, PREDICTIONS, ENSEMBLES, MODELS)


def configured(params: Mapping[str, Any]) -> set[str]:
    return set(approach_names(params)) | set(ensemble_names(params))


def fixed_outputs(dvc_yaml: str) -> set[str]:
    """Outputs under metrics/ of the stages that are not per approach (data, embed, summary, ...),
    read from dvc.yaml so that a new one is never taken for a leftover."""
    out = set()
    for stage in (yaml.safe_load(dvc_yaml).get("stages") or {}).values():
        if "foreach" in stage:
            continue
        for entry in (stage.get("metrics") or []) + (stage.get("outs") or []):
            path = next(iter(entry)) if isinstance(entry, dict) else entry
            if path.startswith("metrics/"):
                out.add(path)
    return out


def stale_outputs(root: Path, params: Mapping[str, Any], fixed: set[str]) -> list[Path]:
    """Paths (relative to root) of per-approach outputs whose approach or ensemble is not configured;
    `fixed` (fixed_outputs) are kept."""
    names = configured(params)
    out = []
    for f in sorted((root / METRICS).glob("*.json")):
        if f.relative_to(root).as_posix() not in fixed and f.stem not in names:
            out.append(f)
    for f in sorted((root / TIMINGS).glob("*.json")):
        stem = f.stem.split("_", 1)
        if (f.relative_to(root).as_posix() not in fixed and stem[0] in ("fit", "predict") and len(stem) == 2
                and stem[1] not in names):
            out.append(f)
    for d in PER_NAME_DIRS:
        out += [p for p in sorted((root / d).iterdir()) if p.is_dir() and p.name not in names] \
            if (root / d).is_dir() else []
    return [p.relative_to(root) for p in out]


def remove(root: Path, paths: list[Path]) -> None:
    for p in paths:
        full = root / p
        shutil.rmtree(full) if full.is_dir() else full.unlink()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--remove", action="store_true", help="delete them")
    args = parser.parse_args(argv)
    root = Path.cwd()
    paths = stale_outputs(root, load_params(root), fixed_outputs((root / "dvc.yaml").read_text()))
    for p in paths:
        print(("removed " if args.remove else "") + p.as_posix())
    if args.remove:
        remove(root, paths)
        return 0
    if paths:
        print("outputs of approaches/ensembles not configured in params.yaml; "
              "`python -m textclf.report.stale --remove` deletes them", file=sys.stderr)
    return 1 if paths else 0


if __name__ == "__main__":
    sys.exit(main())
