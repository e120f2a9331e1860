"""Frozen sentence embeddings + a scikit-learn LogisticRegression."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import joblib
import numpy as np
from sklearn.linear_model import LogisticRegression

from textclf.approaches.base import Labelled, Prediction, argmax_prediction, load_saved
from textclf.approaches.embed_lr.settings import Settings
from textclf.runtime.embed import embed_texts


def build(settings: Settings) -> LogisticRegression:
    """class_weight: null (every row weighs the same, the seed's setting) or balanced (rows
    weighted inversely to their class's train count, for imbalanced label sets)."""
    class_weight = settings.class_weight.value if settings.class_weight is not None else None
    return LogisticRegression(C=settings.C, max_iter=settings.max_iter, random_state=settings.seed,
                              class_weight=class_weight)


def fit(ctx, name: str, out_dir: Path) -> None:
    clf = build(ctx.approach_settings(name, Settings))
    clf.fit(ctx.embeddings("train"), ctx.split("train").labels)
    out_dir.mkdir(parents=True, exist_ok=True)
    joblib.dump(clf, out_dir / "classifier.joblib")


def score(model_dir: Path, vectors: np.ndarray) -> Prediction:
    """The one scoring path: the split's cached vectors (predict) or new texts' (predict_texts)."""
    clf = load_saved(model_dir / "classifier.joblib", f"fit@{model_dir.name}")
    return argmax_prediction(clf.predict_proba(vectors), "probability")


def predict(ctx, name: str, model_dir: Path, split: str) -> Prediction:
    return score(model_dir, ctx.embeddings(split))


def predict_texts(ctx, name: str, model_dir: Path, texts: Sequence[str], progress: bool = True) -> Prediction:
    return score(model_dir, embed_texts(ctx, texts, progress))


def labelled(params, name: str) -> Labelled:
    return Labelled(("train",))
