#!/usr/bin/env bash
# The whole benchmark (`make benchmark`) from a fresh clone of this checkout's HEAD with empty
# caches, timed, then again with nothing changed, timed. Writes results/bench/benchmark_fresh.json
# here and copies the clone's results/ back (review with `git diff results/`).
#
#   scripts/bench_fresh_clone.sh [CLONE_DIR]     # default ../bench_clone: beside this checkout, so ../shared resolves
#   ONLY=rotten_tomatoes/best scripts/bench_fresh_clone.sh   # one entry (from empty caches too, without the runs
#                                                 # before it): results/bench/benchmark_fresh_<dataset>_<profile>.json
#
# Empty caches: a new clone (no DVC cache, no run cache), TEXTCLF_CACHE a new folder (model
# assembly and ONNX exports count), and no recorded run (the clone's results/*/*/run.json removed).
# It uses this checkout's venv (run `make setup` first); the machine should be otherwise idle.
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
clone=${1:-$here/../bench_clone}
export PATH=$here/.venv/bin:$PATH HF_HUB_OFFLINE=1 TEXTCLF_CACHE=$clone.cache
rm -rf "$clone" "$TEXTCLF_CACHE"
git clone -q "$here" "$clone" && cd "$clone" || exit 1
if [ -n "${ONLY:-}" ]; then
  only=(--only "$ONLY"); rm -f "results/$ONLY/run.json"  # that run unrecorded; the others stay recorded (skipped)
  out="$here/results/bench/benchmark_fresh_${ONLY//\//_}.json"
else
  only=(); find results -mindepth 3 -name run.json -delete  # every run unrecorded: all rerun
  out="$here/results/bench/benchmark_fresh.json"
fi
PYTHONPATH=src python -c "from pathlib import Path; from textclf.core.context import link_from_params; link_from_params(Path.cwd())"
load0=$(cut -d' ' -f1-3 /proc/loadavg); s=$(date +%s)
PYTHONPATH=src python -m textclf.benchmark.run "${only[@]}" || exit $?
first=$(( $(date +%s) - s )); load1=$(cut -d' ' -f1-3 /proc/loadavg); s=$(date +%s)
PYTHONPATH=src python -m textclf.benchmark.run "${only[@]}" || exit $?
again=$(( $(date +%s) - s )); load2=$(cut -d' ' -f1-3 /proc/loadavg)
cp -r results/. "$here/results/"
python - "$out" "$(git rev-parse HEAD)" "${ONLY:-}" "$first" "$again" "$load0" "$load1" "$load2" <<'PY'
import json, sys
from pathlib import Path
out, commit, only, first, again, l0, l1, l2 = sys.argv[1:]
runs = [r for r in json.loads(Path("results/benchmark.json").read_text())["runs"]
        if not only or f"{r['dataset']}/{r['profile']}" == only]
Path(out).write_text(json.dumps({
    "command": f"ONLY={only} scripts/bench_fresh_clone.sh" if only else "scripts/bench_fresh_clone.sh", "commit": commit,
    "caches": "empty: a new clone (no DVC cache or run cache), a new TEXTCLF_CACHE, no recorded run",
    "runs": len(runs), "sum_of_run_wall_seconds": round(sum(r["wall_seconds"] for r in runs), 1),
    "total_wall_seconds": int(first), "load_avg_before": l0.split(), "load_avg_after": l1.split(),
    "rerun_nothing_changed_wall_seconds": int(again), "rerun_load_avg_after": l2.split(),
}, indent=2, sort_keys=True) + "\n")
PY
echo "benchmark: ${first}s from empty caches, ${again}s with nothing changed"
