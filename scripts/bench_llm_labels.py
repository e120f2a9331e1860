"""Constrained label mode on a many-label dataset (hwu64 by default) through the real local
server: accuracy, unparseable rows, rows/s, with and without the constraint.

    python scripts/bench_llm_labels.py [--llm qwen] [--rows 50] [--stride 1] [--mode logprob] [--free]

--mode logprob on labels that share first tokens falls back to constrained label mode
(printed); --free sends unconstrained label-mode requests instead. No cache. Prompts are
intent prompts (the ones in params are about movie reviews). Run from the repository root
(data from ../shared); the load average before and after is printed with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import replace
from pathlib import Path

import yaml

from textclf.approaches.llm import client
from textclf.approaches.llm.approach import collect, requests_for, truncate_texts
from textclf.approaches.llm.local_server import LocalServer
from textclf.approaches.llm.model_config import build_conf
from textclf.approaches.llm.settings import read
from textclf.approaches.llm.transport import send_all
from textclf.runtime.resolve import resolve

PROMPTS = {"label_system": "You classify requests to a voice assistant by intent. Answer with exactly one intent, "
                           "one of: {labels}.", "user": "Request: {text}"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--llm", default="qwen")
    ap.add_argument("--data", default="../shared/data/hwu64")
    ap.add_argument("--rows", type=int, default=50)
    ap.add_argument("--stride", type=int, default=1, help="every n-th test row (1: the first rows)")
    ap.add_argument("--mode", default="logprob")
    ap.add_argument("--free", action="store_true", help="llm.constrained=false, label mode")
    a = ap.parse_args()
    common = yaml.safe_load(Path("conf/llm/common.yaml").read_text())
    own = yaml.safe_load(Path(f"conf/llm/{a.llm}.yaml").read_text())
    own.pop("defaults")
    cfg = {**common, **own, "mode": "label" if a.free else a.mode, "constrained": not a.free,
           "prompts": {**common["prompts"], "score_system": "", **PROMPTS}}  # score mode needs two labels
    s = read(cfg)
    def load(split):
        return [json.loads(line) for line in (Path(a.data) / f"{split}.jsonl").open()]

    train, rows = load("train"), load("test")[::a.stride][:a.rows]
    labels = sorted({r["label"] for r in train})
    conf = build_conf(s, cfg, labels, ([r["text"] for r in train], [labels.index(r["label"]) for r in train]))
    print(json.dumps({k: conf[k] for k in ("mode", "mode_requested", "mode_reason", "decoding", "truncation")}))
    texts, cut = truncate_texts(cfg, conf, [r["text"] for r in rows])
    path, _ = resolve(cfg["model"])
    load_before = os.getloadavg()
    srv = cfg["server"]
    with LocalServer(path, n_threads=int(srv["n_threads"]), n_ctx=int(srv["n_ctx"])) as url:
        start = time.perf_counter()
        outcomes, _ = send_all(s, conf, requests_for(conf, texts), url, "no-key-needed", None,
                               replace(client.Policy.from_settings(s), timeout=300))
        wall = time.perf_counter() - start
    pred, _, failed, reasons, tokens = collect(conf, outcomes)
    truth = [labels.index(r["label"]) for r in rows]
    print(json.dumps({"llm": a.llm, "rows": len(rows), "labels": len(labels), "constrained": not a.free,
                      "accuracy": round(sum(int(p == t) for p, t in zip(pred, truth)) / len(rows), 4),
                      "unparseable": len(reasons), "failed": len(failed), "truncated": cut, "wall_s": round(wall, 1),
                      "rows_per_s": round(len(rows) / wall, 3), **tokens, "load_before": load_before,
                      "load_after": os.getloadavg()}))


if __name__ == "__main__":
    main()
