"""End to end in a clone of the session's CI-profile run (conftest.ci_run):
the summary, ensemble and plots stages under `dvc repro`, `dvc plots show`, and a branch
whose changed param shows up in `dvc metrics diff` against main."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from helpers import git_env, ran_stages
from textclf.report import plots

pytestmark = pytest.mark.slow


def run(cmd: list[str], cwd: Path, env: dict[str, str]) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if proc.returncode:
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc.stdout


@pytest.fixture(scope="module")
def repo(ci_run):
    """A clone of the session's CI-profile run (committed on main), outputs checked out."""
    return ci_run.clone("compare"), git_env()


def test_summary_has_intervals_paired_tests_and_the_ensemble(repo):
    dst, env = repo
    s = json.loads((dst / "metrics/summary.json").read_text())
    params = yaml.safe_load((dst / "params.yaml").read_text())
    names = set(params["approaches"]) | set(params["ensembles"])
    assert set(s["approaches"]) == names and "stack" in names
    for name, r in s["approaches"].items():
        assert r["macro_f1_ci_low"] <= r["macro_f1"] <= r["macro_f1_ci_high"], name
        assert (name == s["best"]) == ("vs_best" not in r)
    # zero-shot, but its descriptions are chosen on the validation labels
    assert s["approaches"]["label_desc"]["labelled_splits"] == "validation"
    assert s["approaches"]["stack"]["labelled_splits"] == "train+validation"
    assert "fit_seconds" not in json.dumps(s)  # timings stay out of the deterministic summary
    before = (dst / "metrics/summary.json").read_bytes()
    run([sys.executable, "-m", "textclf.stages.summary"], dst, env)
    assert (dst / "metrics/summary.json").read_bytes() == before
    assert "| stack | ensemble |" in (dst / "reports/summary.md").read_text()


def test_plot_files_have_the_fields_their_templates_read_and_render(repo):
    dst, env = repo
    spec = yaml.safe_load((dst / "dvc.yaml").read_text())["plots"]
    params = yaml.safe_load((dst / "params.yaml").read_text())
    names = set(params["approaches"]) | set(params["ensembles"])
    def has_scores(name):  # ROC / PR need scores; a label-mode LLM has none
        pred = dst / ("ensembles" if name in params["ensembles"] else "predictions") / name / "test.jsonl"
        return "scores" in json.loads(pred.read_text().splitlines()[0])

    scored = {n for n in names if has_scores(n)}
    assert {"embed_lr", "centroid", "label_desc", "stack"} <= scored
    checked = 0
    for entry in spec:
        (target, props), = entry.items()
        path = dst / target
        files = sorted(path.glob("*.json")) if path.is_dir() else [path]
        if path.is_dir():  # confusion: one file per approach
            assert {f.stem for f in files} == names, target
        elif target in ("plots/roc.json", "plots/pr.json"):  # curves: every scored approach in one chart
            assert {r["approach"] for r in json.loads(path.read_text())} == scored, target
        for f in files:
            rows = json.loads(f.read_text())
            assert rows and all(props["x"] in r and props["y"] in r for r in rows), f
            checked += 1
    assert checked == len(names) + 3
    interval = json.loads((dst / "plots/macro_f1.json").read_text())
    assert all(set(plots.FIELDS["macro_f1"]) <= set(r) for r in interval)
    run(["dvc", "plots", "show", "-q"], dst, env)
    html = (dst / "dvc_plots/index.html").read_text()
    assert "plots_confusion_stack_json" in html and "plots_roc_json" in html and "ci_high" in html


def test_branch_with_changed_param_shows_in_metrics_diff(repo):
    dst, env = repo
    run(["git", "checkout", "-q", "-b", "low-c"], dst, env)
    run([sys.executable, "-m", "textclf.params", "profile=ci", "classifier.C=0.01"], dst, env)
    out = run(["dvc", "repro"], dst, env)
    # only what depends on the param reran
    assert ran_stages(out) == {"fit@embed_lr", "predict@embed_lr", "ensemble@stack", "summary", "plots"}, out
    run(["git", "add", "-A"], dst, env)
    run(["git", "commit", "-qm", "C=0.01"], dst, env)
    diff = json.loads(run(["dvc", "metrics", "diff", "main", "low-c", "--json"], dst, env))
    changed = diff["metrics/embed_lr.json"]
    assert changed["macro.f1"]["old"] != changed["macro.f1"]["new"]
    assert "metrics/centroid.json" not in diff  # untouched approaches show no change
    params_diff = json.loads(run(["dvc", "params", "diff", "main", "low-c", "--json"], dst, env))
    assert {k: params_diff["params.yaml"]["classifier.C"][k] for k in ("old", "new")} == {"old": 1.0, "new": 0.01}
    run(["dvc", "plots", "diff", "main", "low-c", "-q"], dst, env)
    assert "low-c" in (dst / "dvc_plots/index.html").read_text()
