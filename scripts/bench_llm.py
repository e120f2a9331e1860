"""Benchmark the chat-LLM approach against a local llama.cpp server (one server for all):

  1. reviews/s at concurrency 1 vs N (the same first --speed-rows reviews, label mode, cache off);
  2. macro-F1 on the full test split in logprob, label and score modes (a fresh cache each,
     or --cache-dir to resume a cut-short run: requests/s then counts only new requests);
  3. the time of a fully cached rerun of the full test split (logprob).

    python scripts/bench_llm.py [--llm qwen] [--concurrency 4] [--speed-rows 100] [--limit N]

Run from the repository root (data from ../shared). The CPU may be shared: the load
average before and after is recorded with the figures in reports/bench_llm.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import yaml

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


def throughput(cfg, labels, seed, texts, url, n: int) -> dict:
    """The same reviews at concurrency 1 and n, label mode, no cache."""
    mcfg = {**cfg, "mode": "label", "cache": {"enabled": False}}
    conf = build_conf(mcfg, labels, None, seed)
    reqs = requests_for(conf, texts)
    speed = {}
    for c in (1, n):
        t0 = time.perf_counter()
        send_all(mcfg, conf, reqs, url, "none", None, client.Policy.from_config({**mcfg, "concurrency": c}), desc=f"c={c}")
        speed[c] = round(len(reqs) / (time.perf_counter() - t0), 3)
    return {"rows": len(reqs), "mode": "label", "reviews_per_s": speed, "ratio_N_over_1": round(speed[n] / speed[1], 3)}


def run_mode(cfg, mode, labels, seed, texts, gold, url, cache_dir: Path, concurrency: int) -> dict:
    mcfg = {**cfg, "mode": mode, "cache": {"enabled": True, "dir": str(cache_dir / f"cache-{mode}")}}
    conf = build_conf(mcfg, labels, None, seed)
    reqs = requests_for(conf, texts)
    policy = client.Policy.from_config({**mcfg, "concurrency": concurrency})
    cache = cache_for(mcfg)
    t0 = time.perf_counter()
    outcomes, stats = send_all(mcfg, conf, reqs, url, "none", cache, policy, desc=mode)
    wall = time.perf_counter() - t0
    cache.close()
    pred, _, failed, _, tokens = collect(conf, outcomes)
    m = classification_metrics(gold, pred, labels)
    res = {"macro_f1": m["macro"]["f1"], "accuracy": m["accuracy"], "unparseable": m["unparseable"],
           "failed": len(failed), "requests": stats.requests, "cache_hits": stats.cache_hits, "wall_s": round(wall, 1),
           "requests_per_s": round(stats.requests / wall, 3), "concurrency": concurrency, **tokens}
    if mode == "logprob":  # a fully cached rerun: same requests, the cache reopened
        t0 = time.perf_counter()
        cache = cache_for(mcfg)
        again, stats2 = send_all(mcfg, conf, reqs, url, "none", cache, policy, desc="cached")
        cache.close()
        res["cached_rerun_s"] = round(time.perf_counter() - t0, 3)
        res["cached_rerun_requests"] = stats2.requests
        assert [o.response for o in again] == [o.response for o in outcomes]
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--llm", default="qwen")
    ap.add_argument("--modes", default="logprob,label,score")
    ap.add_argument("--concurrency", type=int, default=4, help="N of the throughput comparison")
    ap.add_argument("--speed-rows", type=int, default=100, help="0: skip the throughput comparison")
    ap.add_argument("--mode-concurrency", type=int, default=1, help="concurrency of the per-mode runs")
    ap.add_argument("--cache-dir", default=None, help="keep/reuse the per-mode caches here")
    ap.add_argument("--limit", type=int, default=None, help="test rows (default: the full split)")
    ap.add_argument("--out", default="reports/bench_llm.json")
    a = ap.parse_args()
    root = Path.cwd()
    tmp = Path(tempfile.mkdtemp(prefix="bench-llm-"))
    params = yaml.safe_load(compose(root, [f"llm={a.llm}"], tmp / "params.yaml").read_text())
    cfg, seed = params["llm"], params["seed"]
    splits, _ = data.prepare(params["data"], root, seed)
    labels = list(params["data"]["label_names"])
    texts, gold = splits["test"].texts[: a.limit], splits["test"].labels[: a.limit]
    location, _ = resolve(cfg["model"])
    print(f"{cfg['model']['name']}: {len(texts)} test reviews, load average {os.getloadavg()}", flush=True)
    out = {"model": cfg["model"]["name"], "rows": len(texts), "cpu_count": os.cpu_count(),
           "load_before": os.getloadavg(), "modes": {}}
    # One server, logits_all on (logprob mode needs it), for every measurement.
    with LocalServer(location, n_threads=int(cfg["server"]["n_threads"]), n_ctx=int(cfg["server"]["n_ctx"])) as url:
        if a.speed_rows:
            out["throughput"] = throughput(cfg, labels, seed, texts[: a.speed_rows], url, a.concurrency)
            print("throughput", json.dumps(out["throughput"]), flush=True)
            save(out, a.out)
        for mode in a.modes.split(","):
            out["modes"][mode] = run_mode(cfg, mode, labels, seed, texts, gold, url, Path(a.cache_dir or tmp),
                                          a.mode_concurrency)
            print(mode, json.dumps(out["modes"][mode]), flush=True)
            save(out, a.out)
    shutil.rmtree(tmp, ignore_errors=True)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
