"""Cosine similarity to each class's mean training embedding."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from textclf.approaches.base import Labelled, Prediction, cosine_predict, unit
from textclf.runtime.embed import embed_texts


def class_means(x: np.ndarray, y: np.ndarray, n_classes: int) -> np.ndarray:
    missing = sorted(set(range(n_classes)) - set(np.unique(y).tolist()))
    if missing:
        raise ValueError(f"no training rows for class index(es) {missing}: cannot form their centroids")
    return np.stack([unit(x[y == c]).mean(axis=0) for c in range(n_classes)])


def fit(ctx, name: str, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    means = class_means(ctx.embeddings("train"), ctx.split("train").labels, len(ctx.label_names))
    np.save(out_dir / "centroids.npy", means.astype(np.float32))


def predict(ctx, name: str, model_dir: Path, split: str) -> Prediction:
    return cosine_predict(ctx.embeddings(split), np.load(model_dir / "centroids.npy"))


def predict_texts(ctx, name: str, model_dir: Path, texts: Sequence[str], progress: bool = True) -> Prediction:
    return cosine_predict(embed_texts(ctx, texts, progress), np.load(model_dir / "centroids.npy"))


def labelled(params, name: str) -> Labelled:
    return Labelled(("train",))
