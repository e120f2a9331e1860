"""Error overlap between approaches (compare.error_overlap): the correlation of per-row
correctness and the share of rows both get wrong, in summary.json and summary.md."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from sklearn.metrics import f1_score, matthews_corrcoef

from textclf.core.context import Context
from textclf.evaluation import compare
from textclf.report import collect, markdown

GOLD = np.array([0, 1, 2, 0, 1])


def test_identical_predictions_correlate_fully_and_share_every_error():
    a = np.array([0, 1, 2, 1, 0])  # right, right, right, wrong, wrong
    ov = compare.error_overlap(GOLD, {"a": a, "b": a.copy()})
    assert ov["correctness_correlation"] == {"a": {"a": pytest.approx(1.0), "b": pytest.approx(1.0)},
                                             "b": {"a": pytest.approx(1.0), "b": pytest.approx(1.0)}}
    assert ov["both_wrong"] == {"a": {"a": 0.4, "b": 0.4}, "b": {"a": 0.4, "b": 0.4}}


def test_complementary_errors_correlate_negatively_and_are_never_wrong_together():
    gold = np.zeros(4, dtype=int)
    ov = compare.error_overlap(gold, {"a": np.array([0, 0, 1, 1]), "b": np.array([1, 1, 0, 0])})
    assert ov["correctness_correlation"]["a"]["b"] == pytest.approx(-1.0)
    assert ov["correctness_correlation"]["b"]["a"] == pytest.approx(-1.0)
    assert ov["both_wrong"]["a"]["b"] == 0.0 and ov["both_wrong"]["a"]["a"] == 0.5


def test_phi_of_a_hand_counted_table_and_unparseable_is_wrong():
    """Correctness a = 1,1,1,0,0 and b = 1,1,0,1,0: both right 2, only a 1, only b 1, both wrong 1,
    so phi = (2*1 - 1*1) / sqrt(3*2*3*2) = 1/6 and both wrong on 1 row of 5. b's wrong row 4 is
    unparseable (-1): wrong like any other."""
    a = np.array([0, 1, 2, 1, 0])
    b = np.array([0, 1, 0, 0, -1])
    ov = compare.error_overlap(GOLD, {"a": a, "b": b})
    assert ov["correctness_correlation"]["a"]["b"] == pytest.approx(1 / 6)
    assert ov["correctness_correlation"]["a"]["b"] == pytest.approx(matthews_corrcoef(a == GOLD, b == GOLD))
    assert ov["both_wrong"]["a"]["b"] == pytest.approx(0.2)
    assert ov["both_wrong"]["b"]["b"] == pytest.approx(0.4)
    assert list(ov["both_wrong"]) == ["a", "b"]  # the caller's order


def test_zero_variance_gives_none_without_warnings_or_nan():
    """Always right or always wrong: no variance, the correlation is undefined (None, not NaN,
    and numpy is not asked, so it does not warn); the others' correlations are still computed."""
    a = np.array([0, 1, 2, 1, 0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ov = compare.error_overlap(GOLD, {"a": a, "b": a.copy(), "right": GOLD.copy(), "wrong": GOLD + 1})
        only = compare.error_overlap(GOLD, {"right": GOLD.copy()})
    r = ov["correctness_correlation"]
    assert r["a"]["b"] == pytest.approx(1.0)
    for name in ("right", "wrong"):
        assert all(r[name][other] is None and r[other][name] is None for other in r)
    assert ov["both_wrong"]["right"] == {"a": 0.0, "b": 0.0, "right": 0.0, "wrong": 0.0}
    assert ov["both_wrong"]["wrong"] == {"a": 0.4, "b": 0.4, "right": 0.0, "wrong": 1.0}
    json.dumps(ov, allow_nan=False)
    assert only == {"correctness_correlation": {"right": {"right": None}}, "both_wrong": {"right": {"right": 0.0}}}
    with pytest.raises(ValueError, match="no test rows"):
        compare.error_overlap(np.array([], dtype=int), {"a": np.array([], dtype=int)})


def _write(root, name, y, pred):
    d = root / "predictions" / name
    d.mkdir(parents=True, exist_ok=True)
    (d / "test.jsonl").write_text("".join(json.dumps({"row": i, "label": int(g), "pred": int(p)}) + "\n"
                                          for i, (g, p) in enumerate(zip(y, pred))))
    (root / "metrics").mkdir(exist_ok=True)
    (root / "metrics" / f"{name}.json").write_text(json.dumps(
        {"kind": "embed_lr", "rows": len(y), "accuracy": float((pred == y).mean()),
         "macro": {"f1": round(f1_score(y, pred, average="macro", zero_division=0), 6)}, "weighted": {"f1": 0.0},
         "unparseable": 0, "labelled": {"splits": ["train"], "rows": 0}}))


def test_summary_json_and_markdown_have_the_overlap_table(tmp_path):
    rng = np.random.default_rng(0)
    n = 300
    y = rng.integers(0, 2, n)
    good = np.where(rng.random(n) < 0.9, y, 1 - y)
    twin = good.copy()
    fixed = np.flatnonzero(good != y)[:3]
    twin[fixed] = y[fixed]  # 3 of good's errors fixed: nearly the same errors
    preds = {"good": good, "twin": twin, "oracle": y.copy(), "other": np.where(rng.random(n) < 0.7, y, 1 - y)}
    for name, pred in preds.items():
        _write(tmp_path, name, y, pred)
    params = {"approaches": {k: {"kind": "embed_lr", "input": "data/embeddings"} for k in preds}, "ensembles": {},
              "data": {"name": "d"}, "embedder": {"name": "e"}}
    ctx = Context(tmp_path, params)
    split_rows = {"train": 100, "validation": 1, "test": n}
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        s = collect.collect(ctx, split_rows, 2, 50, 0)
    ov = s["error_overlap"]
    assert list(ov) == ["correctness_correlation", "both_wrong"]
    names = sorted(preds)
    assert list(ov["correctness_correlation"]) == names and all(list(row) == names for row in ov["both_wrong"].values())
    r = ov["correctness_correlation"]
    correct = {k: v == y for k, v in preds.items()}
    assert r["good"]["twin"] == round(float(np.corrcoef(correct["good"], correct["twin"])[0, 1]), 6)
    assert 0.9 < r["good"]["twin"] < 1 and abs(r["good"]["other"]) < 0.3
    assert r["oracle"]["good"] is None and r["oracle"]["oracle"] is None
    assert ov["both_wrong"]["good"]["twin"] == round(float((~correct["good"] & ~correct["twin"]).mean()), 6)
    assert ov["both_wrong"]["oracle"]["oracle"] == 0.0
    text = json.dumps(s, sort_keys=True, allow_nan=False)
    assert json.dumps(collect.collect(ctx, split_rows, 2, 50, 0), sort_keys=True) == text  # same bytes again
    md = markdown.markdown(s, ctx)
    assert md == markdown.markdown(json.loads(text), ctx)  # as rendered from the written JSON
    order = [n for n, _ in markdown.in_order(s["approaches"])]
    assert order[0] == "oracle"
    assert "| | " + " | ".join(order) + " |" in md
    assert "An ensemble only helps where its members err on different rows" in md
    good_row = [line for line in md.splitlines() if line.startswith("| good | ")][-1]  # after the main table
    bw = ov["both_wrong"]["good"]
    assert f"| – / {bw['oracle']:.1%} |" in good_row and f"err {bw['good']:.1%}" in good_row
    assert f"{r['good']['twin']:.3f} / {bw['twin']:.1%}" in good_row
    assert "Correlation undefined (–) for oracle (right on every test row)" in md
    assert "nan" not in md.lower()


def test_no_overlap_table_for_a_single_approach(tmp_path):
    y = np.array([0, 1, 0, 1])
    _write(tmp_path, "only", y, np.array([0, 1, 1, 1]))
    params = {"approaches": {"only": {"kind": "embed_lr"}}, "ensembles": {}, "data": {"name": "d"},
              "embedder": {"name": "e"}}
    s = collect.collect(Context(tmp_path, params), {"train": 1, "validation": 1, "test": 4}, 2, 20, 0)
    assert s["error_overlap"] == {"correctness_correlation": {"only": {"only": 1.0}}, "both_wrong": {"only": {"only": 0.25}}}
    assert "Error overlap" not in markdown.markdown(s, Context(tmp_path, params))
