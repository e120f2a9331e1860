"""Load a text-classification dataset (hub or local mirror), validate it, and prepare
the splits the rest of the pipeline reads.

Any dataset of the same shape works through config alone: a text column, a label
column holding integer indices into `label_names` or the label names themselves. With
`label_names` null the label set is inferred (infer_label_names) and reported.
Bad input either stops the run with an error naming the file and row, or, where the
config says `drop`, is removed and counted in the report; nothing is dropped silently.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import datasets
import numpy as np

from textclf.runtime.hub import hub_reachable
from textclf.data.prepared import SPLITS

log = logging.getLogger(__name__)

EXTENSIONS = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet"}
POLICIES = {"error", "drop"}
DUP_POLICIES = {"error", "drop", "keep"}


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


# ---------------------------------------------------------------- loading

def find_split_file(local_dir: Path, name: str) -> Path:
    hits = [local_dir / f"{name}{ext}" for ext in EXTENSIONS if (local_dir / f"{name}{ext}").is_file()]
    if not hits:
        raise DataError(
            f"No file for split '{name}' in {local_dir} (looked for {name}"
            f"{{{','.join(EXTENSIONS)}}}). Set data.local_dir or data.splits."
        )
    if len(hits) > 1:
        raise DataError(f"Several files for split '{name}' in {local_dir}: {[h.name for h in hits]}")
    return hits[0]


def check_utf8(path: Path) -> None:
    """Raise naming the line when a text file holds bytes that are not UTF-8
    (pyarrow's own error names neither file nor row)."""
    if EXTENSIONS[path.suffix] == "parquet":
        return
    with path.open("rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise DataError(
                    f"{path}:{lineno}: bytes that are not valid UTF-8 ({exc.reason} at byte "
                    f"{exc.start}: {raw[max(0, exc.start - 10):exc.start + 10]!r}). Re-encode the file as UTF-8."
                ) from None


def first_bad_json_line(path: Path) -> str:
    """':<line>' of the first JSON Lines record that does not parse (pyarrow names a byte
    position only), or '' when every line parses."""
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if line.strip():
                try:
                    json.loads(line)
                except json.JSONDecodeError:
                    return f":{lineno}"
    return ""


def read_file(path: Path) -> datasets.Dataset:
    """One JSONL/JSON/CSV/Parquet file as a Dataset; errors name the file (and line)."""
    if path.suffix not in EXTENSIONS:
        raise DataError(f"{path}: unknown file type {path.suffix!r}; use one of {sorted(EXTENSIONS)}")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: the file is empty")
    check_utf8(path)
    kind = EXTENSIONS[path.suffix]
    try:
        # pandas reads the cells "NA", "null", "None", "nan"... as missing: a review saying
        # "None" would become an empty text. Only an empty cell is missing.
        csv = {"keep_default_na": False, "na_values": [""]} if kind == "csv" else {}
        return datasets.load_dataset(kind, data_files=str(path), split="train", **csv)
    except Exception as exc:  # pyarrow / json errors: add the file name (and the line)
        where = first_bad_json_line(path) if kind == "json" else ""
        raise DataError(f"{path}{where}: could not be read as {kind}: {exc}") from exc


def load_local(local_dir: Path, split_files: Mapping[str, str]) -> dict[str, tuple[datasets.Dataset, str]]:
    out = {}
    for split, name in split_files.items():
        path = find_split_file(local_dir, name)
        if path.stat().st_size == 0:
            raise DataError(f"{path}: the file is empty (split '{split}'). Put its rows there or fix data.splits.")
        out[split] = (read_file(path), str(path))
    return out


def load_hub(hub_id: str, revision: str | None, split_files: Mapping[str, str]) -> dict[str, tuple[datasets.Dataset, str]]:
    return {
        split: (datasets.load_dataset(hub_id, split=name, revision=revision), f"hub:{hub_id}[{name}]")
        for split, name in split_files.items()
    }


def hub_commit(hub_id: str, revision: str | None) -> str:
    """The commit a hub revision (a branch such as main, a tag, or None) points at now. The
    data stage records it in metrics/data.json: the hub is not a file DVC can hash, so a
    moved revision shows up as a changed `source` in `dvc metrics diff` / git diff."""
    from huggingface_hub import HfApi

    return HfApi().dataset_info(hub_id, revision=revision).sha


def load_raw(cfg: Mapping[str, Any], root: Path) -> tuple[dict[str, tuple[datasets.Dataset, str]], str]:
    """The configured splits as `datasets.Dataset`s, and which source was used."""
    split_files = {s: n for s, n in cfg["splits"].items() if n}
    if "train" not in split_files or "test" not in split_files:
        raise DataError("data.splits must name at least a train and a test split")
    source = cfg.get("source", "auto")
    if source not in {"auto", "hub", "local"}:
        raise DataError(f"data.source must be auto, hub or local, not {source!r}")
    local_dir = cfg.get("local_dir")
    local = (root / local_dir).resolve() if local_dir else None
    if source == "hub" or (source == "auto" and cfg.get("hub_id") and hub_reachable()):
        try:
            loaded = load_hub(cfg["hub_id"], cfg.get("hub_revision"), split_files)
            return loaded, f"hub:{cfg['hub_id']}@{hub_commit(cfg['hub_id'], cfg.get('hub_revision'))}"
        except Exception as exc:
            if source == "hub" or not local:
                raise
            log.warning("Loading %s from the hub failed (%s); using %s", cfg["hub_id"], exc, local)
    if not local:
        raise DataError("The hub is not reachable and data.local_dir is not set: set it to a local mirror.")
    if not local.is_dir():
        raise DataError(f"data.local_dir {local} does not exist (and the hub was not used).")
    return load_local(local, split_files), "local"


# ---------------------------------------------------------------- label set

def check_columns(ds: datasets.Dataset, origin: str, cfg: Mapping[str, Any]) -> None:
    missing = [c for c in (cfg["text_column"], cfg["label_column"]) if c not in ds.column_names]
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


def infer_label_names(raw: Mapping[str, tuple[datasets.Dataset, str]], cfg: Mapping[str, Any]) -> tuple[list[str], str]:
    """The label set and where it came from: `config` (data.label_names as given), else
    `ClassLabel` (the label feature's names, the same in every split), else
    `distinct strings` (the sorted distinct labels of all splits). Integer labels carry no
    names: an error says to declare them."""
    if cfg.get("label_names"):  # YAML reads [1, 2, 3] as ints: names are strings
        return [str(n) for n in cfg["label_names"]], "config"
    label_col = cfg["label_column"]
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
        raise DataError(f"Column {label_col!r} has {len(values)} distinct label(s) {sorted(values)}: a classifier needs two or more.")
    return sorted(values), "distinct strings"


# ---------------------------------------------------------------- validation

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


def validate_split(
    ds: datasets.Dataset, split: str, origin: str, cfg: Mapping[str, Any], report: Report
) -> Split:
    check_columns(ds, origin, cfg)
    text_col, label_col = cfg["text_column"], cfg["label_column"]
    # A ClassLabel feature stores indices; its names must agree with the declared set.
    feature = ds.features[label_col]
    if isinstance(feature, datasets.ClassLabel) and list(feature.names) != list(cfg["label_names"]):
        raise DataError(f"{origin}: label names {feature.names} differ from data.label_names {cfg['label_names']}")
    label_names = [str(n) for n in cfg["label_names"]]
    by_name = not isinstance(feature, datasets.ClassLabel) and numeric_names(label_names)
    texts, labels, rows = [], [], []
    for i, (text, raw) in enumerate(zip(ds[text_col], ds[label_col]), start=1):
        problem = None
        if is_empty_text(text):
            problem, policy = "empty_text", cfg["on_empty_text"]
            detail = (f"text {text!r} is of type {type(text).__name__}, not a string" if text is not None and not isinstance(text, str)
                      else f"empty or whitespace-only text {text!r}")
        elif raw is None:
            problem, policy = "null_label", cfg["on_null_label"]
            detail = "null label"
        elif (label := _label_index(raw, label_names, by_name)) is None:
            problem, policy = "unknown_label", cfg["on_unknown_label"]
            detail = f"label {raw!r} is not in data.label_names {label_names}" + (
                " (the names are numbers, so labels are matched by name, not read as indices)" if by_name else "")
        if problem:
            if policy not in POLICIES:
                raise DataError(f"data.on_{problem} must be one of {sorted(POLICIES)}, not {policy!r}")
            if policy == "error":
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


def resolve_cross_split_duplicates(splits: dict[str, Split], policy: str, report: Report) -> None:
    """Exact duplicate texts across splits leak labels into evaluation."""
    if policy not in DUP_POLICIES:
        raise DataError(f"data.on_cross_split_duplicate must be one of {sorted(DUP_POLICIES)}, not {policy!r}")
    seen: dict[str, tuple[str, int]] = {}
    for name in [s for s in SPLITS if s in splits]:
        sp = splits[name]
        keep = []
        for j, text in enumerate(sp.texts):
            if text in seen and seen[text][0] != name:
                first, row = seen[text]
                if policy == "error":
                    raise DataError(
                        f"{sp.origin}: row {sp.rows[j]}: exact duplicate of {splits[first].origin} row {row} "
                        f"({text[:60]!r}). Set data.on_cross_split_duplicate=drop or keep."
                    )
                report.add(name, f"cross_split_duplicates_{'dropped' if policy == 'drop' else 'kept'}")
                if policy == "drop":
                    continue
            seen.setdefault(text, (name, sp.rows[j]))
            keep.append(j)
        if len(keep) != len(sp.texts):
            sp.texts = [sp.texts[j] for j in keep]
            sp.labels = [sp.labels[j] for j in keep]
            sp.rows = [sp.rows[j] for j in keep]


def stratified_take(split: Split, n: int | None, seed: int) -> Split:
    """A seeded, class-stratified sample of n rows (all rows when n is None or too big)."""
    if n is None or n >= len(split.texts):
        return split
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(split.texts))
    strat = split.labels if min(np.bincount(split.labels)) >= 2 else None
    take, _ = train_test_split(idx, train_size=n, stratify=strat, random_state=seed)
    take = sorted(take.tolist())
    return Split([split.texts[i] for i in take], [split.labels[i] for i in take], split.origin,
                 [split.rows[i] for i in take])


def count_duplicates_within(splits: Mapping[str, Split], report: Report) -> None:
    """Rows that repeat an earlier row's text in the same split (kept: a dataset may repeat a
    text on purpose; counted, so it shows in metrics/data.json)."""
    for name, sp in splits.items():
        report.add(name, "duplicates_within_split", len(sp.texts) - len(set(sp.texts)))


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


def prepare(cfg: Mapping[str, Any], root: Path, seed: int) -> tuple[dict[str, Split], Report]:
    raw, source = load_raw(cfg, root)
    names, names_from = infer_label_names(raw, cfg)
    if names_from != "config":
        log.info("data.label_names is null: %d label names inferred (%s): %s", len(names), names_from, names)
    cfg = {**cfg, "label_names": names}
    report = Report(source=source, label_names=names, label_names_from=names_from)
    splits = {name: validate_split(ds, name, origin, cfg, report) for name, (ds, origin) in raw.items()}
    count_duplicates_within(splits, report)
    resolve_cross_split_duplicates(splits, cfg.get("on_cross_split_duplicate", "error"), report)
    if "validation" not in splits:
        frac = cfg.get("validation_fraction")
        if not frac:
            raise DataError("No validation split: set data.splits.validation or data.validation_fraction.")
        splits["train"], splits["validation"] = carve_validation(splits["train"], float(frac), seed)
    limits = cfg.get("limits") or {}
    for name in SPLITS:
        splits[name] = stratified_take(splits[name], limits.get(name), seed)
        report.add(name, "rows", len(splits[name].texts))
        present = set(splits[name].labels)
        if name == "train" and len(present) < len(cfg["label_names"]):
            absent = [n for i, n in enumerate(cfg["label_names"]) if i not in present]
            raise DataError(f"train split has no rows for label(s) {absent}: every approach needs each class")
    return splits, report
