"""Benchmark the chat-LLM approach against a local llama.cpp server (one server for all):

  0. with --paths N: the stage's serving path against the in-process baseline on the same
     first N test reviews (logprob mode, no cache, concurrency 1), and whether the replies
     are identical to llama-cpp-python's own logprobs (logits_all), the former path;
  1. reviews/s at concurrency 1 vs N (the same first --speed-rows reviews, label mode, cache off);
  2. macro-F1 on the full test split in logprob, label and score modes (a fresh cache each,
     or --cache-dir to resume a cut-short run: requests/s then counts only new requests);
  3. the time of a fully cached rerun of the full test split (logprob).

    python scripts/bench_llm.py [--llm qwen] [--concurrency 4] [--speed-rows 100] [--limit N]
    python scripts/bench_llm.py --paths 200 --modes '' --speed-rows 0     # the serving paths only

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

import numpy as np
import yaml

from textclf.approaches.llm import client
from textclf.approaches.llm.approach import cache_for, collect, requests_for
from textclf.approaches.llm.local_server import LocalServer
from textclf.approaches.llm.model_config import build_conf
from textclf.approaches.llm.settings import read
from textclf.approaches.llm.transport import send_all
from textclf.data import prepare as data
from textclf.evaluation.compare import bootstrap_weights, interval, weighted_macro_f1
from textclf.evaluation.metrics import classification_metrics
from textclf.params import compose
from textclf.runtime.resolve import resolve


def save(out: dict, path: str) -> None:
    """After every step: a run cut short still leaves what it measured."""
    out["load_after"] = os.getloadavg()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(out, indent=2) + "\n")


def throughput(cfg, labels, texts, url, n: int) -> dict:
    """The same reviews at concurrency 1 and n, label mode, no cache."""
    mcfg = {**cfg, "mode": "label", "cache": {"enabled": False}}
    conf = build_conf(read(mcfg), mcfg, labels, None)
    reqs = requests_for(conf, texts)
    speed = {}
    for c in (1, n):
        t0 = time.perf_counter()
        s = read({**mcfg, "concurrency": c})
        send_all(s, conf, reqs, url, "none", None, client.Policy.from_settings(s), desc=f"c={c}")
        speed[c] = round(len(reqs) / (time.perf_counter() - t0), 3)
    return {"rows": len(reqs), "mode": "label", "reviews_per_s": speed, "ratio_N_over_1": round(speed[n] / speed[1], 3)}


class InProcess:
    """A baseline: the same chat completions in this process, no HTTP, llama-cpp-python with
    logits_all off and its prefix reuse (each prompt's shared system prefix stays in the KV
    cache). With `logprobs`, the same replies as the stage's (top logprobs from the sampled
    row, as the server computes them); without, generation alone."""

    def __init__(self, location: Path, cfg, logprobs: bool):
        from llama_cpp import Llama

        from textclf.approaches.llm.server_app import last_row_logprobs_class

        srv = cfg["server"]
        cls = last_row_logprobs_class() if logprobs else Llama
        self.logprobs = logprobs
        self.llm = cls(model_path=str(location), n_threads=int(srv["n_threads"]), n_threads_batch=int(srv["n_threads"]),
                       n_ctx=int(srv["n_ctx"]), seed=0, logits_all=False, verbose=False)

    def __call__(self, reqs) -> list[dict]:
        from types import SimpleNamespace

        from textclf.approaches.llm.client import normalise

        out = []
        for r in reqs:
            d = dict(r["decoding"])
            if not self.logprobs:
                d.pop("logprobs", None), d.pop("top_logprobs", None)
            c = self.llm.create_chat_completion(messages=r["messages"], **d)
            # as the client reads a reply (np.float32 logprobs as the server's JSON has them)
            out.append(normalise(json.loads(json.dumps(c, default=float), object_hook=lambda o: SimpleNamespace(**o))))
        return out


def serving_paths(cfg, labels, texts, location: Path, chunk: int = 25) -> dict:
    """reviews/s of two in-process baselines (the same replies, logprobs included; generation
    alone) and of the stage's path (groq SDK -> the local server, logprobs from the sampled
    rows), measured in turns of `chunk` reviews so that the machine's drift hits all alike;
    then the former path (llama-cpp-python's own logprobs, which need logits_all). Every path
    that returns logprobs must give identical replies."""
    mcfg = {**cfg, "mode": "logprob", "cache": {"enabled": False}}
    conf = build_conf(read(mcfg), mcfg, labels, None)
    reqs = requests_for(conf, texts)
    s = read({**mcfg, "concurrency": 1})
    policy = client.Policy.from_settings(s)
    srv = cfg["server"]
    res = {"rows": len(reqs), "chunk": chunk, "load_before": round(os.getloadavg()[0], 2)}
    secs = {"in_process": 0.0, "generation_only": 0.0, "stage": 0.0}
    replies = {"in_process": [], "stage": [], "generation_only": []}
    same, gen = InProcess(location, cfg, logprobs=True), InProcess(location, cfg, logprobs=False)
    with LocalServer(location, n_threads=int(srv["n_threads"]), n_ctx=int(srv["n_ctx"])) as url:
        for i in range(0, len(reqs), chunk):
            part = reqs[i:i + chunk]
            for name, call in (("in_process", same), ("stage", None), ("generation_only", gen)):
                t0 = time.perf_counter()
                if call is None:
                    got = [o.response for o in send_all(s, conf, part, url, "none", None, policy, desc="stage")[0]]
                else:
                    got = call(part)
                secs[name] += time.perf_counter() - t0
                replies[name] += got
    with LocalServer(location, n_threads=int(srv["n_threads"]), n_ctx=int(srv["n_ctx"]), library_logprobs=True) as url:
        t0 = time.perf_counter()
        former = [o.response for o in send_all(s, conf, reqs, url, "none", None, policy, desc="former")[0]]
        secs["library_logprobs"] = time.perf_counter() - t0
    for k, v in secs.items():
        res[f"{k}_reviews_per_s"] = round(len(reqs) / v, 3)
    base = res["in_process_reviews_per_s"]
    for k in ("generation_only", "stage", "library_logprobs"):
        res[f"{k}_over_in_process"] = round(res[f"{k}_reviews_per_s"] / base, 3)
    res["identical_replies_stage_vs_former"] = sum(a == b for a, b in zip(replies["stage"], former))
    res["identical_replies_stage_vs_in_process"] = sum(a == b for a, b in zip(replies["stage"], replies["in_process"]))
    res["load_after"] = round(os.getloadavg()[0], 2)
    return res


def run_mode(cfg, mode, labels, texts, gold, url, cache_dir: Path, concurrency: int, preds: dict | None = None) -> dict:
    """One mode on every row (a fresh cache under cache_dir); with `preds`, its predictions go in preds[mode]."""
    mcfg = {**cfg, "mode": mode, "cache": {"enabled": True, "dir": str(cache_dir / f"cache-{mode}")}}
    conf = build_conf(read(mcfg), mcfg, labels, None)
    reqs = requests_for(conf, texts)
    s = read({**mcfg, "concurrency": concurrency})
    policy = client.Policy.from_settings(s)
    cache = cache_for(s)
    t0 = time.perf_counter()
    outcomes, stats = send_all(s, conf, reqs, url, "none", cache, policy, desc=mode)
    wall = time.perf_counter() - t0
    cache.close()
    pred, _, failed, _, tokens = collect(conf, outcomes)
    if preds is not None:
        preds[mode] = np.asarray(pred)
    m = classification_metrics(gold, pred, labels)
    # The 95% interval as the summary computes it (same resamples, seed 42 as compare.seed).
    w = bootstrap_weights(len(gold), 1000, 42)
    low, high = interval(weighted_macro_f1(np.asarray(gold), np.asarray(pred), len(labels), w))
    res = {"macro_f1": m["macro"]["f1"], "ci_low": round(low, 4), "ci_high": round(high, 4),
           "accuracy": m["accuracy"], "unparseable": m["unparseable"],
           "failed": len(failed), "requests": stats.requests, "cache_hits": stats.cache_hits, "wall_s": round(wall, 1),
           "requests_per_s": round(stats.requests / wall, 3), "concurrency": concurrency, **tokens}
    if mode == "logprob":  # a fully cached rerun: same requests, the cache reopened
        t0 = time.perf_counter()
        cache = cache_for(s)
        again, stats2 = send_all(s, conf, reqs, url, "none", cache, policy, desc="cached")
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
    ap.add_argument("--paths", type=int, default=0, help="N: compare the serving paths on N reviews (0: skip)")
    ap.add_argument("--out", default="reports/bench_llm.json")
    a = ap.parse_args()
    root = Path.cwd()
    tmp = Path(tempfile.mkdtemp(prefix="bench-llm-"))
    params = yaml.safe_load(compose(root, [f"llm={a.llm}"], tmp / "params.yaml").read_text())
    cfg, seed = params["llm"], params["seed"]
    splits, report = data.prepare(params["data"], root, seed)
    labels = report.label_names  # declared or inferred (data.label_names may be null)
    texts, gold = splits["test"].texts[: a.limit], splits["test"].labels[: a.limit]
    location, _ = resolve(cfg["model"])
    print(f"{cfg['model']['name']}: {len(texts)} test reviews, load average {os.getloadavg()}", flush=True)
    out = {"model": cfg["model"]["name"], "rows": len(texts), "cpu_count": os.cpu_count(),
           "load_before": os.getloadavg(), "modes": {}}
    if a.paths:
        out["paths"] = serving_paths(cfg, labels, texts[: a.paths], location)
        p = out["paths"]
        print(f"\n| path ({p['rows']} test reviews, logprob mode, concurrency 1) | reviews/s | x baseline |\n"
              f"|---|---|---|\n"
              f"| in-process, prefix reuse, same replies (baseline) | {p['in_process_reviews_per_s']} | 1.00 |\n"
              f"| in-process, prefix reuse, generation only (no logprobs) | {p['generation_only_reviews_per_s']} "
              f"| {p['generation_only_over_in_process']:.2f} |\n"
              f"| stage: groq SDK -> local server, sampled-row logprobs | {p['stage_reviews_per_s']} "
              f"| {p['stage_over_in_process']:.2f} |\n"
              f"| former stage: llama-cpp-python's logprobs (logits_all) | {p['library_logprobs_reviews_per_s']} "
              f"| {p['library_logprobs_over_in_process']:.2f} |\n\n"
              f"identical replies, stage vs former: {p['identical_replies_stage_vs_former']}/{p['rows']}, "
              f"stage vs in-process: {p['identical_replies_stage_vs_in_process']}/{p['rows']}; "
              f"load average {p['load_before']} -> {p['load_after']}", flush=True)
        save(out, a.out)
    if not a.speed_rows and not a.modes:
        shutil.rmtree(tmp, ignore_errors=True)
        return
    # One server for every measurement below.
    with LocalServer(location, n_threads=int(cfg["server"]["n_threads"]), n_ctx=int(cfg["server"]["n_ctx"])) as url:
        if a.speed_rows:
            out["throughput"] = throughput(cfg, labels, texts[: a.speed_rows], url, a.concurrency)
            print("throughput", json.dumps(out["throughput"]), flush=True)
            save(out, a.out)
        for mode in filter(None, a.modes.split(",")):
            out["modes"][mode] = run_mode(cfg, mode, labels, texts, gold, url, Path(a.cache_dir or tmp),
                                          a.mode_concurrency)
            print(mode, json.dumps(out["modes"][mode]), flush=True)
            save(out, a.out)
    shutil.rmtree(tmp, ignore_errors=True)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
