"""engine=local vs engine=ray on the same texts, in one run: embedding throughput with
the pipeline's Embedder (local; Ray with 1 actor of all cores; Ray with one 1-core actor
per core), the Ray runtime's start-up, and the per-batch overhead Ray adds (a worker that
does no work, over the same number of batches). docs/engine.md extrapolates from these.

    python scripts/bench_engine.py                      # mpnet (ONNX), 1,066 test texts
    python scripts/bench_engine.py --embedder minilm --rows 2000

Needs the [ray] extra. Measure on an otherwise idle machine and quote the load average
it prints.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def noop_worker(width: int):
    def work(texts: list[str]) -> np.ndarray:
        return np.zeros((len(texts), width), dtype=np.float32)

    return work


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--embedder", default="mpnet", help="a conf/embedder/ name")
    ap.add_argument("--rows", type=int, default=1066, help="texts (from train then test of rotten_tomatoes)")
    a = ap.parse_args(argv)

    import ray
    import yaml

    from textclf.runtime.embed import Embedder
    from textclf.runtime.engine import map_batches, ray_runtime

    data = ROOT.parent / "shared/data/rotten_tomatoes"
    texts = [json.loads(r)["text"] for s in ("test", "train") for r in
             (data / f"{s}.jsonl").read_text(encoding="utf-8").split("\n") if r.strip()][:a.rows]
    spec = yaml.safe_load((ROOT / "conf/embedder" / f"{a.embedder}.yaml").read_text())
    cores = os.cpu_count() or 1
    print(f"{len(texts)} texts, {a.embedder} ({spec['backend']}), {cores} cores, "
          f"load average before: {os.getloadavg()[0]:.2f}", flush=True)
    emb = Embedder.from_spec(spec, "cpu")
    emb.encode(texts[:32], progress=False)  # model load and ONNX export outside the timings
    batches = emb.plan(texts)
    rows = []

    start = time.perf_counter()
    ref = emb.encode(texts, progress=False)
    rows.append(("local", time.perf_counter() - start, 0.0))

    for actors, cpus in ((1, cores), (cores, 1)):
        engine = {"name": "ray", "actors": actors, "cpus_per_actor": cpus, "num_cpus": cores}
        t0 = time.perf_counter()
        with ray_runtime(engine):
            startup = time.perf_counter() - t0
            # Actors are created per run: their model load is part of each run's time.
            start = time.perf_counter()
            vecs = emb.encode(texts, progress=False, engine=engine)
            secs = time.perf_counter() - start
            assert np.array_equal(vecs, ref), "engine=ray changed the vectors"
            if actors == cores:
                # A worker that does nothing: one batch (what starting the actor pool costs),
                # then every batch of the plan; the difference per batch is Ray's own cost.
                noop = []
                first = [texts[i] for i in batches[0]]
                for some, plan in ((first, [np.arange(len(first))]), (texts, batches)):
                    n0 = time.perf_counter()
                    map_batches(some, plan, partial(noop_worker, ref.shape[1]), engine, progress=False)
                    noop.append(time.perf_counter() - n0)
        rows.append((f"ray, {actors} actor(s) x {cpus} CPU", secs, startup))
        ray.shutdown()
    print(f"{'engine':<28}{'texts/s':>9}{'seconds':>9}{'vs local':>10}{'runtime start':>15}")
    for name, secs, startup in rows:
        print(f"{name:<28}{len(texts) / secs:>9.1f}{secs:>9.2f}{rows[0][1] / secs:>10.2f}x{startup:>14.1f}s")
    per_batch = (noop[1] - noop[0]) / max(len(batches) - 1, 1)
    print(f"Ray with a no-op worker: {noop[0]:.2f} s for 1 batch (actor pool start), {noop[1]:.2f} s for "
          f"{len(batches)} batches: {1000 * per_batch:.1f} ms per batch")
    print(f"vectors: identical to local in every Ray run; load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
