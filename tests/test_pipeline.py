"""End to end: the real DVC pipeline on the CI profile in a temp copy of the repo."""

import json

import pytest

from helpers import ran_stages, run, stale_stages

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def pipeline(ci_run):
    return ci_run.clone("pipeline"), ci_run.output


def test_full_dag_runs_and_writes_metrics(pipeline):
    repo, out = pipeline
    assert {"data", "models", "embed", "fit@embed_lr", "predict@embed_lr", "summary"} <= ran_stages(out)
    summary = json.loads((repo / "metrics/summary.json").read_text())
    assert set(summary["approaches"]) >= {"embed_lr", "centroid", "label_desc"}
    for name, row in summary["approaches"].items():
        assert row["rows"] == 200 and 0.0 <= row["macro_f1"] <= 1.0, (name, row)
    for name in ("embed_lr", "centroid", "label_desc"):
        # MiniLM on 400 train rows: ~0.65-0.75 (the CI fine-tune and SmolLM2 are plumbing checks only)
        assert summary["approaches"][name]["macro_f1"] > 0.55, (name, summary["approaches"][name])
    m = json.loads((repo / "metrics/embed_lr.json").read_text())
    assert sum(sum(r) for r in m["confusion_matrix"]["matrix"]) == 200
    assert m["labelled"] == {"splits": ["train"], "rows": 0}
    pred = (repo / "predictions/embed_lr/test.jsonl").read_text().splitlines()
    assert len(pred) == 200 and len(json.loads(pred[0])["scores"]) == 2
    assert (repo / "data/embeddings/train.npy").is_file() and (repo / "reports/summary.md").is_file()


def test_second_repro_runs_nothing_with_bytecode_written(pipeline):
    repo, _ = pipeline
    # Bytecode writing is on (conftest.git_env), as on a user's machine.
    run("python -c 'import textclf.approaches.centroid.approach, textclf.approaches.llm.approach, textclf.report.markdown'", repo)
    assert list((repo / "src/textclf/approaches").glob("__pycache__/*.pyc"))
    assert stale_stages(repo) == set()
    out = run("dvc repro", repo)
    assert ran_stages(out) == set(), out
    assert "Data and pipelines are up to date" in run("dvc status", repo)


def test_changing_C_reruns_only_its_stages(pipeline):
    repo, _ = pipeline
    run("python -m textclf.params profile=ci classifier.C=0.05", repo)
    out = run("dvc repro", repo)
    assert ran_stages(out) == {"fit@embed_lr", "predict@embed_lr", "ensemble@stack", "summary", "plots"}, out
    # metrics/ and plots/ are cache: false (in git): `dvc checkout` does not restore them.
    run("git checkout -q -- . && dvc checkout -q", repo)


def test_identical_runs_give_byte_identical_metrics(pipeline):
    repo, _ = pipeline
    def snapshot():  # every metrics file but the wall times, training logs (dvclive) included
        return {p.relative_to(repo).as_posix(): p.read_bytes() for p in (repo / "metrics").rglob("*")
                if p.is_file() and "timings" not in p.parts}
    before = snapshot()
    run("dvc repro -f", repo)
    after = snapshot()
    assert before.keys() == after.keys() and len(before) >= 5
    assert "metrics/train/task_specific/plots/metrics/validation_macro_f1.tsv" in before
    assert before == after


def test_exp_run_with_hydra_override_and_metrics_diff(pipeline):
    repo, _ = pipeline
    # DVC recomposes params.yaml from conf/ with only the given overrides.
    out = run("dvc exp run -S profile=ci -S classifier.C=0.01", repo)
    assert ran_stages(out) == {"fit@embed_lr", "predict@embed_lr", "ensemble@stack", "summary", "plots"}, out
    diff = run("dvc metrics diff --json HEAD", repo)
    changed = json.loads(diff)
    assert "metrics/embed_lr.json" in changed and "metrics/centroid.json" not in changed, diff
    assert run("dvc exp show --no-pager --csv", repo).count("classifier.C") >= 1
