"""Benchmark the chat-LLM approach against a local llama.cpp server (one server for all):

  1. reviews/s at concurrency 1 vs N (the same first --speed-rows reviews, label mode, cache off);
  2. macro-F1 on the full test split in logprob, label and score modes (fresh cache each);
  3. the time of a fully cached rerun of the full test split (logprob).

    python scripts/bench_llm.py [--llm qwen] [--concurrency 4] [--speed-rows 200] [--limit N]

Run from the repository root, after `python -m textclf.params` (data from ../shared).
The CPU may be shared: figures are printed with the load average before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from textclf import data
from textclf.approaches.llm import build_conf, cache_for, client, collect, requests_for, send_all
from textclf.approaches.llm.server import LocalServer
from textclf.metrics import classification_metrics
from textclf.params import compose
from textclf.resolve import resolve


def save(out: dict, path: str) -> None:
    """After every step: a run cut short still leaves what it measured."""
    out["load_after"] = os.getloadavg()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(out, indent=2) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--llm", default="qwen")
    ap.add_argument("--modes", default="logprob,label,score")
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--speed-rows", type=int, default=100)
    ap.add_argument("--limit", type=int, default=None, help="test rows (default: the full split)")
    ap.add_argument("--out", default="reports/bench_llm.json")
    a = ap.parse_args()
    root = Path.cwd()
    tmp = Path(tempfile.mkdtemp(prefix="bench-llm-"))
    import yaml

    params = yaml.safe_load(compose(root, [f"llm={a.llm}"], tmp / "params.yaml").read_text())
    cfg = params["llm"]
    splits, _ = data.prepare(params["data"], root, params["seed"])
    labels = list(params["data"]["label_names"])
    test = splits["test"]
    texts, gold = test.texts[: a.limit], test.labels[: a.limit]
    location, _ = resolve(cfg["model"])
    print(f"{cfg['model']['name']}: {len(texts)} test reviews, load average {os.getloadavg()}", flush=True)
    out = {"model": cfg["model"]["name"], "rows": len(texts), "load_before": os.getloadavg(), "modes": {}}
    n_threads = int(cfg["server"]["n_threads"])
    # One server with logits_all on (logprob mode needs it) for every measurement.
    with LocalServer(location, n_threads=n_threads, n_ctx=int(cfg["server"]["n_ctx"])) as url:
        # Throughput: the same reviews at concurrency 1 and N, label mode, no cache.
        mcfg = {**cfg, "mode": "label", "cache": {"enabled": False}}
        conf = build_conf(mcfg, labels, None, params["seed"])
        reqs = requests_for(conf, texts[: a.speed_rows])
        speed = {}
        for c in (1, a.concurrency):
            t0 = time.perf_counter()
            send_all(mcfg, conf, reqs, url, "none", None, client.Policy.from_config({**mcfg, "concurrency": c}),
                     desc=f"c={c}")
            speed[c] = round(len(reqs) / (time.perf_counter() - t0), 3)
        out["throughput"] = {"rows": len(reqs), "mode": "label", "reviews_per_s": speed,
                             "ratio_N_over_1": round(speed[a.concurrency] / speed[1], 3)}
        print("throughput", json.dumps(out["throughput"]), flush=True)
        save(out, a.out)
        for mode in a.modes.split(","):
            mcfg = {**cfg, "mode": mode, "cache": {"enabled": True, "dir": str(tmp / f"cache-{mode}")}}
            conf = build_conf(mcfg, labels, None, params["seed"])
            reqs = requests_for(conf, texts)
            policy = client.Policy.from_config({**mcfg, "concurrency": a.concurrency})
            cache = cache_for(mcfg)
            t0 = time.perf_counter()
            outcomes, stats = send_all(mcfg, conf, reqs, url, "none", cache, policy, desc=mode)
            wall = time.perf_counter() - t0
            pred, _, failed, reasons, tokens = collect(conf, outcomes)
            m = classification_metrics(gold, pred, labels)
            res = {"macro_f1": m["macro"]["f1"], "accuracy": m["accuracy"], "unparseable": m["unparseable"],
                   "failed": len(failed), "requests": stats.requests, "wall_s": round(wall, 1),
                   "reviews_per_s": round(len(texts) / wall, 3), **tokens}
            if mode == "logprob":  # the cached rerun: same requests, the cache reopened
                cache.close()
                t0 = time.perf_counter()
                cache = cache_for(mcfg)
                outcomes2, stats2 = send_all(mcfg, conf, reqs, url, "none", cache, policy, desc="cached")
                res["cached_rerun_s"] = round(time.perf_counter() - t0, 3)
                res["cached_rerun_requests"] = stats2.requests
                assert [o.response for o in outcomes2] == [o.response for o in outcomes]
            cache.close()
            out["modes"][mode] = res
            print(mode, json.dumps(res), flush=True)
            save(out, a.out)

    save(out, a.out)
    shutil.rmtree(tmp, ignore_errors=True)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
