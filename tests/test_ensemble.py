"""The stacked ensemble: learns from validation only, beats noisy complementary bases, adapts
its folds to the smallest class, falls back to its best base when it does not beat it on
validation, and says which base to fix when its inputs are missing."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from sklearn.metrics import f1_score

from textclf.core.settings import Approach, Candidate, Ensemble, ParamsError, typed
from textclf.evaluation import ensemble as ens
from textclf.evaluation import ensemble_inputs as inputs
from textclf.evaluation import ensemble_model as meta

RAW = {"Cs": [0.01, 0.1, 1.0, 10.0], "folds": 5, "max_iter": 1000, "scoring": "neg_log_loss",
       "candidates": ["best_base", "average", "stack"]}
SPEC = typed(Ensemble, RAW)
ALL = [Candidate.best_base, Candidate.average, Candidate.stack]


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
    train = inputs.base_features(tmp_path, "s", bases, "validation", 3, gold["validation"])
    test = inputs.base_features(tmp_path, "s", bases, "test", 3, gold["test"], train.layout)
    assert [b["features"] for b in train.layout] == ["scores", "scores", "onehot"]
    assert train.x.shape == (600, 9)
    model = meta.build(SPEC, 42, 3, 5)
    oof = meta.out_of_fold(model, train, 5, 42)
    model.fit(train.x, train.labels)
    assert model.n_features_in_ == 9 and len(model.best_estimator_[-1].coef_) == 3
    ours = f1_score(gold["test"], meta.full_proba(model, test.x, 3).argmax(1), average="macro")
    for b in bases:
        pred = np.array([json.loads(line)["pred"] for line in (tmp_path / "predictions" / b / "test.jsonl").open()])
        assert ours > f1_score(gold["test"], pred, average="macro", labels=[0, 1, 2]) + 0.02, b
    # the out-of-fold validation estimate is an honest one: close to the test score
    assert abs(f1_score(gold["validation"], oof.argmax(1), average="macro") - ours) < 0.05
    # and the whole stage logic picks the stack here, predicting test with it
    out = ens.fit_and_choose(tmp_path, "s", SPEC, bases, 3, gold, 42)
    assert out.chosen == "stack" and out.validation_f1["stack"] > max(out.validation_f1[b] for b in bases)
    assert np.array_equal(out.pred["test"][0], meta.full_proba(model, test.x, 3).argmax(1))


def test_missing_validation_predictions_name_the_base(tmp_path):
    gold = _make_bases(tmp_path)
    (tmp_path / "predictions" / "sim" / "validation.jsonl").unlink()
    with pytest.raises(ens.EnsembleError, match=r"base 'sim' has no validation predictions.*predict@sim"):
        inputs.base_features(tmp_path, "s", ["prob", "sim"], "validation", 3, gold["validation"])


def test_stale_base_predictions_are_refused(tmp_path):
    gold = _make_bases(tmp_path)
    with pytest.raises(ens.EnsembleError, match="does not hold the current validation rows"):
        inputs.base_features(tmp_path, "s", ["prob"], "validation", 3, gold["validation"][:-1])


@pytest.mark.parametrize("spec,approaches,match", [
    ({"bases": ["a"]}, {"a": {}}, "two or more"),
    ({"bases": ["a", "zz"]}, {"a": {}, "b": {}}, r"names \['zz'\], not configured"),
    ({"bases": ["a", "llm"]}, {"a": {}, "llm": {"splits": ["test"]}},
     r"base 'llm' predicts only \['test'\].*approaches.llm.splits"),
])
def test_config_errors_say_what_to_change(spec, approaches, match):
    with pytest.raises(ens.EnsembleError, match=match):
        inputs.check_bases("stack", typed(Ensemble, spec), {k: typed(Approach, v) for k, v in approaches.items()})


def _many_classes(root, n_labels=20, per_class=10, rare=3, seed=0, good="good", good_noise=0.0,
                  swap_quality=False):
    """Validation with `per_class` rows per class except class 0 (`rare` rows); test 30 per class.
    Base `good` is right except on a `good_noise` share of rows, two noisy bases add little.
    swap_quality: `good` is poor on test and `other` good (a rule that peeked at test would switch)."""
    rng = np.random.default_rng(seed)
    gold = {"validation": np.repeat(np.arange(n_labels), [rare] + [per_class] * (n_labels - 1)),
            "test": np.repeat(np.arange(n_labels), 30)}
    for split, y in gold.items():
        y = rng.permutation(y)
        gold[split] = y
        onehot = np.eye(n_labels)[y]
        for base, noise in ((good, good_noise), ("other", 0.5)):
            if swap_quality and split == "test":
                noise = 0.5 if base == good else good_noise
            wrong = rng.random(len(y)) < noise
            pred = np.where(wrong, (y + rng.integers(1, n_labels, len(y))) % n_labels, y)
            prob = 0.2 * rng.random((len(y), n_labels)) + np.eye(n_labels)[pred]
            _write(root, base, split, y, pred, prob / prob.sum(axis=1, keepdims=True))
        sim = 0.3 + 0.02 * onehot + rng.normal(0, 0.05, onehot.shape)
        _write(root, "sim", split, y, sim.argmax(1), sim)
    return gold


def test_folds_adapt_to_the_smallest_class_and_the_cv_scores_all_classes(tmp_path):
    plan = meta.fold_plan("s", np.array([0] * 3 + [1] * 40 + [2] * 7), 3, 5)
    # 3 outer folds keep a row of class 0 in each; an outer training part then has 2 of them
    assert plan == {"configured": 5, "smallest_class": 3, "outer": 3, "inner": 2}
    assert meta.fold_plan("s", np.array([0] * 30 + [1] * 40), 2, 5) == \
        {"configured": 5, "smallest_class": 30, "outer": 5, "inner": 5}
    gold = _many_classes(tmp_path, good_noise=0.3)
    bases = ["good", "other", "sim"]
    with warnings.catch_warnings():
        # sklearn's own neg_log_loss scorer warns here ("y_true and y_prob contain different
        # number of classes": an inner fold lacks a class); ours scores all 20
        warnings.simplefilter("error")
        out = ens.fit_and_choose(tmp_path, "s", SPEC, bases, 20, gold, 42)
    assert out.folds == {"configured": 5, "smallest_class": 3, "outer": 3, "inner": 2}
    assert out.model.best_estimator_[-1].coef_.shape[0] == 20
    assert set(out.validation_f1) == {"stack", "average", *bases}


def test_scorer_knows_all_classes_even_when_a_fold_lacks_one(tmp_path):
    """The user's setting (folds=3 outer and inner, 3 rows in a class): an inner test fold then
    lacks that class. sklearn's neg_log_loss scorer warns "y_true and y_prob contain different
    number of classes" there (and scores on 19 labels); ours scores all 20 without a warning."""
    gold = _many_classes(tmp_path, good_noise=0.3)
    train = inputs.base_features(tmp_path, "s", ["good", "other", "sim"], "validation", 20, gold["validation"])
    theirs = meta.build(SPEC, 42, 20, 3).set_params(scoring="neg_log_loss", error_score=np.nan)
    with pytest.warns(UserWarning, match="different number of classes"):
        meta.out_of_fold(theirs, train, 3, 42)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        meta.out_of_fold(meta.build(SPEC, 42, 20, 3), train, 3, 42)
    assert not [w for w in caught if "different number of classes" in str(w.message)]


@pytest.mark.parametrize("rows,match", [(2, "3 or more per class"), (1, "3 or more per class"), (0, "3 or more")])
def test_too_few_rows_per_class_for_the_folds(rows, match):
    with pytest.raises(ens.EnsembleError, match=match + r".*larger validation split.*~ensemble@ensembles.s"):
        meta.fold_plan("s", np.array([0] * 20 + [1] * rows), 2, 5)


def test_a_class_without_validation_rows_leaves_the_stack_out_and_says_why(tmp_path, caplog):
    """TREC's shape: a class absent from validation. The nested CV has no honest estimate, so the
    stack is no candidate (recorded, logged); best base and average still choose on validation.
    With the stack as the only candidate the run stops, as before."""
    rng = np.random.default_rng(0)
    gold = {"validation": np.array([0, 1] * 150 + [2]), "test": rng.integers(0, 3, 300)}  # one row of 2
    for split, y in gold.items():
        onehot = np.eye(3)[y]
        for base, noise in (("prob", 1.0), ("sim", 1.5)):
            prob = np.exp(2.0 * onehot + rng.normal(0, noise, onehot.shape))
            _write(tmp_path, base, split, y, prob.argmax(1), prob / prob.sum(axis=1, keepdims=True))
        _write(tmp_path, "bare", split, y, np.where(rng.random(len(y)) < 0.6, y, 0))
    with caplog.at_level("WARNING"):
        out = ens.fit_and_choose(tmp_path, "s", SPEC, ["prob", "sim", "bare"], 3, gold, 42)
    assert out.model is None and "3 or more per class" in out.stack_skipped
    assert "stack" not in out.validation_f1 and out.chosen != "stack"
    assert out.folds["smallest_class"] == 1 and "The stack is left out" in caplog.text
    only_stack = typed(Ensemble, {**RAW, "candidates": ["stack"]})
    with pytest.raises(ens.EnsembleError, match="3 or more per class"):
        ens.fit_and_choose(tmp_path, "s", only_stack, ["prob", "sim", "bare"], 3, gold, 42)


def test_stack_that_does_not_beat_its_best_base_falls_back_to_it(tmp_path):
    # a perfect base: the stack can at best tie it on validation, and ties go to the base
    gold = _many_classes(tmp_path, good_noise=0.0)
    bases = ["other", "good", "sim"]
    out = ens.fit_and_choose(tmp_path, "s", SPEC, bases, 20, gold, 42)
    assert out.validation_f1["good"] == 1.0 and out.validation_f1["stack"] <= 1.0
    assert out.chosen == "best_base:good"
    saved = inputs.read_saved(tmp_path, ["good"], "test")["good"]
    assert np.array_equal(out.pred["test"][0], saved.pred) and np.array_equal(out.pred["test"][1], saved.scores)


def test_choose_picks_the_highest_validation_score_ties_to_the_simpler():
    f1 = {"stack": 0.88, "average": 0.90, "a": 0.91, "b": 0.85}
    assert ens.choose(f1, ALL, ["a", "b"]) == "best_base:a"
    assert ens.choose({**f1, "stack": 0.92}, ALL, ["a", "b"]) == "stack"
    assert ens.choose({**f1, "stack": 0.91}, ALL, ["a", "b"]) == "best_base:a"
    assert ens.choose({**f1, "average": 0.95}, ALL, ["a", "b"]) == "average"
    assert ens.choose(f1, [Candidate.stack], ["a", "b"]) == "stack"  # the user may force it
    # one Enum for the check and the code: an unknown candidate fails as params.yaml is read
    with pytest.raises(ParamsError, match=r"candidates.*'median'.*best_base, average, stack"):
        typed(Ensemble, {"candidates": ["stack", "median"]}, "params.yaml", "ensembles.s")
    for cands in ([], ["stack", "stack"]):
        with pytest.raises(ens.EnsembleError, match="candidates must list some of"):
            ens.check_candidates("s", typed(Ensemble, {"candidates": cands}))


def test_choice_uses_validation_only_permuting_test_labels_changes_nothing(tmp_path):
    # `good` is the best base on validation but the worst on test: a rule that looked at test
    # would pick `other` (or the stack); ours keeps `good`, whatever the test labels say
    gold = _many_classes(tmp_path, good_noise=0.0, swap_quality=True)
    bases = ["good", "other", "sim"]
    first = ens.fit_and_choose(tmp_path, "s", SPEC, bases, 20, gold, 42)
    assert first.chosen == "best_base:good"
    rng = np.random.default_rng(1)
    shuffled = rng.permutation(gold["test"])
    assert (shuffled != gold["test"]).mean() > 0.9
    for b in bases:  # same test predictions, other gold labels
        saved = inputs.read_saved(tmp_path, [b], "test")[b]
        _write(tmp_path, b, "test", shuffled, saved.pred, saved.scores)
    again = ens.fit_and_choose(tmp_path, "s", SPEC, bases, 20, {**gold, "test": shuffled}, 42)
    assert again.chosen == first.chosen and again.validation_f1 == first.validation_f1
    assert np.array_equal(again.pred["test"][0], first.pred["test"][0])


def test_unknown_scoring_says_what_is_supported():
    with pytest.raises(ParamsError, match=r"ensembles.s.scoring: .*'roc_auc'.*neg_log_loss, f1_macro"):
        typed(Ensemble, {**RAW, "scoring": "roc_auc"}, "params.yaml", "ensembles.s")


def test_every_stack_choice_reads_validation_only_test_rows_replaced_change_nothing(tmp_path):
    """Test labels permuted and the bases' test predictions and scores replaced by noise (other
    texts): the pick, every candidate's validation score, the C and the meta-model are the same."""
    gold = _make_bases(tmp_path)
    bases = ["prob", "sim", "bare"]
    first = ens.fit_and_choose(tmp_path, "s", SPEC, bases, 3, gold, 42)
    assert first.chosen == "stack"  # the meta-model is what is used, so its fit is what matters
    rng = np.random.default_rng(7)
    noise_y = rng.permutation(gold["test"])
    for b in bases:
        saved = inputs.read_saved(tmp_path, [b], "test")[b]
        scores = None if saved.scores is None else rng.random(saved.scores.shape)
        _write(tmp_path, b, "test", noise_y, rng.integers(0, 3, len(noise_y)), scores)
    again = ens.fit_and_choose(tmp_path, "s", SPEC, bases, 3, {**gold, "test": noise_y}, 42)
    assert (again.chosen, again.validation_f1, again.folds) == (first.chosen, first.validation_f1, first.folds)
    assert meta.chosen_c(again.model) == meta.chosen_c(first.model)
    est_a, est_b = again.model.best_estimator_, first.model.best_estimator_
    assert np.array_equal(est_a[-1].coef_, est_b[-1].coef_)
    assert np.array_equal(again.pred["validation"][1], first.pred["validation"][1])
