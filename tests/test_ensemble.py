"""The stacked ensemble: learns from validation only, beats noisy complementary bases, and
says which base to fix when its inputs are missing."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import f1_score

from textclf import ensemble as ens

SPEC = {"Cs": [0.01, 0.1, 1.0, 10.0], "folds": 5, "max_iter": 1000}


def _write(root, base, split, labels, pred, scores=None):
    path = root / "predictions" / base / f"{split}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as fh:
        for i, (y, p) in enumerate(zip(labels, pred)):
            row = {"row": i, "label": int(y), "pred": int(p), "pred_name": str(p)}
            if scores is not None:
                row["scores"] = [round(float(s), 6) for s in scores[i]]
            fh.write(json.dumps(row) + "\n")


def _make_bases(root, n_labels=3, n=(600, 2000), seed=0):
    """Three bases with independent errors: two with noisy scores on different scales
    (a probability and a similarity), one with bare predictions (no scores)."""
    rng = np.random.default_rng(seed)
    gold = {}
    for split, size in zip(("validation", "test"), n):
        y = rng.integers(0, n_labels, size)
        gold[split] = y
        onehot = np.eye(n_labels)[y]
        prob = np.exp(2.0 * onehot + rng.normal(0, 1.2, (size, n_labels)))
        prob /= prob.sum(axis=1, keepdims=True)
        sim = 0.3 + 0.05 * onehot + rng.normal(0, 0.04, (size, n_labels))
        bare = np.where(rng.random(size) < 0.6, y, rng.integers(-1, n_labels, size))
        _write(root, "prob", split, y, prob.argmax(1), prob)
        _write(root, "sim", split, y, sim.argmax(1), sim)
        _write(root, "bare", split, y, bare)
    return gold


def test_stack_beats_every_base_and_trains_on_validation_only(tmp_path):
    gold = _make_bases(tmp_path)
    bases = ["prob", "sim", "bare"]
    train = ens.base_features(tmp_path, "s", bases, "validation", 3, gold["validation"])
    test = ens.base_features(tmp_path, "s", bases, "test", 3, gold["test"], train.layout)
    assert [b["features"] for b in train.layout] == ["scores", "scores", "onehot"]
    assert train.x.shape == (600, 9)
    model = ens.build(SPEC, 42)
    oof = ens.out_of_fold(model, train, SPEC, 42)
    model.fit(train.x, train.labels)
    assert model.n_features_in_ == 9 and len(model.best_estimator_[-1].coef_) == 3
    ours = f1_score(gold["test"], ens.full_proba(model, test.x, 3).argmax(1), average="macro")
    for b in bases:
        pred = np.array([json.loads(line)["pred"] for line in (tmp_path / "predictions" / b / "test.jsonl").open()])
        assert ours > f1_score(gold["test"], pred, average="macro", labels=[0, 1, 2]) + 0.02, b
    # the out-of-fold validation estimate is an honest one: close to the test score
    assert abs(f1_score(gold["validation"], oof.argmax(1), average="macro") - ours) < 0.05


def test_missing_validation_predictions_name_the_base(tmp_path):
    gold = _make_bases(tmp_path)
    (tmp_path / "predictions" / "sim" / "validation.jsonl").unlink()
    with pytest.raises(ens.EnsembleError, match=r"base 'sim' has no validation predictions.*predict@sim"):
        ens.base_features(tmp_path, "s", ["prob", "sim"], "validation", 3, gold["validation"])


def test_stale_base_predictions_are_refused(tmp_path):
    gold = _make_bases(tmp_path)
    with pytest.raises(ens.EnsembleError, match="does not hold the current validation rows"):
        ens.base_features(tmp_path, "s", ["prob"], "validation", 3, gold["validation"][:-1])


@pytest.mark.parametrize("spec,approaches,match", [
    ({"bases": ["a"]}, {"a": {}}, "two or more"),
    ({"bases": ["a", "zz"]}, {"a": {}, "b": {}}, r"names \['zz'\], not configured"),
    ({"bases": ["a", "llm"]}, {"a": {}, "llm": {"splits": ["test"]}}, r"base 'llm' predicts only \['test'\].*approaches.llm.splits"),
])
def test_config_errors_say_what_to_change(spec, approaches, match):
    with pytest.raises(ens.EnsembleError, match=match):
        ens.check_bases("stack", spec, approaches)


def test_too_few_rows_per_class_for_the_folds():
    with pytest.raises(ens.EnsembleError, match="fewer than ensembles.s.folds=5"):
        ens.check_folds("s", np.array([0] * 20 + [1] * 3), 2, 5)
