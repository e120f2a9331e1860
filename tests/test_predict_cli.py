"""`textclf predict` and textclf.load on the CI profile's run: for every approach and ensemble the
run made, the first 50 test rows get exactly the labels of predictions/<name>/test.jsonl (or
ensembles/) and the same scores to 1e-5 (the embedders and the transformer batch texts by
length within what they are given: 50 rows alone pad differently than the whole split, about
1e-7; saved scores have 6 digits). The LLM runs through the same prompts, reply cache and client
(SmolLM2 on the local llama.cpp server where a reply is not cached)."""

import json

import numpy as np
import pytest

from helpers import run, write_jsonl

pytestmark = pytest.mark.slow

N = 50
ATOL = 1e-5


@pytest.fixture(scope="module")
def repo(ci_run):
    return ci_run.clone("predict_cli")


def names(repo):
    summary = json.loads((repo / "metrics/summary.json").read_text())
    return sorted(summary["approaches"])


def saved(repo, name):
    base = "ensembles" if (repo / "ensembles" / name).is_dir() else "predictions"
    rows = [json.loads(line) for line in (repo / base / name / "test.jsonl").read_text().splitlines()[:N]]
    return np.array([r["pred"] for r in rows]), np.array([r["scores"] for r in rows]) if "scores" in rows[0] else None


def first_texts(repo):
    return [json.loads(line)["text"] for line in (repo / "data/prepared/test.jsonl").read_text().splitlines()[:N]]


def test_cli_reproduces_the_pipeline_predictions_for_every_approach(repo):
    assert {"embed_lr", "centroid", "label_desc", "task_specific", "llm", "stack"} <= set(names(repo))
    write_jsonl(repo / "new/reviews.jsonl", [{"review": t} for t in first_texts(repo)])
    for name in names(repo):
        out = repo / "new" / f"{name}.jsonl"
        log = run(f"python -m textclf.serving.cli predict --approach {name} --input new/reviews.jsonl --text-column review "
                  f"--output {out}", repo)
        assert f"{N} of {N} rows classified with {name}" in log, log
        rows = [json.loads(line) for line in out.read_text().splitlines()]
        pred, scores = saved(repo, name)
        assert [r["row"] for r in rows] == list(range(1, N + 1))
        assert [r["label"] for r in rows] == pred.tolist(), name
        if scores is not None:
            got = np.array([[r["scores"][k] for k in ("negative", "positive")] for r in rows])
            np.testing.assert_allclose(got, scores, atol=ATOL, rtol=0, err_msg=name)


def test_python_api_reproduces_the_pipeline_predictions(repo):
    import textclf

    texts = first_texts(repo)
    for name in names(repo):
        result = textclf.load(name, repo=repo).predict(texts)
        pred, scores = saved(repo, name)
        assert result.pred.tolist() == pred.tolist(), name
        assert result.labels[0] in ("negative", "positive")
        if scores is not None:
            np.testing.assert_allclose(result.scores, scores, atol=ATOL, rtol=0, err_msg=name)
