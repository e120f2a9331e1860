"""`make benchmark` / `python -m textclf.benchmark.run [conf/benchmark/default.yaml]`: the pipeline
once per entry of a benchmark config (dataset x profile x overrides), each as a DVC experiment
(`dvc exp run --temp -S data=... -S profile=...`) with the current checkout's code, so DVC's run
cache skips every stage whose code, params and data did not change.

Per run it writes results/<dataset>/<profile>/: summary.json, summary.md and data.json exactly as
the run's stages wrote them, and run.json (the record: rows, caps, wall time, peak memory, load
average, per-approach macro-F1 with CI, the winner and whether it is significantly ahead). Then
results/benchmark.json (every run, in config order, and the machine) and results/README.md
(rendered from it: textclf.benchmark.leaderboard).

Resuming: a run whose run.json carries the same fingerprint (the run's entry, the code, its
params as composed from conf/, dvc.yaml's stages and its data files, hashed) is finished and
skipped, so an edit to conf/profile/best.yaml reruns the profile=best entries only; an
interrupted run is rerun, its finished stages coming back from DVC's run cache. `--force` reruns everything.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[3]
RESULTS = Path("results")
SPLITS = ("train", "validation", "test")
# What the fingerprint covers besides the run's entry, its composed params and its dataset's files:
# the code a stage reads from the checkout (dvc.yaml lists the same as deps). conf/ only reaches a
# stage through params.yaml, so the composed params stand for it.
CODE = ("src/textclf", "dvc.yaml", "pyproject.toml")
NOT_CODE = ("src/textclf/benchmark",)  # the runner: no stage reads it
# From the experiment's commit into results/<dataset>/<profile>/, byte for byte.
COPIED = {"summary.json": "metrics/summary.json", "summary.md": "reports/summary.md", "data.json": "metrics/data.json"}
# Stages that only report on the approaches' saved predictions.
REPORT_STAGES = {"summary", "plots"}
STAGE_LINE = re.compile(r"^(Running stage|Stage) '([^']+)'(.*)$")


class BenchmarkError(RuntimeError):
    pass


@dataclass(frozen=True)
class Entry:
    """One run: a dataset's config (conf/data/<dataset>.yaml), a profile (conf/profile/), row caps
    (a seeded, stratified data.limits; null = all rows) and any other `-S` overrides."""
    dataset: str
    profile: str = "default"
    limits: dict[str, int | None] = field(default_factory=dict)
    overrides: tuple[str, ...] = ()
    note: str = ""

    @property
    def key(self) -> str:
        return f"{self.dataset}/{self.profile}"

    def sets(self) -> list[str]:
        """The `dvc exp run -S` overrides, in a fixed order."""
        caps = [f"data.limits.{s}={self.limits[s]}" for s in SPLITS if self.limits.get(s) is not None]
        return [f"data={self.dataset}", f"profile={self.profile}", *caps, *self.overrides]


def load_config(path: Path) -> list[Entry]:
    raw = yaml.safe_load(path.read_text()) or {}
    runs = raw.get("runs")
    if not isinstance(runs, list) or not runs:
        raise BenchmarkError(f"{path}: expected `runs:`, a list of {{dataset, profile, limits, overrides}}")
    entries = []
    for i, run in enumerate(runs):
        unknown = set(run) - {"dataset", "profile", "limits", "overrides", "note"}
        if unknown or "dataset" not in run:
            raise BenchmarkError(f"{path}: runs[{i}] needs `dataset` and may hold profile, limits, overrides, "
                                 f"note; got {sorted(run)}")
        limits = (run["limits"] if "limits" in run else None) or {}  # the benchmark entry's caps
        if set(limits) - set(SPLITS):
            raise BenchmarkError(f"{path}: runs[{i}].limits: keys are {list(SPLITS)}, got {sorted(limits)}")
        entries.append(Entry(run["dataset"], run.get("profile", "default"), dict(limits),
                             tuple(run.get("overrides") or ()), run.get("note", "")))
    keys = [e.key for e in entries]
    if len(set(keys)) != len(keys):
        raise BenchmarkError(f"{path}: each dataset/profile pair may appear once (results/<dataset>/<profile>/): {keys}")
    return entries


def check_composes(root: Path, entry: Entry) -> dict[str, Any]:
    """Compose the run's params as `dvc exp run -S` will and validate them, before an hour of compute."""
    from textclf.params import compose, validate

    with tempfile.TemporaryDirectory() as tmp:
        out = compose(root, entry.sets(), Path(tmp) / "params.yaml")
        params = yaml.safe_load(out.read_text())
    validate(params, f"params of {entry.key} ({' '.join(entry.sets())})", root)
    return params


def _files(root: Path, rel: str) -> Iterator[Path]:
    path = root / rel
    if path.is_file():
        yield path
    elif path.is_dir():
        yield from sorted(p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts
                          and not any(p.is_relative_to(root / n) for n in NOT_CODE))


def fingerprint(root: Path, entry: Entry, params: dict[str, Any]) -> str:
    """What the run's results depend on: its entry, its params, the checkout's code, its data."""
    h = hashlib.sha256(json.dumps(asdict(entry), sort_keys=True, default=list).encode())
    h.update(json.dumps(params, sort_keys=True, default=str).encode())
    data_dir = params["data"].get("local_dir")
    paths = [*CODE, *([data_dir] if data_dir else [])]
    for rel in paths:
        for f in _files(root, rel):
            h.update(str(f.relative_to(root) if f.is_relative_to(root) else f).encode())
            h.update(hashlib.sha256(_content(root, f)).digest())
    return h.hexdigest()


def _content(root: Path, f: Path) -> bytes:
    """A file's bytes; of dvc.yaml only its stages (top-level metrics, plots and artifacts change
    what DVC shows, not what a run computes); of pyproject.toml only the package and its
    dependencies (the tools' settings, pytest's and ruff's, change no result)."""
    if f == root / "dvc.yaml":
        return json.dumps(yaml.safe_load(f.read_text()).get("stages"), sort_keys=True).encode()
    if f == root / "pyproject.toml":
        try:
            import tomllib  # Python 3.11+
        except ModuleNotFoundError:  # 3.10: the whole file (a tool's setting then reruns too, never too little)
            return f.read_bytes()
        meta = tomllib.loads(f.read_text())
        return json.dumps({k: meta.get(k) for k in ("build-system", "project")}, sort_keys=True).encode()
    return f.read_bytes()


def machine() -> dict[str, Any]:
    cpu = next((line.split(":", 1)[1].strip() for line in _read("/proc/cpuinfo").splitlines()
                if line.startswith("model name")), platform.processor())
    mem_kb = next((int(line.split()[1]) for line in _read("/proc/meminfo").splitlines()
                   if line.startswith("MemTotal")), 0)
    import torch

    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gb": round(mem_kb / 1024 ** 2, 1),
            "python": platform.python_version(), "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(), "gpu": torch.cuda.is_available()}


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def _elapsed(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    return f"{m}m{s:02d}s"


def run_experiment(root: Path, entry: Entry, name: str, log_path: Path, label: str) -> dict[str, Any]:
    """`dvc exp run --temp` for the entry, its output to log_path, a progress line per stage.
    Wall time and peak memory (the largest process of the run, measured by a wrapper that reads
    its children's rusage) come back."""
    cmd = ["dvc", "exp", "run", "--temp", "-n", name, *[a for s in entry.sets() for a in ("-S", s)]]
    subprocess.run(["dvc", "exp", "remove", name], cwd=root, capture_output=True)  # an earlier try's ref
    rss_file = log_path.with_suffix(".rss")
    wrapped = [sys.executable, "-m", "textclf.benchmark.measure", str(rss_file), "--", *cmd]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    stage_start, stage, ran = start, None, []
    print(f"[{label}] dvc exp run: {' '.join(cmd[3:])}", flush=True)
    with log_path.open("w") as log, subprocess.Popen(wrapped, cwd=root, stdout=subprocess.PIPE,
                                                     stderr=subprocess.STDOUT, text=True, bufsize=1) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            log.write(line)
            match = STAGE_LINE.match(line.strip())
            if match:
                now = time.monotonic()
                if stage:  # the stage that ran before this line
                    print(f"[{label}]   {stage} done in {_elapsed(now - stage_start)}", flush=True)
                stage, stage_start = (match.group(2) if match.group(1) == "Running stage" else None), now
                if stage:
                    ran.append(stage)
                what = "running" if match.group(1) == "Running stage" else match.group(3).strip(" -:")
                print(f"[{label}] {_elapsed(now - start)} {match.group(2)}: {what}", flush=True)
        rc = proc.wait()
    wall = time.monotonic() - start
    if stage:
        print(f"[{label}]   {stage} done in {_elapsed(time.monotonic() - stage_start)}", flush=True)
    if rc != 0:
        tail = "".join(log_path.read_text().splitlines(keepends=True)[-15:])
        raise BenchmarkError(f"{entry.key}: `{' '.join(cmd)}` failed (exit {rc}) after {_elapsed(wall)}; "
                             f"the whole output is in {log_path}. Its end:\n{tail}")
    peak_kb = json.loads(rss_file.read_text())["peak_rss_kb"]
    return {"wall_seconds": round(wall, 1), "peak_rss_mb": round(peak_kb / 1024, 1), "stages_run": ran}


def exp_ref(root: Path, name: str) -> str:
    refs = subprocess.run(["git", "for-each-ref", "--format=%(refname)", "refs/exps"], cwd=root,
                          capture_output=True, text=True, check=True).stdout.split()
    found = [r for r in refs if r.rsplit("/", 1)[-1] == name]
    if len(found) != 1:
        raise BenchmarkError(f"experiment {name!r}: expected one ref under refs/exps, found {found}")
    return found[0]


def git_show(root: Path, ref: str, path: str) -> bytes:
    out = subprocess.run(["git", "show", f"{ref}:{path}"], cwd=root, capture_output=True)
    if out.returncode != 0:
        raise BenchmarkError(f"{ref} has no {path}: the run did not write it ({out.stderr.decode().strip()})")
    return out.stdout


def record(entry: Entry, summary: dict[str, Any], data: dict[str, Any], ensembles: dict[str, dict[str, Any]],
           measured: dict[str, Any], fp: str) -> dict[str, Any]:
    """The run's line in benchmark.json, from the files its stages wrote."""
    approaches = {}
    for name, a in sorted(summary["approaches"].items()):
        vs = a.get("vs_best") or {}
        approaches[name] = {"macro_f1": a["macro_f1"], "ci_low": a["macro_f1_ci_low"], "ci_high": a["macro_f1_ci_high"],
                            "accuracy": a["accuracy"], "kind": a["kind"],
                            "significant_vs_best": vs.get("significant"),
                            "p_bootstrap": vs.get("p_bootstrap"), "p_mcnemar": vs.get("p_mcnemar")}
    best = summary["best"]
    # An ensemble that chose its best base predicts exactly what that base does: it is the same
    # contender, not a runner-up (the winner is then compared with the next one).
    same = {n for n, e in ensembles.items() if e.get("chosen") == f"best_base:{best}"}
    chosen = str(ensembles.get(best, {}).get("chosen", ""))
    if chosen.startswith("best_base:"):
        same.add(chosen.split(":", 1)[1])
    ranked = sorted(approaches, key=lambda n: (-approaches[n]["macro_f1"], n))
    runner_up = next((n for n in ranked if n != best and n not in same), None)
    best_significant = bool(runner_up and approaches[runner_up]["significant_vs_best"])
    splits = data["splits"]
    rows = {s: splits[s]["rows"] for s in SPLITS}
    out = {"dataset": entry.dataset, "profile": entry.profile, "overrides": entry.sets()[2:],
           "limits": {s: entry.limits.get(s) for s in SPLITS}, "rows": rows,
           "rows_available": {s: splits[s].get("rows_read", rows[s]) for s in SPLITS},
           "test_rows": rows["test"], "labels": len(data["label_names"]), **measured,
           "approaches": approaches, "best": best, "runner_up": runner_up, "best_significant": best_significant,
           "ensemble_choice": {n: e.get("chosen") for n, e in sorted(ensembles.items())},
           "fingerprint": fp}
    # The reason's first clause (metrics/<name>.json holds the whole message).
    skipped = {n: e["stack_skipped"].split(" (label indices")[0] for n, e in sorted(ensembles.items())
               if e.get("stack_skipped")}
    if skipped:
        out["stack_skipped"] = skipped
    if "baselines" in summary:
        base = summary["baselines"]
        out["baselines"] = {n: {"macro_f1": b["macro_f1"], "ci_low": b["macro_f1_ci_low"], "ci_high": b["macro_f1_ci_high"],
                                "accuracy": b["accuracy"]} for n, b in sorted(base.items()) if isinstance(b, dict)}
        out["baseline_compared_with"] = base["compared_with"]
        out["not_better_than_baseline"] = base["not_significantly_better"]
    if entry.note:
        out["note"] = entry.note
    return out


def collect(root: Path, results: Path, entry: Entry, name: str, measured: dict[str, Any], fp: str) -> dict[str, Any]:
    ref = exp_ref(root, name)
    dest = results / entry.dataset / entry.profile
    dest.mkdir(parents=True, exist_ok=True)
    for out_name, path in COPIED.items():
        (dest / out_name).write_bytes(git_show(root, ref, path))
    summary = json.loads((dest / "summary.json").read_text())
    data = json.loads((dest / "data.json").read_text())
    params = yaml.safe_load(git_show(root, ref, "params.yaml"))
    ensembles = {n: json.loads(git_show(root, ref, f"metrics/{n}.json")) for n in (params["ensembles"] or {})}
    rec = record(entry, summary, data, ensembles, measured, fp)
    (dest / "run.json").write_text(json.dumps(rec, indent=2, sort_keys=True) + "\n")
    return rec


def _same_predictions(previous: dict[str, Any], root: Path, name: str) -> bool:
    """Whether the experiment's approaches scored what the recorded run's did (macro-F1 and CI)."""
    summary = json.loads(git_show(root, exp_ref(root, name), COPIED["summary.json"]))
    now = {n: (a["macro_f1"], a["macro_f1_ci_low"], a["macro_f1_ci_high"]) for n, a in summary["approaches"].items()}
    before = {n: (a["macro_f1"], a["ci_low"], a["ci_high"]) for n, a in previous["approaches"].items()}
    return now == before


def write_benchmark(results: Path, records: Sequence[dict[str, Any]], mach: dict[str, Any],
                    not_run: Sequence[str] = ()) -> Path:
    """results/benchmark.json: the runs in config order (without their fingerprints), the machine,
    and `macro_f1`: {dataset: {profile: {approach: f1}}}, which `dvc metrics diff` can show (it
    flattens dicts, not lists)."""
    runs = [{k: v for k, v in r.items() if k != "fingerprint"} for r in records]
    f1 = {}
    for r in runs:
        f1.setdefault(r["dataset"], {})[r["profile"]] = {n: a["macro_f1"] for n, a in r["approaches"].items()}
    path = results / "benchmark.json"
    out = {"machine": mach, "macro_f1": f1, "runs": runs, **({"not_run": list(not_run)} if not_run else {})}
    path.write_text(json.dumps(out, indent=2, sort_keys=True) + "\n")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", nargs="?", default="conf/benchmark/default.yaml")
    parser.add_argument("--only", action="append", default=[], help="dataset/profile to run (repeatable)")
    parser.add_argument("--force", action="store_true", help="rerun finished runs too")
    parser.add_argument("--results", default=str(RESULTS), help="where results go (default: results/)")
    args = parser.parse_args(argv)
    root = ROOT
    results = (root / args.results).resolve()
    entries = load_config(root / args.config)
    if args.only:
        entries = [e for e in entries if e.key in args.only]
    # Fail on a bad entry now, not after the first hour.
    params = {e.key: check_composes(root, e) for e in entries}
    mach = machine()
    records = []
    total = time.monotonic()
    for i, entry in enumerate(entries, 1):
        label = f"{i}/{len(entries)} {entry.key}"
        fp = fingerprint(root, entry, params[entry.key])
        done = results / entry.dataset / entry.profile / "run.json"
        if done.is_file() and not args.force:
            rec = json.loads(done.read_text())
            if rec.get("fingerprint") == fp:
                print(f"[{label}] unchanged since its recorded run: {done} (use --force to rerun)", flush=True)
                records.append(rec)
                continue
        load_before = [round(x, 2) for x in os.getloadavg()]
        started = time.monotonic()
        name = f"bench-{entry.dataset}-{entry.profile}".replace("_", "-")
        log_path = root / "logs" / "benchmark" / f"{entry.dataset}-{entry.profile}.log"
        measured = run_experiment(root, entry, name, log_path, label)
        measured["load_avg"] = {"before": load_before, "after": [round(x, 2) for x in os.getloadavg()]}
        ran = measured.pop("stages_run")
        previous = json.loads(done.read_text()) if done.is_file() else None
        if previous is not None and set(ran) <= REPORT_STAGES and _same_predictions(previous, root, name):
            # The approaches came from the run cache (only the report was redone, if anything): the
            # run that computed them stays the record of wall time, memory and load.
            measured = {k: previous[k] for k in ("wall_seconds", "peak_rss_mb", "load_avg")}
            print(f"[{label}] approaches restored from the run cache ({'reran ' + ', '.join(ran) if ran else 'nothing rerun'}"
                  f"): the recorded run's figures kept (this took {_elapsed(time.monotonic() - started)})", flush=True)
        rec = collect(root, results, entry, name, measured, fp)
        records.append(rec)
        print(f"[{label}] done in {_elapsed(measured['wall_seconds'])}, peak {measured['peak_rss_mb']:.0f} MB; "
              f"best {rec['best']} {rec['approaches'][rec['best']]['macro_f1']:.4f}", flush=True)
    every = load_config(root / args.config)
    if {e.key for e in entries} != {e.key for e in every}:
        # --only: the other entries' recorded runs, in config order; those never run are listed.
        done = {e.key: results / e.dataset / e.profile / "run.json" for e in every}
        ran = {f"{r['dataset']}/{r['profile']}": r for r in records}
        records = [ran.get(k) or json.loads(done[k].read_text()) for k in done if k in ran or done[k].is_file()]
    not_run = [e.key for e in every if not any(f"{r['dataset']}/{r['profile']}" == e.key for r in records)]
    write_benchmark(results, records, mach, not_run)
    from textclf.benchmark import leaderboard

    leaderboard.main(["--results", str(results)])
    print(f"{results}/benchmark.json and README.md written ({_elapsed(time.monotonic() - total)})"
          + (f"; not run yet: {', '.join(not_run)}" if not_run else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
