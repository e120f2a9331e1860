"""Two experiments run in parallel (`dvc exp run --queue` + `dvc queue start -j 2`) in a temp copy
of the repository with its own, empty TEXTCLF_CACHE: both race on the shared cache (model
assembly, the ONNX export, the LLM reply cache's SQLite file) and on llama.cpp server ports.
Both must complete with the metrics a run alone gives, the reply cache must hold each distinct
request once, and the cache must hold no half-written file.

The CI profile on smaller samples (LIMITS), so that it stays a few minutes on 2 cores: the
race is in the cold cache and the stages' start, not in the number of rows."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from helpers import SHARED, copy_project, ran_stages, read_jsonl, run

pytestmark = pytest.mark.slow
SIZES = (16, 32)  # embedder.batch_size of the two experiments: both run `embed` (and what follows)
LIMITS = "-S data.limits.train=120 -S data.limits.validation=40 -S data.limits.test=60"
# Metrics that embedder.batch_size cannot change (no embedding reaches them): equal across the two.
NOT_FROM_EMBEDDINGS = ("metrics/data.json", "metrics/llm.json", "metrics/task_specific.json",
                       "metrics/train/task_specific/metrics.json")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def exp_metrics(repo: Path, rev: str) -> dict[str, bytes]:
    """Every metrics file of a commit but the wall times, as bytes (metrics are cache: false: in git)."""
    names = run(f"git ls-tree -r --name-only {rev} -- metrics", repo).split()
    return {n: subprocess.run(["git", "show", f"{rev}:{n}"], cwd=repo, capture_output=True, check=True).stdout
            for n in names if "/timings/" not in n}


def experiments(repo: Path) -> dict[int, tuple[str, str]]:
    """embedder.batch_size -> (experiment name, commit), from `dvc exp show --json`."""
    out = {}
    for commit in json.loads(run("dvc exp show --no-pager --json", repo)):
        for exp in commit.get("experiments") or []:
            for rev in exp["revs"]:
                bs = rev["data"]["params"]["params.yaml"]["data"]["embedder"]["batch_size"]
                out[bs] = (rev["name"], rev["rev"])
    return out


def test_two_queued_experiments_share_a_cold_cache(tmp_path, monkeypatch):
    (tmp_path / "shared").symlink_to(SHARED, target_is_directory=True)
    repo = copy_project(tmp_path / "main")
    cache = tmp_path / "textclf-cache"  # empty: both experiments assemble, export and ask the LLM
    monkeypatch.setenv("TEXTCLF_CACHE", str(cache))  # run() and the queue's workers inherit it
    run("python -m textclf.params profile=ci " + LIMITS.replace("-S ", ""), repo)
    run("python -c 'from pathlib import Path; "
        "from textclf.core.context import link_from_params; link_from_params(Path.cwd())'", repo)
    run("git add -A && git commit -qm 'ci profile'", repo)

    print("load average before the queue:", os.getloadavg())
    start = time.monotonic()
    run(f"dvc exp run --queue -S profile=ci {LIMITS} -S embedder.batch_size=" + ",".join(map(str, SIZES)), repo)
    run("dvc queue start -j 2", repo)
    while True:
        status = run("dvc queue status", repo)
        if not any(s in status for s in ("Queued", "Running")):
            break
        assert time.monotonic() - start < 1800, status
        time.sleep(10)
    parallel_s = time.monotonic() - start
    assert status.count("Success") == 2 and "Failed" not in status, status + run(
        "dvc queue logs $(dvc queue status | awk '/Failed/{print $1; exit}') 2>&1 || true", repo)
    exps = experiments(repo)
    assert sorted(exps) == list(SIZES), exps
    logs = {bs: run(f"dvc queue logs {name}", repo) for bs, (name, _) in exps.items()}
    for bs, out in logs.items():  # both really embedded (the race on the ONNX export)
        assert "Running stage 'embed'" in out, (bs, out[-3000:])
    print(f"two experiments in parallel: {parallel_s:.0f} s; stages run or restored by each:",
          {bs: sorted(ran_stages(out)) for bs, out in logs.items()})

    # The same metrics, byte for byte, as each other where batch_size cannot matter ...
    metrics = {bs: exp_metrics(repo, rev) for bs, (_, rev) in exps.items()}
    for name in NOT_FROM_EMBEDDINGS:
        assert metrics[16][name] == metrics[32][name], name
    # ... and as the 32 experiment run alone, afterwards, every stage forced (its LLM replies now cached).
    run(f"dvc exp apply {exps[32][0]} && dvc checkout -q", repo)
    start = time.monotonic()
    run("dvc repro -f", repo)
    print(f"the same experiment alone: {time.monotonic() - start:.0f} s")
    alone = {p.relative_to(repo).as_posix(): p.read_bytes() for p in (repo / "metrics").rglob("*")
             if p.is_file() and "timings" not in p.parts}
    assert alone.keys() == metrics[32].keys() and len(alone) >= 5
    for name, data in alone.items():
        assert metrics[32][name] == data, f"{name} differs between the parallel run and the run alone"
    # The run alone asks the LLM nothing: every reply is in the cache the parallel runs filled.
    llm_test = json.loads((repo / "metrics/timings/predict_llm.json").read_text())["details"]["test"]
    print("the run alone's LLM:", {k: llm_test[k] for k in ("requests", "cache_hits")}, "load average", os.getloadavg())
    assert llm_test["requests"] == 0 and llm_test["cache_hits"] > 0, llm_test

    # The reply cache: one row per distinct request (the LLM's splits' texts, none truncated; the
    # selection at fit has one candidate in this profile: no request).
    llm = json.loads(alone["metrics/llm.json"])
    assert llm.get("truncated_rows", 0) == 0, llm
    params = yaml.safe_load((repo / "params.yaml").read_text())
    texts = {r["text"] for s in params["approaches"]["llm"]["splits"] for r in read_jsonl(repo / f"data/prepared/{s}.jsonl")}
    db = sqlite3.connect(cache / "llm" / "responses.sqlite")
    rows, keys = db.execute("SELECT COUNT(*), COUNT(DISTINCT key) FROM responses").fetchone()
    db.close()
    assert rows == keys == len(texts), (rows, keys, len(texts))

    # No half-written file in the cache, and every finished one whole.
    leftovers = [p for p in cache.rglob("*") if "partial" in p.name or p.name.endswith(".tmp")]
    assert not leftovers, leftovers
    onnx = sorted(cache.glob("onnx/*/model.onnx"))
    assert len(onnx) == 1, onnx
    import onnx as onnx_lib

    onnx_lib.checker.check_model(str(onnx[0]))  # a whole, valid model, not a torn write
    for manifest in cache.glob("models/*/.manifest.json"):  # assembled models (none in the CI profile)
        for rel, sha in json.loads(manifest.read_text()).items():
            assert sha256(manifest.parent / rel) == sha, manifest.parent / rel
    assert not list(cache.glob("models/.*.partial")), list(cache.glob("models/*"))
