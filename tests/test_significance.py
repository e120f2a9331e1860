"""The summary says in words whether the best approach beats each other one at 5%."""

import json

import numpy as np

from textclf.core.context import Context
from textclf.report import collect, markdown


def _v(delta, pb, pm):
    return {"best_minus_this_macro_f1": delta, "ci_low": delta - 0.01, "ci_high": delta + 0.01,
            "p_bootstrap": pb, "p_mcnemar": pm}


def test_verdict_needs_both_tests_below_five_percent():
    assert markdown.verdict("stack", "llm", _v(0.08, 0.0001, 0.0002)) == (
        "stack beats llm significantly at 5% (ΔF1 +0.0800 [+0.0700, +0.0900]; paired bootstrap p<0.001, McNemar p<0.001).")
    assert markdown.verdict("stack", "embed_lr", _v(0.0093, 0.234, 0.275)) == (
        "stack is not significantly better than embed_lr at 5% (ΔF1 +0.0093 [-0.0007, +0.0193]; "
        "paired bootstrap p=0.234, McNemar p=0.275).")
    # the tests disagree (as stack vs centroid did in the default run): not significant, both named
    assert markdown.verdict("stack", "centroid", _v(0.0177, 0.034, 0.059)) == (
        "stack is not significantly better than centroid at 5%: paired bootstrap says it is (p=0.034), "
        "McNemar does not (p=0.059) (ΔF1 +0.0177 [+0.0077, +0.0277]).")
    assert "McNemar says it is (p=0.010), paired bootstrap does not (p=0.200)" in markdown.verdict("a", "b", _v(0.01, 0.2, 0.01))
    assert markdown.verdict("a", "b", _v(0.0, 1.0, 1.0)).startswith("a ties b")
    # the line itself: p = 0.05 is not below 5%
    assert not collect.significant(0.05, 0.001) and collect.significant(0.0499, 0.0499)


def _write(root, name, y, pred):
    d = root / ("ensembles" if name == "stack" else "predictions") / name
    d.mkdir(parents=True)
    (d / "test.jsonl").write_text("".join(json.dumps({"row": i, "label": int(g), "pred": int(p)}) + "\n"
                                          for i, (g, p) in enumerate(zip(y, pred))))
    (root / "metrics").mkdir(exist_ok=True)
    f1 = float((pred == y).mean())
    (root / "metrics" / f"{name}.json").write_text(json.dumps(
        {"kind": "ensemble" if name == "stack" else name, "rows": len(y), "accuracy": f1, "macro": {"f1": f1},
         "weighted": {"f1": f1}, "unparseable": 0, "labelled": {"splits": [], "rows": 0}}))


def test_summary_json_and_markdown_say_which_differences_are_significant(tmp_path):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 600)
    best = np.where(rng.random(600) < 0.95, y, 1 - y)
    near = best.copy()
    near[np.flatnonzero(best == y)[:3]] ^= 1  # 3 rows worse: no test can tell
    far = np.where(rng.random(600) < 0.7, y, 1 - y)
    for name, pred in (("stack", best), ("near", near), ("far", far)):
        _write(tmp_path, name, y, pred)
    params = {"approaches": {"near": {"kind": "near"}, "far": {"kind": "far"}},
              "ensembles": {"stack": {"bases": ["near", "far"]}}, "data": {"name": "d"}, "embedder": {"name": "e"}}
    s = collect.collect(Context(tmp_path, params), {"train": 0, "validation": 0, "test": 600}, 2, 500, 42)
    assert s["best"] == "stack" and s["significance"]["alpha"] == 0.05
    assert s["approaches"]["far"]["vs_best"]["significant"] is True
    assert s["approaches"]["near"]["vs_best"]["significant"] is False
    md = markdown.markdown(s, Context(tmp_path, params))
    assert "Is **stack** significantly better than the others?" in md
    lines = [line for line in md.splitlines() if line.startswith("- stack ")]
    assert lines[0].startswith("- stack is not significantly better than near at 5%")  # table order
    assert lines[1].startswith("- stack beats far significantly at 5%")
