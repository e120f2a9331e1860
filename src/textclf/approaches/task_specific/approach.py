"""Task-specific classifier: a Hugging Face sequence-classification model run through
`transformers.pipeline("text-classification", top_k=None)`, its labels mapped onto the
dataset's by config.

`fit` writes models/<name>/ in Hugging Face format, by one of two modes:
  - finetune:   `base` (a model spec, see resolve.py) fine-tuned on train with a new
                classification head, checkpoint picked on validation (finetune.py);
  - pretrained: `model` (a hub id or a local folder, as a model spec) saved as it is.
`predict` loads models/<name>/ through the same pipeline code whichever mode made it.

Label mapping (settings `labels`): `map` sends model labels to dataset labels, `ignore`
lists model labels to drop (their probability mass is removed and the rest
renormalised: the seed's argmax of negative vs positive, neutral dropped). `map: null`
means the model's labels are the dataset's names. Every model label must be mapped or
ignored and every dataset label reached, else fit stops before any work.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from textclf.approaches.base import META, Labelled, Prediction, argmax_prediction, load_meta
from textclf.approaches.task_specific.settings import Settings, TaskSpecificMode
from textclf.core import settings as schema
from textclf.core.context import group

log = logging.getLogger(__name__)



class LabelMappingError(ValueError):
    """The configured label mapping does not fit the model's or the dataset's labels."""


def label_matrix(model_labels: Sequence[str], dataset_labels: Sequence[str],
                 mapping: Mapping[str, str] | None, ignore: Sequence[str] = ()) -> np.ndarray:
    """(n_model_labels, n_dataset_labels) 0/1 matrix: model probabilities @ it = dataset
    probabilities (before renormalising). Raises LabelMappingError naming every problem."""
    model_labels, dataset_labels, ignore = list(model_labels), list(dataset_labels), list(ignore or [])
    problems = []
    if mapping is None:
        mapping = {m: m for m in model_labels if m in dataset_labels}
    mapping = dict(mapping)
    if bad := sorted(set(mapping) - set(model_labels)):
        problems.append(f"map has unknown model labels {bad}")
    if bad := sorted({v for v in mapping.values()} - set(dataset_labels)):
        problems.append(f"map targets unknown dataset labels {bad}")
    if bad := sorted(set(ignore) - set(model_labels)):
        problems.append(f"ignore has unknown model labels {bad}")
    if bad := sorted(set(ignore) & set(mapping)):
        problems.append(f"labels both mapped and ignored {bad}")
    if bad := [m for m in model_labels if m not in mapping and m not in ignore]:
        problems.append(f"model labels neither mapped nor ignored {bad}")
    if bad := [d for d in dataset_labels if d not in mapping.values()]:
        problems.append(f"dataset labels that no model label maps to {bad}")
    if problems:
        raise LabelMappingError(
            "label mapping (labels.map / labels.ignore): " + "; ".join(problems)
            + f". Model labels: {model_labels}; dataset labels: {dataset_labels}. Map each model label to a "
              "dataset label or ignore it, e.g. labels: {map: {negative: negative, positive: positive}, ignore: [neutral]}."
        )
    m = np.zeros((len(model_labels), len(dataset_labels)), dtype=np.float64)
    for i, label in enumerate(model_labels):
        if label in mapping:
            m[i, dataset_labels.index(mapping[label])] = 1.0
    return m


def map_scores(model_probs: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Dataset-label probabilities: sum the mapped model labels, drop the ignored mass, renormalise."""
    scores = np.asarray(model_probs, dtype=np.float64) @ matrix
    mass = scores.sum(axis=1, keepdims=True)
    return scores / np.clip(mass, 1e-12, None)


def _model_labels(config) -> list[str]:
    return [config.id2label[i] for i in range(config.num_labels)]


def fit(ctx, name: str, out_dir: Path) -> None:
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    from textclf.approaches.task_specific.finetune import finetune
    from textclf.runtime.resolve import resolve

    settings = ctx.approach_settings(name, Settings)
    cfg = ctx.group(name)  # the model specs as written: identities for resolve()
    mapping, ignore, max_length = settings.labels.map, settings.labels.ignore, settings.max_length
    if mapping is not None:
        # The dataset side of the mapping is checkable before any model is fetched.
        label_matrix(list(mapping) + list(ignore), ctx.label_names, mapping, ignore)
    out_dir.mkdir(parents=True, exist_ok=True)
    if settings.mode is TaskSpecificMode.finetune:
        if settings.finetune is None:
            raise ValueError(f"{ctx.approach(name)['params']}.finetune is null: mode finetune needs its settings "
                             "(conf/task_specific/minilm_ft.yaml has them)")
        # The new head's labels are the dataset's; a configured mapping is still checked first.
        label_matrix(ctx.label_names, ctx.label_names, mapping, ignore)
        spec = cfg["base"]
        location, source = resolve(spec)
        log.info("Fine-tuning %s (%s, from %s)", spec["name"], location, source)
        train, val = ctx.split("train"), ctx.split("validation")
        if settings.finetune.max_train_rows is not None:
            from textclf.data.prepared import Prepared, stratified_indices

            n_all = len(train.texts)
            take = stratified_indices(train.labels, settings.finetune.max_train_rows, settings.finetune.seed)
            train = Prepared([train.texts[i] for i in take], train.labels[take])
            log.info("Fine-tuning on %d of %d train rows (finetune.max_train_rows: a seeded, stratified sample)",
                     len(train.texts), n_all)
        # fit@ hands its dvclive log over as ctx.live (stages/fit.py); other callers have none.
        report = finetune(location, (train.texts, train.labels), (val.texts, val.labels), ctx.label_names,
                          settings.finetune, max_length, out_dir, ctx.device, live=getattr(ctx, "live", None))
        model_labels = list(ctx.label_names)
        log.info("Best epoch %d, validation macro-F1 %.4f", report["best_epoch"], report["best_validation_macro_f1"])
    else:
        spec = cfg["model"]
        location, source = resolve(spec)
        model_labels = _model_labels(AutoConfig.from_pretrained(str(location)))
        label_matrix(model_labels, ctx.label_names, mapping, ignore)  # before loading the weights
        log.info("Using %s as it is (%s, from %s)", spec["name"], location, source)
        AutoModelForSequenceClassification.from_pretrained(str(location)).save_pretrained(str(out_dir))
        AutoTokenizer.from_pretrained(str(location)).save_pretrained(str(out_dir))
    meta = {"mode": settings.mode.value, "model": spec["name"], "hub_id": spec.get("hub_id"), "model_labels": model_labels,
            "dataset_labels": list(ctx.label_names), "map": mapping, "ignore": list(ignore), "max_length": max_length}
    (out_dir / META).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")


def run_pipeline(model_dir: Path, texts: Sequence[str], max_length: int, batch_size: int, device: str,
                 progress: bool = True, engine: schema.Engine | None = None) -> tuple[np.ndarray, list[str]]:
    """Probabilities (n, n_model_labels) in the model's label order, and those labels.
    Longest first in chunks of 8 batches (similar lengths pad little, a bar per chunk);
    engine=ray sends the same chunks to Ray Data actors (engine.py), so the same numbers."""
    from transformers import AutoConfig

    from textclf.runtime.engine import map_batches

    model_labels = _model_labels(AutoConfig.from_pretrained(str(model_dir)))
    order = np.argsort([-len(t) for t in texts], kind="stable")
    chunk = batch_size * 8
    chunks = [order[i:i + chunk] for i in range(0, len(order), chunk)]
    worker = partial(_pipeline_worker, str(model_dir), max_length, batch_size, device)
    probs = map_batches(texts, chunks, worker, engine, device, "Classifying", progress)
    return probs.astype(np.float64, copy=False), model_labels


def _pipeline_worker(model_dir: str, max_length: int, batch_size: int, device: str):
    """An engine worker: the text-classification pipeline over one chunk, probabilities in
    the model's label order. On Ray, `model_dir` must be readable by the workers (a shared
    filesystem, or the local runtime)."""
    from transformers import pipeline

    if not Path(model_dir).is_dir():
        raise FileNotFoundError(f"{model_dir} is not on this worker: engine=ray needs models/ on a filesystem "
                                "every worker reads (or a local runtime)")
    clf = pipeline("text-classification", model=model_dir, tokenizer=model_dir, top_k=None, device=device)
    col = {label: i for i, label in enumerate(_model_labels(clf.model.config))}

    def run(texts: list[str]) -> np.ndarray:
        probs = np.zeros((len(texts), len(col)), dtype=np.float64)
        for i, out in enumerate(clf(texts, batch_size=batch_size, truncation=True, max_length=max_length)):
            for item in out:
                probs[i, col[item["label"]]] = item["score"]
        return probs

    return run


def predict(ctx, name: str, model_dir: Path, split: str) -> Prediction:
    return predict_texts(ctx, name, model_dir, ctx.split(split).texts)


def predict_texts(ctx, name: str, model_dir: Path, texts: Sequence[str], progress: bool = True) -> Prediction:
    meta = load_meta(model_dir, name, ctx.label_names, LabelMappingError)
    batch_size = ctx.approach_settings(name, Settings).batch_size  # speed only, not a result
    texts = list(texts)
    probs, model_labels = run_pipeline(model_dir, texts, int(meta["max_length"]), batch_size, ctx.device, progress,
                                       engine=ctx.settings.engine)
    matrix = label_matrix(model_labels, meta["dataset_labels"], meta["map"], meta["ignore"])
    pred = argmax_prediction(map_scores(probs, matrix), "probability")
    pred.info = {"max_length": int(meta["max_length"]), "truncated_rows": truncated_rows(model_dir, texts, meta)}
    return pred


def truncated_rows(model_dir: Path, texts: Sequence[str], meta: Mapping[str, Any]) -> int:
    """Texts the classifier sees cut to max_length tokens (it classifies their start)."""
    from transformers import AutoTokenizer

    from textclf.runtime.tokens import count_truncated

    n = count_truncated(AutoTokenizer.from_pretrained(str(model_dir)), texts, int(meta["max_length"]))
    if n:
        log.warning("%d of %d texts are longer than %d tokens: the classifier sees their start", n, len(texts),
                    meta["max_length"])
    return n


def labelled(params: Mapping[str, Any], name: str) -> Labelled:
    """Fine-tuning learns from train and picks its epoch on validation; a pretrained model
    uses none of this dataset's labels."""
    settings = schema.typed(Settings, group(params, name), prefix=params["approaches"][name]["params"])
    return Labelled(("train", "validation") if settings.mode is TaskSpecificMode.finetune else ())
