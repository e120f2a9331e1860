"""engine=ray runs the same batches as engine=local on a real local Ray runtime (2 CPUs,
127.0.0.1): rows come back in order whichever actor finishes first, the embedder's vectors
are bit-identical on the CPU (ONNX) and within float noise on the torch backend, and in a
DVC repo switching engines reruns nothing and changes no output."""

from __future__ import annotations

import json
import time
from functools import partial

import numpy as np
import pytest
import yaml

try:  # `make test` installs the extra: a missing Ray is a broken setup, not a skip
    import ray  # noqa: F401
except ImportError:
    pytest.fail("engine=ray's tests need the [ray] extra: `make test`, or pip install -e '.[ray]'", pytrace=False)

from helpers import REPO, run, stale_stages
from textclf.runtime.embed import Embedder
from textclf.runtime.engine import check_engine, map_batches, ray_runtime

RAY = {"name": "ray", "actors": 2, "cpus_per_actor": 1, "num_cpus": 2}


@pytest.fixture(scope="module")
def ray_local():
    """One local Ray runtime for the module (starting one takes seconds)."""
    import sys

    import ray
    from ray import cloudpickle

    # The workers cannot import this test module: ship its functions by value.
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    with ray_runtime(RAY):
        assert ray.is_initialized()
        yield


def _timed_worker(slow_row: int):
    """Each output row: (the text as a number, the time its batch finished). The batch
    holding `slow_row` sleeps first, so it finishes after batches sent after it."""

    def work(texts: list[str]) -> np.ndarray:
        if str(slow_row) in texts:
            time.sleep(3.0)
        done = time.time()
        return np.array([[float(t), done] for t in texts])

    return work


def test_rows_come_back_in_order_when_actors_finish_out_of_order(ray_local):
    texts = [str(i) for i in range(23)]
    # Uneven batches, the first one slow: the other actor finishes later ones before it.
    batches = [np.array([0, 1, 2]), np.array([3]), np.array([4, 5, 6, 7, 8]), np.array([9, 10]),
               np.array(range(11, 23))]
    out = map_batches(texts, batches, partial(_timed_worker, 0), RAY, progress=False)
    assert out[:, 0].tolist() == [float(t) for t in texts]
    # It really was out of order: the other actor finished batches sent after the slow one first.
    assert out[0, 1] > out[3:, 1].min() + 1.0
    local = map_batches(texts, batches, partial(_timed_worker, 0), {"name": "local"}, progress=False)
    assert np.array_equal(local[:, 0], out[:, 0])


def _minilm(backend: str) -> dict:
    spec = yaml.safe_load((REPO / "conf/embedder/minilm.yaml").read_text())
    return {**spec, "backend": backend, "batch_size": 16}


def _texts(n: int) -> list[str]:
    rows = (REPO.parent / "shared/data/rotten_tomatoes/test.jsonl").read_text(encoding="utf-8").split("\n")
    return [json.loads(r)["text"] for r in rows[:n]]


@pytest.mark.parametrize("backend", ["onnx", "torch"])
def test_ray_embeddings_match_local(ray_local, backend):
    texts = _texts(150)
    emb = Embedder.from_spec(_minilm(backend), "cpu")
    local = emb.encode(texts, progress=False)
    ray_ = emb.encode(texts, progress=False, engine=RAY)
    diff = float(np.abs(local - ray_).max())
    print(f"{backend}: max |local - ray| = {diff:.3g}")
    if backend == "onnx":
        assert np.array_equal(local, ray_), diff  # the same batches on the same runtime
    else:
        # torch: the seed's one encode() call vs the same batches one by one on actors
        # with 1 thread each.
        assert diff < 1e-5
    assert (local.argmax(1) == ray_.argmax(1)).all()


def test_check_engine_names_the_bad_setting():
    with pytest.raises(ValueError, match=r"engine.name: Invalid value 'spark', expected one of \[local, ray\]"):
        check_engine({"name": "spark"})
    with pytest.raises(ValueError, match="engine.actors"):
        check_engine({"name": "ray", "actors": 0})


@pytest.mark.slow
def test_switching_engines_reruns_nothing_and_changes_no_output(ci_run):
    """The CI profile's run, then engine=ray: `dvc status` is clean (no stage declares the
    engine), and forcing `embed` and `predict@task_specific` on Ray writes the same bytes, so
    nothing downstream of them is stale."""
    repo = ci_run.clone("engine_ray")
    before = {p: (repo / p).read_bytes() for p in
              [f"data/embeddings/{s}.npy" for s in ("train", "validation", "test")]
              + ["predictions/task_specific/test.jsonl", "predictions/task_specific/validation.jsonl"]}
    run("python -m textclf.params profile=ci engine=ray engine.num_cpus=2", repo)
    assert yaml.safe_load((repo / "params.yaml").read_text())["engine"]["name"] == "ray"
    assert stale_stages(repo) == set()
    out = run("dvc repro -f -s embed && dvc repro -f -s predict@task_specific", repo)
    assert "Ray Data" in out, out[-3000:]
    for path, data in before.items():
        assert (repo / path).read_bytes() == data, f"{path} differs between engine=local and engine=ray"
    # Only the summary, which reads the forced stages' new wall times (metrics/timings/).
    assert stale_stages(repo) <= {"summary"}
