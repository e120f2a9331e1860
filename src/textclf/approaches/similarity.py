"""Shared by the zero-shot approaches: cosine similarity to one reference vector per class."""

from __future__ import annotations

import numpy as np

from . import Prediction, argmax_prediction


def unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.clip(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12, None)


def cosine_predict(embeddings: np.ndarray, references: np.ndarray) -> Prediction:
    return argmax_prediction(unit(embeddings) @ unit(references).T, "similarity")
