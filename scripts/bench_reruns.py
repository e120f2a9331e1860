"""Measure what reruns, as a new user meets it: in a fresh clone of this repository, with
Python's bytecode writing on, time the full `dvc repro` and then each kind of change.

    python scripts/bench_reruns.py --clone /tmp/fresh            # the default profile (~20 min)
    python scripts/bench_reruns.py --clone /tmp/fresh --profile ci

The clone is made beside this repository's parent's `shared/` (`../shared` must resolve from
it), with the same venv (this interpreter). Prints a Markdown table: each check, the stages
`dvc status` lists or `dvc repro` ran, the wall time and the 1-minute load average.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def sh(cmd: str, cwd: Path) -> tuple[str, float]:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # as on a user's machine
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env["PYTHONPATH"] = "src"  # the clone's code, not this checkout's editable install
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, shell=True, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    secs = time.perf_counter() - start
    if proc.returncode:
        sys.exit(f"`{cmd}` failed ({proc.returncode}):\n{proc.stdout[-4000:]}")
    return proc.stdout, secs


def ran(out: str) -> list[str]:
    return sorted(set(re.findall(r"Running stage '([^']+)'", out)))


def stale(repo: Path) -> list[str]:
    return sorted(json.loads(sh("dvc status --json", repo)[0]))


def stage_seconds(repo: Path) -> dict[str, float]:
    """Each stage's own wall time, from metrics/timings/ (embed.json, fit_X.json, predict_X.json)."""
    out = {}
    for p in sorted((repo / "metrics/timings").glob("*.json")):
        t = json.loads(p.read_text())
        if p.stem == "embed":
            out["embed"] = sum(v["seconds"] for v in t.values())
        elif "fit_seconds" in t:
            out["fit@" + p.stem.removeprefix("fit_")] = t["fit_seconds"]
        elif "predict_seconds" in t:
            out["predict@" + p.stem.removeprefix("predict_")] = sum(t["predict_seconds"].values())
    return out


def load() -> str:
    return f"{os.getloadavg()[0]:.2f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clone", type=Path, required=True, help="where to clone (must not exist)")
    ap.add_argument("--profile", default="default")
    ap.add_argument("--rev", default="HEAD")
    args = ap.parse_args()
    repo = args.clone.resolve()
    if repo.exists():
        sys.exit(f"{repo} exists: give a new path")
    if not (repo.parent / "shared").exists():
        sys.exit(f"{repo.parent}/shared is missing: clone next to the data mirror (../shared must resolve)")
    rows: list[tuple[str, str, str, str]] = []

    def row(check: str, what: list[str] | str, secs: float | None) -> None:
        what = ", ".join(what) if isinstance(what, list) else what
        rows.append((check, what or "nothing", "–" if secs is None else f"{secs:.1f} s", load()))
        print(f"{check}: {what or 'nothing'} ({'' if secs is None else f'{secs:.1f} s, '}load {load()})", flush=True)

    sh(f"git clone -q {ROOT} {repo} && git -C {repo} checkout -q {args.rev}", repo.parent)
    if args.profile != "default":
        sh(f"python -m textclf.params profile={args.profile}", repo)
    out, secs = sh("dvc repro", repo)
    slow = sorted(stage_seconds(repo).items(), key=lambda kv: -kv[1])[:4]
    row("`dvc repro` from nothing (after set-up)", f"{len(ran(out))} stages; slowest: "
        + ", ".join(f"{k} {v:.0f} s" for k, v in slow), secs)
    out, secs = sh("dvc repro", repo)
    row("second `dvc repro`", ran(out), secs)
    sh("python -m compileall -q src && python -c \"import importlib, pkgutil, textclf\n"
       "for m in pkgutil.walk_packages(textclf.__path__, 'textclf.'): importlib.import_module(m.name)\"", repo)
    row("import every module with bytecode writing on, `dvc status`", stale(repo), None)
    for rel in ("src/textclf/approaches/centroid/approach.py", "src/textclf/approaches/llm/prompts.py",
                "src/textclf/evaluation/metrics.py"):
        path = repo / rel
        original = path.read_bytes()
        path.write_bytes(original + b"\n# a comment\n")
        row(f"append a comment to `{rel.removeprefix('src/textclf/')}`, `dvc status`", stale(repo), None)
        if rel.endswith("centroid.py"):
            out, secs = sh("dvc repro", repo)
            row("... then `dvc repro`", ran(out), secs)
        path.write_bytes(original)
        if stale(repo):
            sh("dvc repro", repo)  # the edit is undone; bring the lock back to it
    overrides = "" if args.profile == "default" else f"profile={args.profile} "
    sh(f"python -m textclf.params {overrides}classifier.C=0.5", repo)
    out, secs = sh("dvc repro", repo)
    row("`classifier.C=0.5`, `dvc repro`", ran(out), secs)
    sh("git checkout -q -- params.yaml && dvc repro", repo)
    # What a user shares: the run committed (dvc.lock names the outputs) and pushed.
    sh("git add -A && git -c user.name=bench -c user.email=bench@example.invalid commit -qm 'bench run'", repo)
    _, push = sh("dvc push -q", repo)
    other = repo.with_name(repo.name + "-pulled")
    sh(f"git clone -q {repo} {other}", repo.parent)
    _, secs = sh("dvc pull -q", other)
    row(f"fresh clone, `dvc pull` ({push:.0f} s to push)", "then `dvc status`: " + (", ".join(stale(other)) or "clean"),
        secs)
    print("\n| check | stages | wall | load (1 min) |\n|---|---|---|---|")
    for r in rows:
        print("| " + " | ".join(r) + " |")


if __name__ == "__main__":
    main()
