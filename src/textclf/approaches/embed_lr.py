"""Frozen sentence embeddings + a scikit-learn LogisticRegression."""

from __future__ import annotations

from pathlib import Path

import joblib
from sklearn.linear_model import LogisticRegression

from . import Labelled, Prediction, argmax_prediction


def build(params: dict) -> LogisticRegression:
    return LogisticRegression(C=float(params["C"]), max_iter=int(params["max_iter"]), random_state=int(params["seed"]))


def fit(ctx, name: str, out_dir: Path) -> None:
    clf = build(ctx.params["classifier"])
    clf.fit(ctx.embeddings("train"), ctx.split("train").labels)
    out_dir.mkdir(parents=True, exist_ok=True)
    joblib.dump(clf, out_dir / "classifier.joblib")


def predict(ctx, name: str, model_dir: Path, split: str) -> Prediction:
    clf = joblib.load(model_dir / "classifier.joblib")
    return argmax_prediction(clf.predict_proba(ctx.embeddings(split)), "probability")


def labelled(params, name: str) -> Labelled:
    return Labelled(("train",))
