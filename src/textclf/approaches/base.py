"""One module (or package) per approach, each with the same small interface, `Approach`.

`name` is the approach's key under `approaches` in params; its `kind` picks the module
through `KINDS`. Its code paths are declared in conf/approach/<name>.yaml (`code`), so an
edit to one approach reruns only that approach's stages.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol, runtime_checkable

import numpy as np

UNPARSEABLE = -1  # a prediction that maps to no label (generative approaches)

# kind -> its package: `<package>.approach` is the module (the Approach interface), and
# `<package>.settings` defines `Settings` when the kind has a settings group of its own.
KINDS = {
    "embed_lr": "textclf.approaches.embed_lr",
    "centroid": "textclf.approaches.centroid",
    "label_desc": "textclf.approaches.label_desc",
    "task_specific": "textclf.approaches.task_specific",
    "text2text": "textclf.approaches.text2text",
    "llm": "textclf.approaches.llm",
}


@dataclass
class Prediction:
    pred: np.ndarray  # (n,) label indices, UNPARSEABLE where no label was produced
    scores: np.ndarray | None = None  # (n, n_labels) probabilities or similarities
    score_kind: str = "probability"  # or "similarity"
    info: dict | None = None  # approach-specific, deterministic: merged into metrics/<name>.json
    timings: dict | None = None  # approach-specific, run-dependent: into metrics/timings/


@dataclass(frozen=True)
class Labelled:
    """The labelled data an approach learns from, for the summary: whole splits, plus rows
    taken one by one (e.g. few-shot examples)."""
    splits: tuple[str, ...] = ()
    rows: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"splits": list(self.splits), "rows": self.rows}


@runtime_checkable
class Approach(Protocol):
    """What every module in KINDS provides."""

    def fit(self, ctx, name: str, out_dir: Path) -> None:
        """Write what predict needs into out_dir (models/<name>/)."""

    def predict(self, ctx, name: str, model_dir: Path, split: str) -> Prediction:
        """Scores and labels for one prepared split: a thin wrapper over predict_texts (or, for the
        embedding approaches, over the same scoring of the split's cached vectors)."""

    def predict_texts(self, ctx, name: str, model_dir: Path, texts: Sequence[str], progress: bool = True) -> Prediction:
        """Scores and labels for any texts, from what fit() saved (the CLI and textclf.load)."""

    def labelled(self, params: Mapping[str, Any], name: str) -> Labelled:
        """The labelled data fit() uses under these params."""


def _package(kind: str) -> str:
    if kind not in KINDS:
        raise KeyError(f"unknown approach kind {kind!r}; known kinds: {sorted(KINDS)}")
    return KINDS[kind]


def module_for(kind: str) -> Approach:
    module: ModuleType = importlib.import_module(f"{_package(kind)}.approach")
    return module  # type: ignore[return-value]  # a module satisfying Approach (tested)


def settings_class(kind: str) -> type | None:
    """The dataclass of a kind's own settings group (`<package>.settings.Settings`), or None for a
    kind that reads only shared groups (centroid: `seed`; label_desc: `data`)."""
    package = _package(kind)
    if importlib.util.find_spec(f"{package}.settings") is None:
        return None
    return importlib.import_module(f"{package}.settings").Settings


def load_saved(path: Path, stage: str) -> Any:
    """A model saved with joblib by `stage` (e.g. fit@embed_lr). A damaged file (a write cut short,
    a bad copy) fails with its path and the command that rebuilds it, not a bare unpickling error."""
    import joblib

    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run `dvc repro {stage}` (or `dvc pull`)")
    try:
        return joblib.load(path)
    except Exception as exc:  # noqa: BLE001 - unpickling raises many kinds (EOFError, KeyError, UnpicklingError...)
        raise RuntimeError(f"{path} is damaged or unreadable ({type(exc).__name__}: {exc}): rebuild it with "
                           f"`dvc repro -f {stage}` (or restore it with `dvc checkout {path}`).") from None


META = "textclf.json"  # models/<name>/textclf.json: what predict needs besides a model's own files


def load_meta(model_dir: Path, name: str, label_names: Sequence[str], error: type[Exception] = ValueError) -> dict[str, Any]:
    """models/<name>/textclf.json, checked against the data's labels: a model fit for other labels
    fails with `error` and the command that refits it."""
    import json

    path = model_dir / META
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run `dvc repro fit@{name}` (or `dvc pull`)")
    meta = json.loads(path.read_text())
    if meta["dataset_labels"] != list(label_names):
        raise error(f"{model_dir} was fit for labels {meta['dataset_labels']}, the data has "
                    f"{list(label_names)}: rerun `dvc repro fit@{name}`")
    return meta


def argmax_prediction(scores: np.ndarray, score_kind: str) -> Prediction:
    scores = np.asarray(scores, dtype=np.float64)
    return Prediction(scores.argmax(axis=1).astype(np.int64), scores, score_kind)


# Shared by the zero-shot approaches: cosine similarity to one reference vector per class.

def unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.clip(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12, None)


def cosine_predict(embeddings: np.ndarray, references: np.ndarray) -> Prediction:
    return argmax_prediction(unit(embeddings) @ unit(references).T, "similarity")
