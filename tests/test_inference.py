"""textclf.load / `textclf predict` refuse, saying what to do, before loading any model: an
approach that was not run, params changed since the run, outputs missing, an input column that
does not exist, empty texts (as the data stage's policy says). The end-to-end equality with the
pipeline's predictions is tests/test_predict_cli.py (slow)."""

import importlib
import tomllib

import pytest
import yaml

from helpers import REPO, write_jsonl
from textclf.serving import cli
from textclf.serving.inference import NotRun, OutputsMissing, StaleRun, leaf_diff, load

PARAMS = {"seed": 42, "data": {"text_column": "text", "on_empty_text": "error"},
          "classifier": {"C": 1.0, "max_iter": 1000},
          "approaches": {"embed_lr": {"kind": "embed_lr", "input": "data/prepared", "params": "classifier"}},
          "ensembles": {}}


@pytest.fixture
def repo(tmp_path):
    """A run's bookkeeping without its outputs: params.yaml, dvc.yaml and a dvc.lock that
    records fit@/predict@embed_lr with the params above."""
    (tmp_path / "dvc.yaml").write_text("stages: {}\n")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(PARAMS))
    spec = PARAMS["approaches"]["embed_lr"]
    lock = {"stages": {
        "data": {"params": {"params.yaml": {"seed": 42}}, "outs": [{"path": "data/prepared"}]},
        "fit@embed_lr": {"params": {"params.yaml": {"approaches.embed_lr": spec, "classifier": PARAMS["classifier"]}},
                         "outs": [{"path": "models/embed_lr"}]},
        "predict@embed_lr": {"params": {"params.yaml": {"approaches.embed_lr": spec}},
                             "outs": [{"path": "predictions/embed_lr"}, {"path": "metrics/embed_lr.json"}]}}}
    (tmp_path / "dvc.lock").write_text(yaml.safe_dump(lock))
    return tmp_path


def test_the_console_script_points_at_the_cli():
    target = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]["textclf"]
    module, func = target.split(":")
    assert getattr(importlib.import_module(module), func) is cli.main


def test_an_approach_that_was_not_run(repo, capsys):
    with pytest.raises(NotRun, match=r"approach 'stack' was not run .* configures \['embed_lr'\]"):
        load("stack", repo)
    assert cli.main(["predict", "--repo", str(repo), "--approach", "stack", "a film"]) == 2
    assert "approach 'stack' was not run" in capsys.readouterr().err


def test_a_stage_missing_from_dvc_lock(repo):
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    del lock["stages"]["fit@embed_lr"]
    (repo / "dvc.lock").write_text(yaml.safe_dump(lock))
    with pytest.raises(NotRun, match=r"fit@embed_lr has not run .*`dvc repro fit@embed_lr`"):
        load("embed_lr", repo)


def test_outputs_missing_say_dvc_pull_or_repro(repo, capsys):
    with pytest.raises(OutputsMissing, match=r"data/prepared is missing .*`dvc pull`.*`dvc repro data`"):
        load("embed_lr", repo)
    (repo / "data/prepared").mkdir(parents=True)
    with pytest.raises(OutputsMissing, match=r"models/embed_lr is missing .*`dvc pull`.*`dvc repro fit@embed_lr`"):
        load("embed_lr", repo)
    assert cli.main(["predict", "--repo", str(repo), "-a", "embed_lr", "a film"]) == 2
    assert "dvc pull" in capsys.readouterr().err


def test_params_changed_since_the_run(repo):
    params = {**PARAMS, "classifier": {**PARAMS["classifier"], "C": 0.5}}
    (repo / "params.yaml").write_text(yaml.safe_dump(params))
    with pytest.raises(StaleRun, match=r"since fit@embed_lr ran: \['classifier.C'\] .*ran with 1.0, now 0.5.*dvc repro"):
        load("embed_lr", repo)


def test_params_compare_as_dvc_reads_them():
    # DVC (YAML 1.2) records 5e-05 as a string where PyYAML (1.1) reads a float, and the reverse.
    assert leaf_diff({"lr": "5e-05", "n": [1, 2]}, {"lr": 5e-05, "n": [1, 2]}, "x") == []
    assert leaf_diff({"lr": "5e-05"}, {"lr": 1e-4}, "x") == [("x.lr", "5e-05", 1e-4)]
    assert leaf_diff({"on": True}, {"on": 1}, "x") == [("x.on", True, 1)]


def test_an_input_column_that_does_not_exist(repo, capsys):
    (repo / "reviews.csv").write_text("id,review\n1,a witty film\n")
    assert cli.main(["predict", "--repo", str(repo), "-a", "embed_lr", "--input", str(repo / "reviews.csv")]) == 2
    err = capsys.readouterr().err
    assert "no column 'text'; found ['id', 'review']" in err and "--text-column" in err


def test_empty_texts_follow_the_data_policy(repo, capsys):
    write_jsonl(repo / "in.jsonl", [{"text": "fine"}, {"text": "  "}, {"text": None}])
    assert cli.main(["predict", "--repo", str(repo), "-a", "embed_lr", "-i", str(repo / "in.jsonl")]) == 2
    err = capsys.readouterr().err
    assert "row 2: empty or whitespace-only text '  ' (2 such rows)" in err and "--on-empty-text drop" in err


def test_skipped_rows_stay_in_the_output_and_are_counted():
    class Result:
        def rows(self):
            return [{"label": 1, "label_name": "positive", "scores": {"negative": 0.1, "positive": 0.9}}]

    rows = cli.output_rows(["", "good", None], [1], Result(), "empty_text")
    assert rows == [{"row": 1, "label": None, "label_name": None, "skipped": "empty_text"},
                    {"row": 2, "label": 1, "label_name": "positive", "scores": {"negative": 0.1, "positive": 0.9}},
                    {"row": 3, "label": None, "label_name": None, "skipped": "empty_text"}]
