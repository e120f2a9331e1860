"""The CI guard (textclf.benchmark.ci_guard): a CI-profile run's per-approach macro-F1 against the
committed figures."""

import json
import subprocess
import sys

import pytest

from textclf.benchmark.ci_guard import main

F1 = {"centroid": 0.843338, "embed_lr": 0.851778, "llm": 0.778459, "stack": 0.859247}


def _summary(path, f1, best="stack"):
    approaches = {n: {"macro_f1": v, "accuracy": v, "kind": n, "macro_f1_ci_low": v - 0.02} for n, v in f1.items()}
    path.write_text(json.dumps({"approaches": approaches, "best": best, "significance": {"alpha": 0.05}}))
    return path


@pytest.fixture
def files(tmp_path):
    """The committed figures (written by --write from a summary with F1) and a path for the current summary."""
    committed = tmp_path / "results" / "ci" / "summary.json"
    base = _summary(tmp_path / "base.json", F1)
    assert main(["--write", "--committed", str(committed), "--current", str(base)]) == 0
    return committed, tmp_path / "summary.json"


def _check(committed, current, *extra):
    return main(["--committed", str(committed), "--current", str(current), *extra])


def test_write_then_check_roundtrip(files, capsys):
    committed, current = files
    text = committed.read_text()
    assert text.endswith("}\n")
    assert json.loads(text) == {"profile": "ci", "approaches": {n: {"macro_f1": v} for n, v in F1.items()}}
    assert text == json.dumps(json.loads(text), indent=2, sort_keys=True) + "\n"
    capsys.readouterr()
    assert _check(committed, _summary(current, F1)) == 0  # identical
    out = capsys.readouterr().out
    assert "CI guard passed" in out
    assert "Approach" in out and "Committed" in out and "Current" in out and "Change" in out
    assert "stack     0.8592     0.8592   +0.0000  ok" in out


def test_a_drop_of_003_fails_and_names_the_approach(files, capsys):
    committed, current = files
    capsys.readouterr()
    assert _check(committed, _summary(current, {**F1, "embed_lr": F1["embed_lr"] - 0.03})) == 1
    captured = capsys.readouterr()
    assert "embed_lr: macro-F1 0.8518 -> 0.8218 (-0.0300)" in captured.err
    assert "centroid" not in captured.err and "stack" not in captured.err
    assert "DROP > 0.02" in captured.out
    assert "If the change is intended" in captured.err
    assert "python -m textclf.benchmark.ci_guard --write" in captured.err and "make ci" in captured.err


def test_a_drop_of_001_passes(files):
    committed, current = files
    assert _check(committed, _summary(current, {**F1, "llm": F1["llm"] - 0.01})) == 0
    # and so does a rise, and exactly the allowed drop
    assert _check(committed, _summary(current, {**F1, "llm": F1["llm"] + 0.05, "stack": F1["stack"] - 0.02})) == 0
    # --max-drop tightens it
    assert _check(committed, _summary(current, {**F1, "llm": F1["llm"] - 0.01}), "--max-drop", "0.005") == 1


def test_missing_approach_fails_new_one_is_reported(files, capsys):
    committed, current = files
    capsys.readouterr()
    gone = {n: v for n, v in F1.items() if n != "centroid"}
    assert _check(committed, _summary(current, gone)) == 1
    assert "centroid: in the committed figures" in capsys.readouterr().err
    assert _check(committed, _summary(current, {**F1, "task_specific": 0.83})) == 0
    out = capsys.readouterr().out
    assert "task_specific" in out and "new" in out


def test_missing_committed_file_fails_clearly(tmp_path, capsys):
    current = _summary(tmp_path / "summary.json", F1)
    assert _check(tmp_path / "nope.json", current) == 1
    err = capsys.readouterr().err
    assert "nope.json not found" in err and "make ci" in err and "--write" in err


def test_missing_current_summary_fails_clearly(files, capsys):
    committed, current = files
    assert _check(committed, current) == 1
    assert "run `make ci` first" in capsys.readouterr().err


def test_module_entry_point(files):
    committed, current = files
    _summary(current, {**F1, "stack": F1["stack"] - 0.03})
    out = subprocess.run([sys.executable, "-m", "textclf.benchmark.ci_guard", "--committed", str(committed),
                          "--current", str(current)], capture_output=True, text=True)
    assert out.returncode == 1
    assert "stack: macro-F1" in out.stderr
