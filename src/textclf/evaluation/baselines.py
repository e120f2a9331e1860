"""Trivial baselines for every comparison: scikit-learn's DummyClassifier fitted on the train
labels (no text), predicting the test rows. An approach that is not significantly better than
always answering the majority class has learned nothing usable, and the summary says so."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# name -> DummyClassifier strategy; majority first: it wins ties for "the stronger baseline".
STRATEGIES = {"majority": "most_frequent", "stratified": "stratified"}


def predict(train_labels: Sequence[int], n_test: int, seed: int) -> dict[str, np.ndarray]:
    """Each baseline's test predictions. The stratified one draws labels at the train split's
    class frequencies, seeded."""
    from sklearn.dummy import DummyClassifier

    y = np.asarray(train_labels, dtype=np.int64)
    out = {}
    for name, strategy in STRATEGIES.items():
        model = DummyClassifier(strategy=strategy, random_state=seed).fit(np.zeros((len(y), 1)), y)
        out[name] = np.asarray(model.predict(np.zeros((n_test, 1))), dtype=np.int64)
    return out
