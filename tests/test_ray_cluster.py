"""engine=ray on a real two-node Ray cluster on this machine (tests/ray_helpers.py: a head and
a second node, each its own raylet and temp dir, 1 CPU each, on 127.0.0.1), reached through
the engine's `address` setting: MiniLM vectors are bit-identical to the local engine's, and
when the second node's raylet is SIGKILLed mid-run, the run either completes with the same
vectors or fails naming the lost node: never with rows missing or out of order."""

from __future__ import annotations

import numpy as np
import pytest

try:  # `make test` installs the extra: a missing Ray is a broken setup, not a skip
    import ray
except ImportError:
    pytest.fail("engine=ray's tests need the [ray] extra: `make test`, or pip install -e '.[ray]'", pytrace=False)

from ray_helpers import TwoNodeCluster, encode_killing_worker_node, engine_for, minilm_spec, review_texts
from textclf.runtime.embed import Embedder

pytestmark = [pytest.mark.slow, pytest.mark.cluster]  # not in the default run: pyproject.toml
ROWS = 300


@pytest.fixture(scope="module")
def local():
    """The embedder and the local engine's vectors (the ONNX export made here, before Ray)."""
    texts = review_texts(ROWS)
    emb = Embedder.from_spec(minilm_spec(), "cpu")
    return emb, texts, emb.encode(texts, progress=False)


@pytest.fixture
def cluster(monkeypatch):
    # A short base path: Ray's socket paths must stay under 107 bytes.
    import tempfile
    from pathlib import Path

    # No Ray connection or $RAY_ADDRESS left by an earlier test may stand in for the cluster's
    # (ray_runtime uses a connection it finds). `make test-cluster` runs this file in a process
    # of its own: after a local runtime in the same process, Ray Data's first actor is cancelled
    # at start-up (pyproject.toml).
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    if ray.is_initialized():
        ray.shutdown()
    base = Path(tempfile.mkdtemp(prefix="rc", dir="/tmp"))
    with TwoNodeCluster(base) as c:
        yield c  # stopped (this cluster's processes only) even when the test fails


def test_two_node_cluster_gives_the_local_vectors_and_survives_losing_a_node(local, cluster):
    emb, texts, expected = local
    nodes = cluster.nodes()
    assert len(nodes) == 2 and all(n["alive"] for n in nodes)
    assert cluster.raylet(cluster.head_dir).pid != cluster.raylet(cluster.worker_dir).pid  # two raylets

    got = emb.encode(texts, progress=False, engine=engine_for(cluster))
    assert got.shape == expected.shape and np.array_equal(got, expected)
    # The engine made its own connection (to engine.address) and closed it: it did not run on
    # a connection it found in the process.
    assert not ray.is_initialized()

    r = encode_killing_worker_node(cluster, emb, texts, after=2.0, timeout=600)
    assert r["in_flight_at_kill"], "the run finished before the node was killed: nothing was tested"
    assert sum(n["alive"] for n in cluster.wait_nodes(1)) == 1  # the node really is gone
    if "vectors" in r:  # completed: every row, in order, the same bits
        v = r["vectors"]
        assert v.shape == expected.shape and np.array_equal(v, expected)
    else:  # or failed, saying which node was lost
        assert "lost node" in r["error"], r["error"]
