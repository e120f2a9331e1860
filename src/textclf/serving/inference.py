"""Classify new texts with what the pipeline trained: `textclf.load(name)` and `textclf predict`.

Every approach predicts new texts through its `predict_texts`, the same code its predict@ stage
runs on a split; an ensemble runs its bases, then its saved combiner (models/<name>/). Nothing is
retrained. Before anything loads, the run is checked cheaply against dvc.lock: the approach was
run, the params it ran with (and, for the embedding approaches, the embedder that made the
training vectors) are the workspace's, and its outputs are present.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from textclf.approaches.base import UNPARSEABLE, load_saved, module_for
from textclf.core import settings as schema
from textclf.core.context import EMBEDDER_ID, EMBEDDINGS, PREPARED, Context, load_params

LABELS_FILE = "labels.json"  # data/prepared/labels.json: the label names, in index order


class InferenceError(RuntimeError):
    """The run cannot serve predictions as it stands; the message says what to do."""


class NotRun(InferenceError):
    """The approach is not configured, or dvc.lock has no record of its stages."""


class OutputsMissing(InferenceError):
    """The approach ran, but its outputs are not in this workspace."""


class StaleRun(InferenceError):
    """The workspace's params differ from what the run recorded in dvc.lock."""


@dataclass
class Result:
    label_names: list[str]
    pred: np.ndarray  # (n,) label indices, -1 where a generative approach named no label
    scores: np.ndarray | None  # (n, n_labels), or None (label-only approaches)
    score_kind: str

    @property
    def labels(self) -> list[str | None]:
        return [None if p == UNPARSEABLE else self.label_names[p] for p in self.pred.tolist()]

    def rows(self) -> list[dict[str, Any]]:
        """One dict per text: label (index), label_name, scores ({label name: score})."""
        out = []
        for i, (p, name) in enumerate(zip(self.pred.tolist(), self.labels)):
            row: dict[str, Any] = {"label": None if p == UNPARSEABLE else p, "label_name": name}
            if self.scores is not None:
                row["scores"] = {n: float(s) for n, s in zip(self.label_names, self.scores[i])}
            out.append(row)
        return out


def find_root(start: Path | None = None) -> Path:
    """The repository holding dvc.yaml and params.yaml: `start` or the nearest folder above it."""
    start = Path(start or Path.cwd()).resolve()
    for d in (start, *start.parents):
        if (d / "dvc.yaml").is_file() and (d / "params.yaml").is_file():
            return d
    raise NotRun(f"no textclf repository (dvc.yaml + params.yaml) at or above {start}: run from the repository "
                 "or pass its folder (--repo / textclf.load(name, repo=...))")


def _param(params: Mapping[str, Any], dotted: str) -> Any:
    """The raw value at a dotted key, as dvc.lock recorded it (`<missing>`: params.yaml lacks it)."""
    try:
        return schema.lookup(params, dotted)
    except KeyError:
        return "<missing>"


def leaf_diff(recorded: Any, current: Any, key: str) -> list[tuple[str, Any, Any]]:
    """(dotted key, recorded, current) where they differ. DVC reads params.yaml as YAML 1.2 and
    PyYAML as 1.1 (`5e-05` is a float to one and a string to the other): numbers compare as numbers."""
    if isinstance(recorded, Mapping) and isinstance(current, Mapping):
        return [d for k in sorted(set(recorded) | set(current), key=str)
                for d in leaf_diff(recorded.get(k, "<missing>"), current.get(k, "<missing>"), f"{key}.{k}")]
    if isinstance(recorded, list) and isinstance(current, list) and len(recorded) == len(current):
        return [d for i, (a, b) in enumerate(zip(recorded, current)) for d in leaf_diff(a, b, f"{key}[{i}]")]
    if isinstance(recorded, bool) != isinstance(current, bool):
        return [(key, recorded, current)]
    if recorded == current:
        return []
    try:
        if not isinstance(recorded, bool) and not isinstance(current, bool) and float(recorded) == float(current):
            return []
    except (TypeError, ValueError):
        pass
    return [(key, recorded, current)]


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def stages_for(settings: schema.Params, name: str) -> list[str]:
    """The dvc.lock stages whose outputs predicting with `name` reads."""
    if name in settings.ensembles:
        return [f"ensemble@{name}"] + [s for b in settings.ensembles[name].bases for s in stages_for(settings, b)]
    # An approach whose input is the embeddings embeds new texts itself, with the run's embedder.
    embeds = ["models", "embed"] if settings.approaches[name].input == EMBEDDINGS.as_posix() else []
    return ["data", *embeds, f"fit@{name}", f"predict@{name}"]


def check_run(root: Path, params: Mapping[str, Any], name: str) -> None:
    """Refuse, saying what to do, unless `name` ran with the workspace's params and its outputs are here."""
    settings = schema.shared(params)
    configured = sorted(settings.approaches) + sorted(settings.ensembles)
    if name not in configured:
        raise NotRun(f"approach {name!r} was not run in {root}: params.yaml configures {configured}. Pick one of "
                     f"those, or add it (`dvc exp run -S '+approach@approaches.{name}={name}'`, docs/adding-an-approach.md)")
    lock_path = root / "dvc.lock"
    lock = (yaml.safe_load(lock_path.read_text()) or {}).get("stages", {}) if lock_path.is_file() else {}
    stages = list(dict.fromkeys(stages_for(settings, name)))
    for stage in stages:
        if stage not in lock:
            raise NotRun(f"{stage} has not run in {root} (not in dvc.lock): run `dvc repro {stage}` "
                         f"(or `dvc pull` after checking out a commit that ran it)")
        recorded = (lock[stage].get("params") or {}).get("params.yaml") or {}
        changed = [d for k, v in recorded.items() for d in leaf_diff(v, _param(params, k), k)]
        if changed:
            k, was, now = changed[0]
            raise StaleRun(f"params.yaml has changed since {stage} ran: {[c[0] for c in changed][:5]} (e.g. {k}: "
                           f"ran with {was!r}, now {now!r}). Its outputs no longer match the settings: run "
                           f"`dvc repro` (or restore params.yaml, e.g. `git checkout params.yaml`)")
    for stage in stages:  # outputs last: a stale run is reported as such, not as missing files
        for out in lock[stage].get("outs") or []:
            path = root / out["path"]
            if not path.exists() and not out["path"].startswith(("metrics/", "plots")):
                raise OutputsMissing(f"{path} is missing (an output of {stage}): run `dvc pull` to fetch the run's "
                                     f"outputs, or `dvc repro {stage}` to make them")
    if "embed" in stages:
        # The embedder that made the training vectors is the one new texts get.
        recorded = next((d.get("md5") for d in lock["embed"].get("deps") or [] if d["path"] == EMBEDDER_ID.as_posix()),
                        None)
        if recorded != _md5(root / EMBEDDER_ID):
            raise StaleRun(f"{root / EMBEDDER_ID} is not the embedder the `embed` stage ran with (dvc.lock): "
                           "run `dvc repro` (or `dvc checkout models/embedder.json`)")
        ident = json.loads((root / EMBEDDER_ID).read_text())
        want = {"name": settings.embedder.name, "sha256": settings.embedder.sha256}
        if {k: ident.get(k) for k in want} != want:
            raise StaleRun(f"{root / EMBEDDER_ID} names {ident.get('name')} ({ident.get('sha256')}), params.yaml's "
                           f"embedder is {want['name']} ({want['sha256']}): run `dvc repro`")


class Classifier:
    """One approach or ensemble of a run, ready to label texts: `predict(texts)`."""

    def __init__(self, ctx: Context, name: str):
        self.ctx, self.name = ctx, name
        self.ensemble = name in schema.shared(ctx.params).ensembles
        self.label_names = list(ctx.label_names)

    def __repr__(self) -> str:
        return f"textclf.Classifier({self.name!r}, repo={str(self.ctx.root)!r}, labels={self.label_names})"

    def _approach(self, name: str, texts: list[str], progress: bool):
        module = module_for(self.ctx.settings.approaches[name].kind)
        return module.predict_texts(self.ctx, name, self.ctx.model_dir(name), texts, progress=progress)

    def predict(self, texts: Sequence[str], progress: bool = False) -> Result:
        texts = [texts] if isinstance(texts, str) else list(texts)
        if not texts:
            return Result(self.label_names, np.zeros(0, dtype=np.int64), None, "probability")
        bad = [i for i, t in enumerate(texts) if not isinstance(t, str) or not t.strip()]
        if bad:
            raise ValueError(f"texts at positions {bad[:10]} are empty or not strings: nothing to classify "
                             "(the CLI skips and counts them with --on-empty-text drop)")
        if not self.ensemble:
            p = self._approach(self.name, texts, progress)
            return Result(self.label_names, p.pred, p.scores, p.score_kind)
        from textclf.evaluation import ensemble as ens

        model_dir = self.ctx.model_dir(self.name)
        meta = json.loads((model_dir / "meta.json").read_text())
        model = None  # none was fitted when the stack was left out (meta.json says why: stack_skipped)
        if "stack_skipped" not in meta:
            model = load_saved(model_dir / "meta.joblib", f"ensemble@{self.name}")  # before the bases' slow predictions
        base_preds = {}
        for part in meta["bases"]:
            p = self._approach(part["base"], texts, progress)
            base_preds[part["base"]] = (p.pred, p.scores)
        pred, scores = ens.apply_saved(self.ctx.root, self.name, meta, model,
                                       base_preds, len(self.label_names), self.ctx.split(ens.TRAIN_SPLIT).labels)
        return Result(self.label_names, np.asarray(pred, dtype=np.int64), scores, "probability")


def load(name: str, repo: str | Path | None = None) -> Classifier:
    """The approach (or ensemble) `name` as the run in `repo` (default: the repository around the
    current folder) trained it. Raises NotRun / StaleRun / OutputsMissing saying what to do."""
    root = find_root(Path(repo) if repo else None)
    params = load_params(root)
    check_run(root, params, name)
    if not (root / PREPARED / LABELS_FILE).is_file():
        raise OutputsMissing(f"{root / PREPARED / LABELS_FILE} is missing: run `dvc pull` or `dvc repro data`")
    return Classifier(Context(root, params), name)
