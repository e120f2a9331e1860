"""Prepare a text-classification dataset: load it (load.py: hub or local mirror), validate it
(validate.py: the policies), then carve a validation split if there is none, apply the row
limits (seeded, stratified samples) and report what was kept and dropped.

Any dataset of the same shape works through config alone: a text column, a label column holding
integer indices into `label_names` or the label names themselves. With `label_names` null the
label set is inferred (validate.infer_label_names) and reported.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from textclf.core.settings import Data, typed
from textclf.data.load import load_raw
from textclf.data.prepared import SPLITS, stratified_indices
from textclf.data.validate import (
    DataError,
    Report,
    Split,
    count_duplicates_within,
    infer_label_names,
    resolve_cross_split_duplicates,
    validate_split,
)

__all__ = ["DataError", "Report", "Split", "carve_validation", "prepare", "stratified_take"]

log = logging.getLogger(__name__)


def stratified_take(split: Split, n: int | None, seed: int) -> Split:
    """A seeded, class-stratified sample of n rows (all rows when n is None or too big):
    prepared.stratified_indices."""
    if n is None or n >= len(split.texts):
        return split
    take = stratified_indices(split.labels, n, seed)
    return Split([split.texts[i] for i in take], [split.labels[i] for i in take], split.origin,
                 [split.rows[i] for i in take])


def carve_validation(train: Split, fraction: float, seed: int) -> tuple[Split, Split]:
    """A stratified, seeded `fraction` of train as validation. Copies of one text stay on
    the same side (the side of its first occurrence): a validation row must not be a
    training row too."""
    from sklearn.model_selection import train_test_split

    first: dict[str, int] = {}
    owner = [first.setdefault(t, i) for i, t in enumerate(train.texts)]
    uniq = np.asarray(sorted(set(owner)))
    tr_u, va_u = train_test_split(uniq, test_size=fraction, stratify=[train.labels[i] for i in uniq],
                                  random_state=seed)
    to_val = set(va_u.tolist())
    va = [i for i in range(len(owner)) if owner[i] in to_val]
    tr = [i for i in range(len(owner)) if owner[i] not in to_val]
    pick = lambda ids, tag: Split(  # noqa: E731
        [train.texts[i] for i in sorted(ids)], [train.labels[i] for i in sorted(ids)],
        f"{train.origin} ({tag})", [train.rows[i] for i in sorted(ids)])
    return pick(tr, "train part"), pick(va, "validation part")


def prepare(cfg: Data | Mapping[str, Any], root: Path, seed: int) -> tuple[dict[str, Split], Report]:
    """The prepared splits and the report (metrics/data.json). `cfg`: the typed `data` group
    (ctx.settings.data), or a mapping of it (typed here, e.g. a test's or a script's dict)."""
    if not isinstance(cfg, Data):
        cfg = typed(Data, cfg, "data config", "data")
    raw, source = load_raw(cfg, root)
    names, names_from = infer_label_names(raw, cfg)
    if names_from != "config":
        log.info("data.label_names is null: %d label names inferred (%s): %s", len(names), names_from, names)
    cfg = replace(cfg, label_names=names)
    report = Report(source=source, label_names=names, label_names_from=names_from)
    splits = {name: validate_split(ds, name, origin, cfg, report) for name, (ds, origin) in raw.items()}
    count_duplicates_within(splits, report)
    resolve_cross_split_duplicates(splits, cfg.on_cross_split_duplicate, report)
    if "validation" not in splits:
        if not cfg.validation_fraction:
            raise DataError("No validation split: set data.splits.validation or data.validation_fraction.")
        splits["train"], splits["validation"] = carve_validation(splits["train"], cfg.validation_fraction, seed)
    for name in SPLITS:
        splits[name] = stratified_take(splits[name], getattr(cfg.limits, name), seed)
        report.add(name, "rows", len(splits[name].texts))
        present = set(splits[name].labels)
        if name == "train" and len(present) < len(names):
            absent = [n for i, n in enumerate(names) if i not in present]
            raise DataError(f"train split has no rows for label(s) {absent}: every approach needs each class")
    return splits, report
