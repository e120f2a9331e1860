"""Validating a dataset's rows against the data config's policies: the columns, the label set
(declared or inferred), empty texts, null or unknown labels, duplicates within and across splits.
Bad input either stops the run with an error naming the file and row, or, where the config says
`drop`, is removed and counted in the report; nothing is dropped silently."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import datasets
import numpy as np

from textclf.core.settings import Data, DupPolicy, Policy
from textclf.data.prepared import SPLITS


class DataError(ValueError):
    """Input data that the configured policies do not allow."""


@dataclass
class Split:
    texts: list[str]
    labels: list[int]
    origin: str  # file path or hub split, for messages
    rows: list[int] = field(default_factory=list)  # 1-based source rows kept


@dataclass
class Report:
    source: str = ""
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    label_names: list[str] = field(default_factory=list)
    label_names_from: str = ""  # config | ClassLabel | distinct strings

    def add(self, split: str, key: str, n: int = 1) -> None:
        self.counts.setdefault(split, {}).setdefault(key, 0)
        self.counts[split][key] += n


# ---------------------------------------------------------------- the label set

def check_columns(ds: datasets.Dataset, origin: str, cfg: Data) -> None:
    missing = [c for c in (cfg.text_column, cfg.label_column) if c not in ds.column_names]
    if missing:
        raise DataError(
            f"{origin}: missing column(s) {missing}; found {ds.column_names}. "
            "Set data.text_column / data.label_column."
        )


def _is_integer(value: Any) -> bool:
    """An index rather than a name (as _label_index reads it): 3, 3.0, "3"."""
    if isinstance(value, str):
        return value.strip().lstrip("-").isdigit()
    if isinstance(value, float):
        return value.is_integer()
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def infer_label_names(raw: Mapping[str, tuple[datasets.Dataset, str]], cfg: Data) -> tuple[list[str], str]:
    """The label set and where it came from: `config` (data.label_names as given), else
    `ClassLabel` (the label feature's names, the same in every split), else
    `distinct strings` (the sorted distinct labels of all splits). Integer labels carry no
    names: an error says to declare them."""
    if cfg.label_names:  # typed as strings: YAML's [1, 2, 3] arrives as "1", "2", "3"
        return [str(n) for n in cfg.label_names], "config"
    label_col = cfg.label_column
    for ds, origin in raw.values():
        check_columns(ds, origin, cfg)
    class_labels = {origin: list(ds.features[label_col].names) for ds, origin in raw.values()
                    if isinstance(ds.features[label_col], datasets.ClassLabel)}
    if class_labels:
        distinct = {tuple(n) for n in class_labels.values()}
        if len(distinct) > 1 or len(class_labels) < len(raw):
            raise DataError(f"The label column's ClassLabel names differ between splits ({class_labels}, "
                            f"{len(class_labels)} of {len(raw)} splits have one): set data.label_names.")
        return list(distinct.pop()), "ClassLabel"
    values = {v for ds, _ in raw.values() for v in ds[label_col] if v is not None}
    integers = sorted(str(v) for v in values if _is_integer(v))
    if integers:
        raise DataError(
            f"Column {label_col!r} holds integer labels ({', '.join(integers[:5])}{', ...' if len(integers) > 5 else ''}) "
            "and no label names: set data.label_names to the names in index order, e.g. [negative, positive]."
        )
    if not all(isinstance(v, str) for v in values):
        odd = sorted({type(v).__name__ for v in values if not isinstance(v, str)})
        raise DataError(f"Column {label_col!r} holds {odd} labels: set data.label_names, or store labels as strings.")
    if len(values) < 2:
        raise DataError(f"Column {label_col!r} has {len(values)} distinct label(s) {sorted(values)}: "
                        "a classifier needs two or more.")
    return sorted(values), "distinct strings"


# ---------------------------------------------------------------- the rows

def numeric_names(label_names: list[str]) -> bool:
    """Label names that are numbers ("1".."5" stars): a raw 1 could be the name "1" or index 1.
    Such labels are matched by name only (1, 1.0 and "1" all mean "1"), never read as indices,
    unless the column is a ClassLabel (whose values are always indices)."""
    return any(_is_integer(n) for n in label_names)


def _label_index(value: Any, label_names: list[str], by_name: bool = False) -> int | None:
    """Map a raw label (index or name) onto the declared label set; None if outside it."""
    if isinstance(value, bool):
        return None
    if by_name:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        key = str(int(value)) if isinstance(value, (int, np.integer)) else value.strip() if isinstance(value, str) else None
        return label_names.index(key) if key in label_names else None
    if isinstance(value, (int, np.integer)):
        return int(value) if 0 <= value < len(label_names) else None
    if isinstance(value, float) and value.is_integer():
        return _label_index(int(value), label_names)
    if isinstance(value, str):
        if value in label_names:
            return label_names.index(value)
        if value.strip().lstrip("-").isdigit():
            return _label_index(int(value), label_names)
    return None


def is_empty_text(text: Any) -> bool:
    """A row with nothing to classify (data.on_empty_text decides: error or drop)."""
    return text is None or not isinstance(text, str) or not text.strip()


def validate_split(ds: datasets.Dataset, split: str, origin: str, cfg: Data, report: Report) -> Split:
    """The split's rows that pass the policies (cfg.label_names: the label set, declared or inferred)."""
    check_columns(ds, origin, cfg)
    text_col, label_col = cfg.text_column, cfg.label_column
    # A ClassLabel feature stores indices; its names must agree with the declared set.
    feature = ds.features[label_col]
    if isinstance(feature, datasets.ClassLabel) and list(feature.names) != list(cfg.label_names):
        raise DataError(f"{origin}: label names {feature.names} differ from data.label_names {cfg.label_names}")
    label_names = [str(n) for n in cfg.label_names]
    by_name = not isinstance(feature, datasets.ClassLabel) and numeric_names(label_names)
    texts, labels, rows = [], [], []
    for i, (text, raw) in enumerate(zip(ds[text_col], ds[label_col]), start=1):
        problem = None
        if is_empty_text(text):
            problem, policy = "empty_text", cfg.on_empty_text
            not_str = text is not None and not isinstance(text, str)
            detail = (f"text {text!r} is of type {type(text).__name__}, not a string" if not_str
                      else f"empty or whitespace-only text {text!r}")
        elif raw is None:
            problem, policy = "null_label", cfg.on_null_label
            detail = "null label"
        elif (label := _label_index(raw, label_names, by_name)) is None:
            problem, policy = "unknown_label", cfg.on_unknown_label
            detail = f"label {raw!r} is not in data.label_names {label_names}" + (
                " (the names are numbers, so labels are matched by name, not read as indices)" if by_name else "")
        if problem:
            if policy is Policy.error:
                raise DataError(
                    f"{origin}: row {i}: {detail}. Fix the data or set data.on_{problem}=drop to drop such rows."
                )
            report.add(split, f"dropped_{problem}")
            continue
        texts.append(text)
        labels.append(label)
        rows.append(i)
    report.add(split, "rows_read", len(ds))
    return Split(texts, labels, origin, rows)


def resolve_cross_split_duplicates(splits: dict[str, Split], policy: DupPolicy, report: Report) -> None:
    """Exact duplicate texts across splits leak labels into evaluation."""
    seen: dict[str, tuple[str, int]] = {}
    for name in [s for s in SPLITS if s in splits]:
        sp = splits[name]
        keep = []
        for j, text in enumerate(sp.texts):
            if text in seen and seen[text][0] != name:
                first, row = seen[text]
                if policy is DupPolicy.error:
                    raise DataError(
                        f"{sp.origin}: row {sp.rows[j]}: exact duplicate of {splits[first].origin} row {row} "
                        f"({text[:60]!r}). Set data.on_cross_split_duplicate=drop or keep."
                    )
                report.add(name, f"cross_split_duplicates_{'dropped' if policy is DupPolicy.drop else 'kept'}")
                if policy is DupPolicy.drop:
                    continue
            seen.setdefault(text, (name, sp.rows[j]))
            keep.append(j)
        if len(keep) != len(sp.texts):
            sp.texts = [sp.texts[j] for j in keep]
            sp.labels = [sp.labels[j] for j in keep]
            sp.rows = [sp.rows[j] for j in keep]


def count_duplicates_within(splits: Mapping[str, Split], report: Report) -> None:
    """Rows that repeat an earlier row's text in the same split (kept: a dataset may repeat a
    text on purpose; counted, so it shows in metrics/data.json)."""
    for name, sp in splits.items():
        report.add(name, "duplicates_within_split", len(sp.texts) - len(set(sp.texts)))
