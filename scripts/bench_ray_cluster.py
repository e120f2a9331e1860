"""engine=ray on a real two-node Ray cluster on this machine: `ray start --head` plus a second
`ray start --address` node (own raylet and temp dir, 1 CPU each, 127.0.0.1; tests/ray_helpers.py),
the embed path pointed at it with the engine's `address` setting. Embeds --rows reviews with the
CI profile's MiniLM (ONNX): once cleanly, once with the second node's raylet SIGKILLed --after
seconds into its map actor's life; checks the vectors against the local engine's, bit for bit.

    python scripts/bench_ray_cluster.py [--rows 300] [--after 2] [--out results/bench/reliability.json]

Writes the key "ray_cluster" of --out (other keys are kept; written atomically).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "src")]

from ray_helpers import TwoNodeCluster, encode_killing_worker_node, engine_for, minilm_spec, review_texts  # noqa: E402
from textclf.core.io import dump_json  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=300)
    ap.add_argument("--after", type=float, default=2.0, help="seconds after the worker node's actor starts")
    ap.add_argument("--out", type=Path, default=ROOT / "results/bench/reliability.json")
    args = ap.parse_args()

    from textclf.runtime.embed import Embedder

    texts = review_texts(args.rows)
    spec = minilm_spec()
    emb = Embedder.from_spec(spec, "cpu")
    emb.encode(texts[:16], progress=False)  # the ONNX export, outside the timings
    load_before = os.getloadavg()[0]
    t = time.perf_counter()
    local = emb.encode(texts, progress=False)
    local_s = time.perf_counter() - t

    base = Path(tempfile.mkdtemp(prefix="rc", dir="/tmp"))  # short: Ray's socket paths
    with TwoNodeCluster(base) as cluster:
        t = time.perf_counter()
        clean = emb.encode(texts, progress=False, engine=engine_for(cluster))
        clean_s = time.perf_counter() - t
        killed = encode_killing_worker_node(cluster, emb, texts, after=args.after)
        alive_after = sum(n["alive"] for n in cluster.wait_nodes(1))
    v = killed.get("vectors")
    figures = {
        "command": "python scripts/bench_ray_cluster.py " + " ".join(sys.argv[1:]),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpus": os.cpu_count(), "load_average_before": round(load_before, 2),
        "cluster": "2 nodes on 127.0.0.1 (ray start --head + ray start --address), 1 CPU each, 1 map actor per node",
        "embedder": f"{spec['name']} ({spec['backend']}), batch {spec['batch_size']}", "rows": len(texts),
        "local_seconds": round(local_s, 3),
        "cluster_seconds": round(clean_s, 3),
        "cluster_vectors_equal_local": bool(np.array_equal(clean, local)),
        "killed_worker_node": {
            "kill": f"SIGKILL of the second node's raylet {args.after}s after its map actor started",
            "in_flight_at_kill": killed["in_flight_at_kill"],
            "outcome": "completed" if v is not None else "failed",
            "error": killed.get("error"),
            "rows_returned": None if v is None else int(v.shape[0]),
            "vectors_equal_local": None if v is None else bool(np.array_equal(v, local)),
            "seconds": killed["wall_seconds"],
            "alive_nodes_after": alive_after,
        },
    }
    data = json.loads(args.out.read_text()) if args.out.is_file() else {}
    data["ray_cluster"] = figures
    dump_json(data, args.out)  # atomic, as every metrics file
    print(json.dumps(figures, indent=2, sort_keys=True))


if __name__ == "__main__":
    main()
