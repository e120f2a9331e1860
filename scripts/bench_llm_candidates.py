"""LLM prompt / few-shot candidates on the validation rows the selection at fit draws (llm.select:
a seeded, class-stratified subset), each from an empty reply cache, so every row is a request:
validation macro-F1, accuracy, the rate of the last label, seconds and prompt tokens, with the
load average. Test rows are never read. What `fit` computes when llm.select lists candidates,
plus the timings and predictions that selection.json does not keep; used to pick what
conf/profile/best.yaml writes.

    python scripts/bench_llm_candidates.py profile=best 'llm.select.few_shot_k=[0,4,16]'
    python scripts/bench_llm_candidates.py profile=best llm.few_shot.k=16

Arguments are Hydra overrides (as for `python -m textclf.params`); every candidate of the composed
llm group is measured. Each invocation merges its candidates into --out (default
results/bench/llm_candidates.json; a candidate measured again is replaced), so figures from separate
invocations sit side by side, each with its own load average and command. A file about another
dataset, model, mode or set of rows is refused, not mixed in: give another --out.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import yaml

from textclf.approaches.llm import selection
from textclf.approaches.llm.approach import build_conf, collect, requests_for, session, truncate_texts
from textclf.approaches.llm.settings import Settings
from textclf.core.settings import typed
from textclf.data import prepare as data
from textclf.data.prepared import label_words
from textclf.evaluation.metrics import macro_f1
from textclf.params import compose

OUT = Path("results/bench/llm_candidates.json")


def main(overrides: list[str], out: Path) -> None:
    root = Path.cwd()
    with tempfile.TemporaryDirectory(prefix="llm-candidates-") as tmp:
        params = yaml.safe_load(compose(root, overrides, Path(tmp) / "params.yaml").read_text())
        raw = params["llm"]
        s = typed(Settings, raw)
        splits, report = data.prepare(params["data"], root, params["seed"])
        names = list(report.label_names)
        labels = label_words(names, s.label_words)
        val, train = splits["validation"], splits["train"]
        idx, drawn = selection.rows(s, val.labels)
        gold, texts = np.asarray(val.labels)[idx], [val.texts[i] for i in idx]
        cands = selection.candidates(s)
        shots = (train.texts, list(train.labels)) if any(c.few_shot_k for c in cands) else None
        what = {"dataset": params["data"]["name"], "model": raw["model"]["name"], "mode": raw["mode"], "rows": drawn}
        record = json.loads(out.read_text()) if out.exists() else {"candidates": {}}
        other = {k: record[k] for k in what if k in record and record[k] != what[k]}
        if other:
            sys.exit(f"{out} holds candidates measured with {other}, this run is {what}: give another --out")
        record.update({**what, "cpu_count": os.cpu_count(),
                       "note": "each candidate from an empty reply cache on its own llama.cpp server "
                               f"(llm.server.n_threads={raw['server']['n_threads']}), concurrency 1; validation rows only"})
        for i, c in enumerate(cands):
            cs, craw = selection.variant(s, raw, c)
            cs = replace(cs, cache=replace(cs.cache, dir=str(Path(tmp) / f"replies-{i}")))  # every row a request
            conf = build_conf(cs, craw, labels, shots, None)
            cut, _ = truncate_texts(craw, conf, texts)
            requests = requests_for(conf, cut)
            load0 = os.getloadavg()
            with session(cs, craw, root, requests) as (send, _):
                t0 = time.perf_counter()
                outcomes, stats = send(conf, requests, f"candidate {i + 1}/{len(cands)}")
                wall = time.perf_counter() - t0
            pred, _, failed, reasons, tokens = collect(conf, outcomes)
            row = {"label_system": c.label_system, "few_shot_k": c.few_shot_k,
                   "validation_macro_f1": round(macro_f1(gold, pred, len(labels)), 4),
                   "accuracy": round(float((pred == gold).mean()), 4),
                   f"rate_of_{names[-1]}": round(float((pred == len(names) - 1).mean()), 4),
                   "unparseable": len(reasons), "failed": len(failed), "requests": stats.requests,
                   "wall_s": round(wall, 1), "s_per_request": round(wall / max(stats.requests, 1), 3),
                   "prompt_tokens": tokens["prompt_tokens"],
                   "load_before": [round(x, 2) for x in load0], "load_after": [round(x, 2) for x in os.getloadavg()],
                   "command": "python scripts/bench_llm_candidates.py " + " ".join(overrides)}
            record["candidates"][f"k={c.few_shot_k} | {c.label_system}"] = row
            print(json.dumps({k: row[k] for k in ("few_shot_k", "validation_macro_f1", "wall_s", "load_after")}),
                  c.label_system[:70], flush=True)
            out.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n")
    print(f"{out} written")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. profile=best llm.few_shot.k=16")
    ap.add_argument("--out", type=Path, default=OUT)
    a = ap.parse_args()
    main(a.overrides, a.out)
