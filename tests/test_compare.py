"""Bootstrap intervals, paired tests, the summary's derived fields and the plot data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import binomtest
from sklearn.metrics import f1_score, roc_auc_score

from textclf.core.context import Context
from textclf.core.settings import Compare
from textclf.evaluation import compare
from textclf.report import collect, markdown, plots


def test_weighted_macro_f1_matches_sklearn_with_unparseable_and_missing_classes():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 300)
    pred = np.where(rng.random(300) < 0.7, y, rng.integers(-1, 4, 300))  # -1: unparseable
    pred[pred == 3] = 2  # class 3 never predicted: its F1 is 0 (zero_division=0)
    ours = compare.weighted_macro_f1(y, pred, 4, np.ones((1, 300)))[0]
    assert ours == pytest.approx(f1_score(y, pred, labels=[0, 1, 2, 3], average="macro", zero_division=0))
    # a resample given as row multiplicities equals scoring the repeated rows
    w = compare.bootstrap_weights(300, 3, seed=1)
    for k in range(3):
        idx = np.repeat(np.arange(300), w[k])
        expected = f1_score(y[idx], pred[idx], labels=[0, 1, 2, 3], average="macro", zero_division=0)
        assert compare.weighted_macro_f1(y, pred, 4, w[k:k + 1])[0] == pytest.approx(expected)


def test_macro_f1_averages_the_labels_in_gold_or_predictions_as_sklearn_does():
    """TREC's test split lacks 8 of its 47 types: a label with no gold row and no prediction has
    no F1 to average (counted as 0 it would cap macro-F1 at 39/47). A label predicted but absent
    from gold still counts (its F1 is 0), and an unparseable answer (-1) is no label."""
    from textclf.evaluation.metrics import classification_metrics, macro_f1

    y = np.array([0, 0, 1, 1, 2, 2])
    perfect = y.copy()
    assert macro_f1(y, perfect, 5) == 1.0  # labels 3 and 4: in neither
    assert compare.weighted_macro_f1(y, perfect, 5, np.ones((1, 6)))[0] == 1.0
    assert classification_metrics(y, perfect, list("abcde"))["macro"]["f1"] == 1.0
    wrong = np.array([0, 0, 1, 1, 2, 3])  # one row of 2 called 3: label 3 enters with F1 0
    expected = f1_score(y, wrong, average="macro", zero_division=0)
    assert macro_f1(y, wrong, 5) == pytest.approx(expected, abs=1e-6)
    assert compare.weighted_macro_f1(y, wrong, 5, np.ones((1, 6)))[0] == pytest.approx(expected)
    unparseable = np.array([0, 0, 1, 1, 2, -1])
    assert macro_f1(y, unparseable, 5) == pytest.approx(
        f1_score(y, unparseable, labels=[0, 1, 2], average="macro", zero_division=0), abs=1e-6)


def test_bootstrap_weights_are_seeded_resamples():
    w = compare.bootstrap_weights(50, 200, seed=7)
    assert w.shape == (200, 50) and (w.sum(axis=1) == 50).all()
    assert np.array_equal(w, compare.bootstrap_weights(50, 200, seed=7))
    assert not np.array_equal(w, compare.bootstrap_weights(50, 200, seed=8))


def test_interval_brackets_the_estimate_and_narrows_with_more_rows():
    rng = np.random.default_rng(3)
    widths = []
    for n in (100, 2000):
        y = rng.integers(0, 2, n)
        pred = np.where(rng.random(n) < 0.8, y, 1 - y)
        point = compare.weighted_macro_f1(y, pred, 2, np.ones((1, n)))[0]
        lo, hi = compare.interval(compare.weighted_macro_f1(y, pred, 2, compare.bootstrap_weights(n, 500, 0)))
        assert lo < point < hi
        widths.append(hi - lo)
    assert widths[1] < widths[0] / 2


def test_mcnemar_exact_counts_discordant_rows():
    a = np.array([1] * 10 + [0] * 2 + [1] * 30, dtype=bool)
    b = np.array([0] * 10 + [1] * 2 + [1] * 30, dtype=bool)
    n01, n10, p = compare.mcnemar_exact(a, b)
    assert (n01, n10) == (10, 2)
    assert p == pytest.approx(binomtest(2, 12, 0.5).pvalue)
    assert compare.mcnemar_exact(a, a)[2] == 1.0


def test_paired_detects_a_real_difference_and_not_a_null_one():
    rng = np.random.default_rng(5)
    n = 1000
    y = rng.integers(0, 2, n)
    good = np.where(rng.random(n) < 0.9, y, 1 - y)
    bad = np.where(rng.random(n) < 0.75, y, 1 - y)
    w = compare.bootstrap_weights(n, 1000, 0)
    p = compare.paired(y, good, bad, 2, w)
    assert p.delta > 0.1 and p.delta_ci[0] > 0 and p.p_bootstrap < 0.01 and p.p_mcnemar < 1e-6
    same = compare.paired(y, good, good, 2, w)
    assert same.delta == 0 and same.p_bootstrap == 1.0 and same.p_mcnemar == 1.0


def _write_preds(path, labels, pred, scores=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as fh:
        for i, (y, p) in enumerate(zip(labels, pred)):
            row = {"row": i, "label": int(y), "pred": int(p), "pred_name": str(p)}
            if scores is not None:
                row["scores"] = [float(s) for s in scores[i]]
            fh.write(json.dumps(row) + "\n")


def test_summary_collect_intervals_paired_tests_and_labelled_rows(tmp_path):
    rng = np.random.default_rng(0)
    n = 400
    y = rng.integers(0, 2, n)
    params = {"approaches": {"embed_lr": {"kind": "embed_lr", "input": "data/embeddings"},
                             "label_desc": {"kind": "label_desc", "input": "data/embeddings"}},
              "ensembles": {"stack": {"bases": ["embed_lr", "label_desc"]}}}
    accuracy = {"embed_lr": 0.9, "label_desc": 0.7, "stack": 0.92}
    for name, acc in accuracy.items():
        pred = np.where(rng.random(n) < acc, y, 1 - y)
        where = "ensembles" if name == "stack" else "predictions"
        _write_preds(tmp_path / where / name / "test.jsonl", y, pred)
        f1 = f1_score(y, pred, average="macro")
        m = {"kind": "ensemble" if name == "stack" else name, "rows": n, "accuracy": float((pred == y).mean()),
             "macro": {"f1": round(f1, 6)}, "weighted": {"f1": 0.0}, "unparseable": 0}
        if name != "stack":  # as predict@ records it
            m["labelled"] = {"splits": ["train"] if name == "embed_lr" else [], "rows": 0}
        if name == "label_desc":
            # as the LLM approach writes it; non-numeric and unknown keys are not copied
            m["details"] = {"test": {"prompt_tokens": 9000, "completion_tokens": 400, "cost_usd": 0.01,
                                     "model": "qwen", "latency_s": 3.0}}
        (tmp_path / "metrics").mkdir(exist_ok=True)
        (tmp_path / "metrics" / f"{name}.json").write_text(json.dumps(m))
    s = collect.collect(Context(tmp_path, params), {"train": 1000, "validation": 100, "test": n}, 2, 500, 42)
    rows = s["approaches"]
    assert s["best"] == "stack" and "vs_best" not in rows["stack"]
    assert rows["label_desc"]["vs_best"]["p_mcnemar"] < 1e-6
    assert rows["label_desc"]["vs_best"]["best_minus_this_macro_f1"] > 0.1
    for r in rows.values():
        assert r["macro_f1_ci_low"] < r["macro_f1"] < r["macro_f1_ci_high"]
    assert (rows["embed_lr"]["labelled_rows"], rows["embed_lr"]["labelled_splits"]) == (1000, "train")
    assert (rows["label_desc"]["labelled_rows"], rows["label_desc"]["labelled_splits"]) == (0, "none")
    assert (rows["stack"]["labelled_rows"], rows["stack"]["labelled_splits"]) == (1100, "train+validation")
    assert rows["label_desc"]["llm_cost_usd"] == 0.01 and rows["label_desc"]["llm_prompt_tokens"] == 9000
    assert not {"llm_model", "llm_latency_s"} & set(rows["label_desc"]) and "llm_cost_usd" not in rows["embed_lr"]
    # same inputs, same bytes (the summary holds no timings)
    again = collect.collect(Context(tmp_path, params), {"train": 1000, "validation": 100, "test": n}, 2, 500, 42)
    assert json.dumps(again, sort_keys=True) == json.dumps(s, sort_keys=True)
    md = markdown.markdown(s, Context(tmp_path, {**params, "data": {"name": "d"}, "embedder": {"name": "e"}}))
    assert "| stack | ensemble |" in md and "| 9,400 | – | 0.0100 |" in md


def test_baselines_majority_and_stratified_and_who_does_not_beat_them(tmp_path):
    """An imbalanced set (87% one class): an approach that always answers the majority class is
    reported as not significantly better than the baseline; a good one is; neither baseline can
    be `best`."""
    from textclf.evaluation import baselines

    rng = np.random.default_rng(1)
    n = 600
    y = (rng.random(n) < 0.13).astype(int)  # 1 = the rare class
    train = (rng.random(5000) < 0.13).astype(int)
    preds = baselines.predict(train, n, seed=42)
    assert (preds["majority"] == 0).all()
    assert np.array_equal(preds["stratified"], baselines.predict(train, n, seed=42)["stratified"])
    assert 0.05 < preds["stratified"].mean() < 0.25
    params = {"approaches": {"good": {"kind": "embed_lr", "input": "data/embeddings"},
                             "lazy": {"kind": "embed_lr", "input": "data/embeddings"}}, "ensembles": {}}
    for name, pred in (("good", np.where(rng.random(n) < 0.9, y, 1 - y)), ("lazy", np.zeros(n, dtype=int))):
        _write_preds(tmp_path / "predictions" / name / "test.jsonl", y, pred)
        m = {"kind": "embed_lr", "rows": n, "accuracy": float((pred == y).mean()),
             "macro": {"f1": round(f1_score(y, pred, average="macro", zero_division=0), 6)}, "weighted": {"f1": 0.0},
             "unparseable": 0, "labelled": {"splits": ["train"], "rows": 0}}
        (tmp_path / "metrics").mkdir(exist_ok=True)
        (tmp_path / "metrics" / f"{name}.json").write_text(json.dumps(m))
    s = collect.collect(Context(tmp_path, params), {"train": 5000, "validation": 1, "test": n}, 2, 300, 0,
                        baselines=preds)
    base = s["baselines"]
    # majority: F1 of the common class 2p/(1+p) with p its share, 0 for the rare one
    share = float((y == 0).mean())
    assert base["majority"]["macro_f1"] == pytest.approx(share / (1 + share), abs=1e-6)
    assert base["majority"]["accuracy"] == pytest.approx(share, abs=1e-6)
    assert base["compared_with"] == "stratified" or base["majority"]["macro_f1"] >= base["stratified"]["macro_f1"]
    assert base["not_significantly_better"] == ["lazy"] and s["best"] == "good"
    assert s["approaches"]["good"]["vs_baseline"]["significantly_better"]
    md = markdown.markdown(s, Context(tmp_path, {**params, "data": {"name": "d"}, "embedder": {"name": "e"}}))
    assert f"**lazy is not significantly better than the {base['compared_with']} baseline**" in md
    assert "**good is not significantly better than the" not in md


def test_majority_baseline_on_a_tiny_set_has_the_known_macro_f1():
    """Train labels 0,0,0,1,2: the majority baseline answers 0 for every test row. Test gold
    0,0,1,2: class 0 has precision 2/4 and recall 1 (F1 2/3), classes 1 and 2 F1 0, so macro-F1
    is (2/3)/3 = 0.2222 and accuracy 0.5. The stratified one is seeded: same seed, same draw."""
    from textclf.evaluation import baselines

    preds = baselines.predict([0, 0, 0, 1, 2], 4, seed=7)
    assert preds["majority"].tolist() == [0, 0, 0, 0]
    assert np.array_equal(preds["stratified"], baselines.predict([0, 0, 0, 1, 2], 4, seed=7)["stratified"])
    gold = np.array([0, 0, 1, 2])
    rows = collect.baseline_rows(gold, preds, 3, compare.bootstrap_weights(4, 200, 0))
    assert rows["majority"]["macro_f1"] == pytest.approx(2 / 9, abs=1e-6)
    assert rows["majority"]["accuracy"] == pytest.approx(0.5)
    assert rows["majority"]["macro_f1_ci_low"] <= rows["majority"]["macro_f1"] <= rows["majority"]["macro_f1_ci_high"]
    assert list(rows) == ["majority", "stratified"]


def test_an_approach_equal_to_the_majority_baseline_is_not_significantly_better(tmp_path):
    """When majority is the stronger baseline, an approach answering exactly what it answers has
    ΔF1 0 and both p-values 1: named in summary.md as not significantly better. Baselines are never
    approaches nor `best`, even when one beats every approach, and adding them changes no other
    figure of the summary."""
    rng = np.random.default_rng(3)
    n = 400
    y = (rng.random(n) < 0.2).astype(int)
    base = {"majority": np.zeros(n, dtype=np.int64), "stratified": (1 - y).astype(np.int64)}  # always wrong
    approaches = {"copycat": np.zeros(n, dtype=int), "good": np.where(rng.random(n) < 0.9, y, 1 - y),
                  "bad": np.where(rng.random(n) < 0.4, y, 1 - y)}
    for name, pred in approaches.items():
        _write_preds(tmp_path / "predictions" / name / "test.jsonl", y, pred)
        m = {"kind": "embed_lr", "rows": n, "accuracy": float((pred == y).mean()),
             "macro": {"f1": round(f1_score(y, pred, average="macro", zero_division=0), 6)}, "weighted": {"f1": 0.0},
             "unparseable": 0, "labelled": {"splits": ["train"], "rows": 0}}
        (tmp_path / "metrics").mkdir(exist_ok=True)
        (tmp_path / "metrics" / f"{name}.json").write_text(json.dumps(m))
    params = {"approaches": {k: {"kind": "embed_lr", "input": "data/embeddings"} for k in approaches},
              "ensembles": {}}
    ctx = Context(tmp_path, params)
    split_rows = {"train": 1000, "validation": 1, "test": n}
    s = collect.collect(ctx, split_rows, 2, 300, 0, baselines=base)
    b = s["baselines"]
    assert b["compared_with"] == "majority" and b["stratified"]["macro_f1"] == 0.0
    v = s["approaches"]["copycat"]["vs_baseline"]
    assert v["this_minus_baseline_macro_f1"] == 0.0 and v["p_bootstrap"] == 1.0 and v["p_mcnemar"] == 1.0
    assert not v["significantly_better"] and s["approaches"]["good"]["vs_baseline"]["significantly_better"]
    assert b["not_significantly_better"] == ["bad", "copycat"]
    assert set(s["approaches"]) == set(approaches) and s["best"] == "good"
    md = markdown.markdown(s, Context(tmp_path, {**params, "data": {"name": "d"}, "embedder": {"name": "e"}}))
    assert "**copycat is not significantly better than the majority baseline**" in md
    assert "**good is not significantly better" not in md
    # Without baselines: the same summary but the new keys (existing figures unchanged).
    plain = collect.collect(ctx, split_rows, 2, 300, 0)
    stripped = {k: v for k, v in s.items() if k != "baselines"}
    stripped["approaches"] = {n: {k: v for k, v in r.items() if k != "vs_baseline"} for n, r in s["approaches"].items()}
    assert json.dumps(stripped, sort_keys=True) == json.dumps(plain, sort_keys=True)
    # Only the good approach: said in one sentence.
    one = {"approaches": {"good": params["approaches"]["good"]}, "ensembles": {}}
    s1 = collect.collect(Context(tmp_path, one), split_rows, 2, 300, 0, baselines=base)
    md1 = markdown.markdown(s1, Context(tmp_path, {**one, "data": {"name": "d"}, "embedder": {"name": "e"}}))
    assert "Every approach is significantly better than both baselines" in md1


def test_summary_refuses_test_predictions_on_different_rows(tmp_path):
    params = {"approaches": {"a": {"kind": "embed_lr"}, "b": {"kind": "centroid"}}}
    for name, labels in (("a", [0, 1, 0]), ("b", [1, 1, 0])):
        _write_preds(tmp_path / "predictions" / name / "test.jsonl", labels, labels)
        (tmp_path / "metrics").mkdir(exist_ok=True)
        (tmp_path / "metrics" / f"{name}.json").write_text(json.dumps(
            {"kind": name, "rows": 3, "accuracy": 1, "macro": {"f1": 1}, "weighted": {"f1": 1}, "unparseable": 0}))
    with pytest.raises(ValueError, match="other rows"):
        collect.collect(Context(tmp_path, params), {"train": 1, "validation": 1, "test": 3}, 2, 10, 0)


@pytest.mark.parametrize("n_labels", [2, 4])
def test_curves_have_the_template_fields_and_match_sklearn_auc(n_labels):
    rng = np.random.default_rng(1)
    y = rng.integers(0, n_labels, 300)
    scores = rng.random((300, n_labels)) + np.eye(n_labels)[y] * 0.5
    c = plots.curves(y, scores, n_labels)
    for kind in ("roc", "pr"):
        assert c[kind] and all(set(plots.FIELDS[kind]) <= set(row) for row in c[kind])
    if n_labels == 2:  # the margin s1 - s0 ranks rows as the positive-class probability would
        assert c["roc_auc"] == pytest.approx(roc_auc_score(y, scores[:, 1] - scores[:, 0]), abs=1e-6)
    assert 0.7 < c["roc_auc"] <= 1 and c["roc"][-1] == {"fpr": 1.0, "tpr": 1.0}


def test_overlay_rows_name_the_approach_and_keep_the_curve_order():
    c = plots.curves(np.array([0, 1, 1, 0]), np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]]), 2)
    rows = plots.overlay_rows("embed_lr", c["roc"])
    assert [r["step"] for r in rows] == list(range(len(c["roc"])))
    assert all(r["approach"] == "embed_lr" for r in rows) and [{k: r[k] for k in ("fpr", "tpr")} for r in rows] == c["roc"]


def test_confusion_rows_name_unparseable():
    rows = plots.confusion_rows(np.array([0, 1]), np.array([1, -1]), ["neg", "pos"])
    assert rows == [{"actual": "neg", "predicted": "pos"}, {"actual": "pos", "predicted": "unparseable"}]


def _write_metrics(root, name, y, pred, kind=None):
    (root / "metrics").mkdir(exist_ok=True)
    (root / "metrics" / f"{name}.json").write_text(json.dumps(
        {"kind": kind or name, "rows": len(y), "accuracy": float((pred == y).mean()),
         "macro": {"f1": round(f1_score(y, pred, average="macro"), 6)}, "weighted": {"f1": 0.0}, "unparseable": 0,
         "labelled": {"splits": ["train"], "rows": 0}}))


def test_rarest_classes_table_with_many_classes_and_none_for_two(tmp_path):
    rng = np.random.default_rng(0)
    n_labels, n = 6, 600
    y = rng.integers(0, n_labels, n)
    train_counts = [50, 7, 300, 3, 7, 90]  # rarest: 3 (3 rows), then 1 and 4 (7 each; label order)
    names = [f"c{i}" for i in range(n_labels)]
    params = {"approaches": {"a": {"kind": "embed_lr"}, "b": {"kind": "centroid"}}}
    preds = {"a": np.where(rng.random(n) < 0.8, y, rng.integers(0, n_labels, n)),
             "b": np.where(rng.random(n) < 0.5, y, rng.integers(0, n_labels, n))}
    for name, pred in preds.items():
        _write_preds(tmp_path / "predictions" / name / "test.jsonl", y, pred)
        _write_metrics(tmp_path, name, y, pred)
    split_rows = {"train": 457, "validation": 10, "test": n}
    s = collect.collect(Context(tmp_path, params), split_rows, n_labels, 50, 0, rare=(train_counts, names, 3))
    rare = s["rare_classes"]
    assert [c["label"] for c in rare["classes"]] == ["c3", "c1", "c4"]
    assert [c["train_rows"] for c in rare["classes"]] == [3, 7, 7]
    for c in rare["classes"]:
        i = names.index(c["label"])
        assert c["test_rows"] == int((y == i).sum())
        for name, pred in preds.items():
            assert c["f1"][name] == pytest.approx(f1_score(y == i, pred == i), abs=1e-6)
    md = markdown.markdown(s, Context(tmp_path, {**params, "data": {"name": "d"}, "embedder": {"name": "e"}}))
    assert "| class | train rows | test rows | a | b |" in md and "\n| c3 | 3 | " in md
    # k=0 or two classes: no table, and the summary has no such key (binary summaries stay as they were)
    assert "rare_classes" not in collect.collect(Context(tmp_path, params), split_rows, n_labels, 50, 0,
                                                 rare=(train_counts, names, 0))
    assert collect.rare_classes(np.array([0, 1]), {"a": np.array([0, 1])}, [5, 1], ["n", "p"], 5) is None
    assert collect.rare_classes_k(Compare(rare_classes=5)) == 5
    with pytest.raises(ValueError, match="compare.rare_classes must be a whole number"):
        collect.rare_classes_k(Compare(rare_classes=-1))


def test_dropped_approach_files_are_not_summarised_and_are_listed_as_stale(tmp_path):
    from textclf.report import stale

    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 100)
    for name in ("a", "b", "llm"):
        # llm's old test predictions are on other rows: reading them would stop the summary
        labels = 1 - y if name == "llm" else y
        _write_preds(tmp_path / "predictions" / name / "test.jsonl", labels, labels)
        _write_metrics(tmp_path, name, labels, labels)
        for t in ("fit", "predict"):
            (tmp_path / "metrics/timings").mkdir(parents=True, exist_ok=True)
            (tmp_path / "metrics/timings" / f"{t}_{name}.json").write_text("{}")
        (tmp_path / "models" / name).mkdir(parents=True)
        (tmp_path / "metrics/train" / name).mkdir(parents=True)
    fixed = stale.fixed_outputs((Path(__file__).resolve().parents[1] / "dvc.yaml").read_text())
    for f in fixed:
        (tmp_path / f).write_text("{}")
    (tmp_path / "models/embedder.json").write_text("{}")
    params = {"approaches": {"a": {"kind": "embed_lr"}, "b": {"kind": "centroid"}}}  # llm dropped
    s = collect.collect(Context(tmp_path, params), {"train": 1, "validation": 1, "test": 100}, 2, 20, 0)
    assert set(s["approaches"]) == {"a", "b"}
    expected = ["metrics/llm.json", "metrics/timings/fit_llm.json", "metrics/timings/predict_llm.json",
                "metrics/train/llm", "predictions/llm", "models/llm"]
    assert [p.as_posix() for p in stale.stale_outputs(tmp_path, params, fixed)] == expected
    stale.remove(tmp_path, stale.stale_outputs(tmp_path, params, fixed))
    assert stale.stale_outputs(tmp_path, params, fixed) == []
    assert all((tmp_path / f).is_file() for f in fixed) and (tmp_path / "metrics/a.json").is_file()
    assert (tmp_path / "models/embedder.json").is_file() and (tmp_path / "predictions/b").is_dir()


def test_stale_keeps_the_non_approach_stages_metrics_named_in_dvc_yaml():
    from textclf.report import stale

    fixed = stale.fixed_outputs((Path(__file__).resolve().parents[1] / "dvc.yaml").read_text())
    assert {"metrics/data.json", "metrics/summary.json", "metrics/curves.json", "metrics/timings/embed.json"} <= fixed
    assert not any("${" in f or "stack" in f for f in fixed)  # per-approach (foreach) outputs are not fixed


def test_a_model_card_per_approach_with_interval_labelled_rows_and_settings(tmp_path):
    from textclf.report.cards import model_cards

    row = {"kind": "embed_lr", "rows": 200, "accuracy": 0.8, "macro_f1": 0.79, "macro_f1_ci_low": 0.73,
           "macro_f1_ci_high": 0.85, "unparseable_rate": 0.0, "labelled_rows": 400, "labelled_splits": "train"}
    params = {"data": {"name": "tiny", "hub_id": None, "local_dir": "../d", "label_names": ["neg", "pos"]},
              "embedder": {"name": "minilm", "backend": "onnx"}, "classifier": {"C": 0.5},
              "approaches": {"embed_lr": {"kind": "embed_lr", "input": "data/embeddings", "params": "classifier"}},
              "ensembles": {}}
    card = model_cards({"approaches": {"embed_lr": row}}, Context(tmp_path, params))["embed_lr"]
    assert "0.7900 [0.7300, 0.8500]" in card and "400 (train)" in card and "C: 0.5" in card
    assert "`minilm` (backend `onnx`)" in card and "textclf predict --approach embed_lr" in card
    assert "– s per 1,000 texts" in card  # no timings recorded: said, not invented
