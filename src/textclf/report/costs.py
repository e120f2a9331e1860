"""What each compared model cost this run (reports/summary.md and the model cards only: wall
times differ between runs, so they never go into metrics/summary.json). Read from
metrics/timings/: fit_<name>.json, predict_<name>.json and embed.json."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from textclf.core.context import EMBEDDINGS, timing_path
from textclf.core.settings import Approach
from textclf.report.collect import Spec, read_json


def timings(root: Path, name: str) -> dict[str, Any]:
    return {**read_json(root / timing_path("fit", name)), **read_json(root / timing_path("predict", name))}


def reads_embeddings(spec: Spec) -> bool:
    """An approach on data/embeddings (its cost includes the shared embedding stage's)."""
    return isinstance(spec, Approach) and spec.input == str(EMBEDDINGS)


def cost_columns(root: Path, specs: Mapping[str, Spec],
                 rows: Mapping[str, Mapping[str, Any]]) -> Callable[[str], tuple[float | None, float | None]]:
    """(training seconds, test seconds per 1,000 texts) per name. Both include the shared
    embedding stage for approaches that read data/embeddings (counted once per ensemble):
    training the embedding of the labelled splits it learns from, inference the test
    embedding rate. An ensemble's include its bases'."""
    embed_timings = read_json(root / timing_path("embed"))

    def embed_cost(names: Sequence[str], fit_splits: Sequence[str]) -> tuple[float, float]:
        if not embed_timings or not any(reads_embeddings(specs[n]) for n in names):
            return 0.0, 0.0
        train = sum(embed_timings.get(s, {}).get("seconds", 0.0) for s in fit_splits)
        t = embed_timings.get("test", {})
        return train, (1000 / t["texts_per_second"] if t.get("texts_per_second") else 0.0)

    def own(name: str) -> tuple[float | None, float | None]:
        t = timings(root, name)
        return t.get("fit_seconds"), t.get("test_seconds_per_1000")

    def cost(name: str) -> tuple[float | None, float | None]:
        spec = specs[name]
        names = [name] if isinstance(spec, Approach) else [*spec.bases, name]
        parts = [own(n) for n in names]
        if any(v is None for p in parts for v in p):
            return None, None
        e_train, e_test = embed_cost(names, str(rows[name]["labelled_splits"]).split("+"))
        return sum(p[0] for p in parts) + e_train, sum(p[1] for p in parts) + e_test

    return cost
