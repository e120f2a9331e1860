"""A faulty provider at concurrency: the figures of tests/test_llm_faults.py's scenarios, with
its fake server (tests/llm_helpers.py: FlakyProvider, a seeded mix per attempt of ~70% ok, 10%
429 with Retry-After 0 or 1 s, 10% 503, 5% no answer past the client's 0.3 s timeout, 5% a
truncated body; retries.max 3):

  1. --rows rows at --concurrency through the llm approach's client path in a new process,
     then a rerun with the same cache (only the failed rows are asked again);
  2. the same rows with a fresh cache, the labelling process SIGKILLed once the server has
     received rows/2 of its requests, then resumed in a new process.

    python scripts/bench_llm_faults.py [--rows 2000] [--concurrency 8] [--out results/bench/reliability.json]

Writes the key "faulty_provider" of --out (other keys are kept). Run from the repository
root; the CPU may be shared: the load average before and after is recorded.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests")]

from llm_helpers import FAULT_MIX, FlakyProvider, faulty_run, killed_and_resumed  # noqa: E402
from textclf.core.io import dump_json  # noqa: E402


def reasons(result: dict) -> dict[str, int]:
    """Failed rows by the kind of their last error ("http_503 after 4 attempt(s): ...")."""
    return dict(sorted(Counter(f["error"].split(" ", 1)[0] for f in result["failed"]).items()))


def served(paid: list) -> dict[str, int]:
    """Requests received by the fake server, by the fault it answered with."""
    return dict(sorted(Counter(fault for _, _, fault, _, _ in paid).items()))


def run_summary(result: dict, paid: list) -> dict:
    st = result["stats"]
    return {"labelled": len(result["labelled"]), "failed": len(result["failed"]), "failed_by_reason": reasons(result),
            "requests_paid_at_server": len(paid), "served_by_fault": served(paid),
            "client_requests": st["requests"], "client_retries": st["retries"], "cache_hits": st["cache_hits"],
            "client_errors": dict(sorted(st["errors"].items())), "wall_seconds": result["wall_seconds"],
            "process_seconds": result["process_seconds"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--out", type=Path, default=ROOT / "results/bench/reliability.json")
    args = ap.parse_args()
    os.environ.pop("GROQ_BASE_URL", None)
    n = args.rows
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        with FlakyProvider(seed=0) as srv:
            a = faulty_run(srv, Path(tmp) / "a", n, args.concurrency)
        with FlakyProvider(seed=1) as srv:
            t0 = time.monotonic()
            b = killed_and_resumed(srv, Path(tmp) / "b", n, kill_after=n // 2, concurrency=args.concurrency)
            b_seconds = time.monotonic() - t0
    raw = a["raw"]
    cached = b["cached_at_kill"]
    answered_killed = {row for row, _, fault, _, _ in b["paid_killed"] if fault == "ok"}
    asked_resumed = {row for row, *_ in b["paid_resumed"]}
    figures = {
        "rows": n, "concurrency": args.concurrency,
        "mix": FAULT_MIX, "retry_after_seconds": [0, 0, 0, 1], "client_timeout_seconds": raw["timeout"],
        "retries": raw["retries"],
        "uninterrupted": run_summary(a["first"], a["paid_first"]),
        "rerun": {**run_summary(a["again"], a["paid_again"]),
                  "rows_asked": len({row for row, *_ in a["paid_again"]})},
        "kill_and_resume": {
            "killed_after_requests_at_server": len(b["paid_killed"]), "killed_process_seconds": b["killed_seconds"],
            "killed_served_by_fault": served(b["paid_killed"]), "rows_cached_at_kill": len(cached),
            "answered_but_not_cached_at_kill": len(answered_killed - cached),
            "resumed": run_summary(b["resumed"], b["paid_resumed"]),
            "resumed_rows_asked": len(asked_resumed),
            "resumed_rows_asked_already_cached": len(asked_resumed & cached),
            "requests_paid_total": len(b["paid_killed"]) + len(b["paid_resumed"]),
            "wall_seconds_total": round(b_seconds, 3)},
        "load_avg_before": [round(x, 2) for x in load_before], "load_avg_after": [round(x, 2) for x in os.getloadavg()],
        "cpus": os.cpu_count(), "date": time.strftime("%Y-%m-%d"),
        "command": f"python scripts/bench_llm_faults.py --rows {n} --concurrency {args.concurrency}",
    }
    # Merge: other keys of the file belong to other benchmarks (read just before the write).
    data = json.loads(args.out.read_text()) if args.out.is_file() else {}
    data["faulty_provider"] = figures
    dump_json(data, args.out)  # atomic, as every metrics file
    print(json.dumps(figures, indent=2, sort_keys=True))


if __name__ == "__main__":
    main()
