"""The prepared splits every later stage reads: data/prepared/{train,validation,test}.jsonl
(one {"text", "label"} object per line, labels as indices) and labels.json.

Kept apart from load.py, validate.py and prepare.py so that stages which only read prepared
data do not depend on the loader's code: an edit there reruns `data` alone, and what
follows only if data/prepared changes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

SPLITS = ("train", "validation", "test")


def write_prepared(splits: Mapping[str, Any], label_names: list[str], out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)

    def write(path: Path, text: str) -> None:  # temp + rename: never a truncated split
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)

    for name, sp in splits.items():
        write(out_dir / f"{name}.jsonl", "".join(json.dumps({"text": t, "label": y}, ensure_ascii=False) + "\n"
                                                 for t, y in zip(sp.texts, sp.labels)))
    write(out_dir / "labels.json", json.dumps({"label_names": list(label_names)}, indent=2) + "\n")


@dataclass
class Prepared:
    texts: list[str]
    labels: np.ndarray


def read_split(prepared_dir: Path, split: str) -> Prepared:
    texts, labels = [], []
    with (prepared_dir / f"{split}.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            texts.append(row["text"])
            labels.append(row["label"])
    return Prepared(texts, np.asarray(labels, dtype=np.int64))


def read_label_names(prepared_dir: Path) -> list[str]:
    return json.loads((prepared_dir / "labels.json").read_text())["label_names"]


def label_words(label_names: Sequence[str], words: Mapping[str, str] | None) -> list[str]:
    """What zero-shot approaches call each label (the LLM's answers, label_desc's template):
    data.label_words[name] where given, else the name. Labels whose names are jargon (`ham`)
    get words a model knows (`a personal message`); the prepared data keeps the names."""
    words = dict(words or {})
    unknown = sorted(set(words) - set(label_names))
    if unknown:
        raise ValueError(f"data.label_words: {unknown} are not labels of this dataset ({list(label_names)[:10]}"
                         f"{' ...' if len(label_names) > 10 else ''}); map label names to words.")
    bad = {k: v for k, v in words.items() if not isinstance(v, str) or not v.strip()}
    if bad:
        raise ValueError(f"data.label_words: {bad} need non-empty strings")
    out = [words[name].strip() if name in words else name for name in label_names]
    clash = sorted({w for w in out if out.count(w) > 1})
    if clash:
        raise ValueError(f"data.label_words: {clash} would name two labels; each label needs its own words")
    return out


def stratified_indices(labels: Sequence[int], n: int, seed: int) -> list[int]:
    """Sorted indices of a seeded, class-stratified sample of n of these labels (all when n is
    not smaller). Every class present keeps at least one row when n allows it: a proportional
    share rounds a class of 3 rows in 4,849 to none in a sample of 400 (TREC's rarest types), and
    the data stage then stops on a train split without that class. Classes with a single row
    cannot be stratified by sklearn: they are set aside and topped up like the rest. Here, beside
    the prepared splits, so that task_specific (finetune.max_train_rows) samples them the same way."""
    if n >= len(labels):
        return list(range(len(labels)))
    from sklearn.model_selection import train_test_split

    labels = np.asarray(labels)
    counts = np.bincount(labels)
    present = np.flatnonzero(counts)
    single = np.isin(labels, np.flatnonzero(counts == 1))
    idx = np.flatnonzero(~single)
    if len(idx) > n:
        take, _ = train_test_split(idx, train_size=n, stratify=labels[idx], random_state=seed)
    else:
        take = idx
    take = take.tolist()
    if n >= len(present):
        rng = np.random.default_rng(seed)
        missing = sorted(set(present.tolist()) - set(labels[take].tolist()))
        for label in missing:
            if len(take) >= n:  # one row of the missing class in place of one of the most represented class's
                have = np.bincount(labels[take], minlength=len(counts))
                donor = int(np.argmax(have))
                take.remove(max(i for i in take if labels[i] == donor))
            take.append(int(rng.choice(np.flatnonzero(labels == label))))
    return sorted(take)
