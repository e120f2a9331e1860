"""`python -m textclf.benchmark.leaderboard [--check] [--results DIR]`: render results/README.md
from results/benchmark.json (what textclf.benchmark.run writes).

The rendering is a pure function of the JSON (`render(benchmark) -> str`): no timestamps, runs in
the JSON's order, approaches sorted by mean rank then name, every number in a fixed format. So
regenerating from the same JSON gives the same bytes, and `--check` (exit 1 when the README on disk
is not what the JSON renders) catches a hand edit or a README left behind by a newer benchmark.json.
"""

from __future__ import annotations

import argparse
import difflib
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

SPLITS = ("train", "validation", "test")
ALPHA = 0.05
SIGNIFICANT = "✓"
NOT_SIGNIFICANT = "*"
MISSING = "—"
COMMAND = "python -m textclf.benchmark.leaderboard"


# --- formatting -----------------------------------------------------------------------------------

def _f1(x: float) -> str:
    return f"{x:.4f}"


def _int(n: int) -> str:
    return f"{n:,}"


def _cell(text: Any) -> str:
    """A table cell: pipes escaped, no line breaks."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], align: Sequence[str] | None = None) -> list[str]:
    align = align or ["l"] * len(header)
    rule = {"l": "---", "r": "---:", "c": ":---:"}
    lines = ["| " + " | ".join(_cell(h) for h in header) + " |",
             "|" + "|".join(rule[a] for a in align) + "|"]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return lines


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return MISSING
    total = int(round(seconds))
    h, rest = divmod(total, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"


def _load(triple: Sequence[float] | None) -> str:
    return " / ".join(f"{x:.2f}" for x in triple) if triple else MISSING


def _with_ci(entry: Mapping[str, Any]) -> str:
    """`0.8518 [0.8311, 0.8723]`; just the figure when the interval is unknown."""
    low, high = entry.get("ci_low"), entry.get("ci_high")
    if low is None or high is None:
        return _f1(entry["macro_f1"])
    return f"{_f1(entry['macro_f1'])} [{_f1(low)}, {_f1(high)}]"


def _bool(value: Any) -> str:
    return "yes" if value else "no"


def run_label(run: Mapping[str, Any]) -> str:
    return f"{run['dataset']} ({run.get('profile', 'default')})"


# --- the parts ------------------------------------------------------------------------------------

def machine_line(machine: Mapping[str, Any]) -> str:
    """The machine the runs were measured on: the known fields in a fixed order, then the rest
    sorted by name."""
    parts = []
    if machine.get("cpu"):
        parts.append(str(machine["cpu"]))
    if machine.get("cores") is not None:
        parts.append(f"{machine['cores']} cores")
    if machine.get("memory_gb") is not None:
        parts.append(f"{float(machine['memory_gb']):.1f} GB memory")
    if machine.get("python"):
        parts.append(f"Python {machine['python']}")
    if machine.get("torch"):
        parts.append(f"torch {machine['torch']}")
    known = {"cpu", "cores", "memory_gb", "python", "torch"}
    for key in sorted(set(machine) - known):
        value = machine[key]
        parts.append(f"{key} {_bool(value) if isinstance(value, bool) else value}")
    return ", ".join(parts) if parts else "not recorded"


def is_significant(run: Mapping[str, Any]) -> bool | None:
    """Whether the run's winner is significantly ahead of its runner-up (the paired bootstrap and
    McNemar both below 0.05); None when there is no runner-up. run.py records it as
    `best_significant`; without it, it is worked out from the runner-up's p-values."""
    runner_up = run.get("runner_up")
    if not runner_up:
        return None
    if run.get("best_significant") is not None:
        return bool(run["best_significant"])
    a = run["approaches"].get(runner_up, {})
    p_boot, p_mcn = a.get("p_bootstrap"), a.get("p_mcnemar")
    return p_boot is not None and p_mcn is not None and p_boot < ALPHA and p_mcn < ALPHA


def ranks(approaches: Mapping[str, Mapping[str, Any]]) -> dict[str, float]:
    """Rank 1 = the best macro-F1 of the run; tied approaches share the average of their ranks."""
    ordered = sorted(approaches, key=lambda n: (-approaches[n]["macro_f1"], n))
    out: dict[str, float] = {}
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and approaches[ordered[j + 1]]["macro_f1"] == approaches[ordered[i]]["macro_f1"]:
            j += 1
        for name in ordered[i:j + 1]:
            out[name] = (i + 1 + j + 1) / 2
        i = j + 1
    return out


def mean_ranks(runs: Sequence[Mapping[str, Any]]) -> dict[str, tuple[float, int, int]]:
    """Per approach: (mean rank over the runs it appears in, how many runs, how many it won)."""
    collected: dict[str, list[float]] = {}
    wins: dict[str, int] = {}
    for run in runs:
        for name, rank in ranks(run["approaches"]).items():
            collected.setdefault(name, []).append(rank)
        if run.get("best"):
            wins[run["best"]] = wins.get(run["best"], 0) + 1
    return {n: (sum(r) / len(r), len(r), wins.get(n, 0)) for n, r in collected.items()}


def approach_order(runs: Sequence[Mapping[str, Any]]) -> list[str]:
    """Every approach of any run, best mean rank first (ties: by name)."""
    mr = mean_ranks(runs)
    return sorted(mr, key=lambda n: (mr[n][0], n))


def caps(run: Mapping[str, Any]) -> list[str]:
    """Each capped split in words: `train capped at 3,000 of 11,996 (seeded, stratified)`."""
    limits = (run["limits"] if "limits" in run else None) or {}  # a run record, not settings
    available = run.get("rows_available") or {}
    rows = run.get("rows") or {}
    out = []
    for split in SPLITS:
        cap = limits.get(split)
        if cap is None:
            continue
        total = available.get(split)
        if total is None:
            out.append(f"{split} capped at {_int(cap)} (seeded, stratified)")
        elif total > cap:
            out.append(f"{split} capped at {_int(cap)} of {_int(total)} (seeded, stratified)")
        else:
            kept = rows.get(split, total)
            out.append(f"{split} cap {_int(cap)} not reached ({_int(kept)} rows, all kept)")
    return out


def other_overrides(run: Mapping[str, Any]) -> list[str]:
    """The run's `-S` overrides besides the row caps (those are said next to the dataset)."""
    return [o for o in run.get("overrides") or () if not str(o).startswith("data.limits.")]


def _winner_cell(run: Mapping[str, Any], entry: Mapping[str, Any]) -> str:
    figure = f"**{_f1(entry['macro_f1'])}**"
    if entry.get("ci_low") is not None and entry.get("ci_high") is not None:
        figure += f" [{_f1(entry['ci_low'])}, {_f1(entry['ci_high'])}]"
    sig = is_significant(run)
    if sig is None:
        return figure
    return f"{figure} {SIGNIFICANT if sig else NOT_SIGNIFICANT}"


def leaderboard_table(runs: Sequence[Mapping[str, Any]]) -> list[str]:
    header = ["Approach", *[run_label(r) for r in runs]]
    rows = []
    for name in approach_order(runs):
        row = [f"`{name}`"]
        for run in runs:
            entry = run["approaches"].get(name)
            if entry is None:
                row.append(MISSING)
            elif name == run.get("best"):
                row.append(_winner_cell(run, entry))
            else:
                row.append(_with_ci(entry))
        rows.append(row)
    return _table(header, rows, ["l", *["r"] * len(runs)])


def _winner_summary(run: Mapping[str, Any]) -> str:
    best = run.get("best")
    if not best:
        return MISSING
    runner_up = run.get("runner_up")
    if not runner_up:
        return f"`{best}` (no runner-up)"
    a = run["approaches"].get(runner_up, {})
    ps = []
    if a.get("p_bootstrap") is not None:
        ps.append(f"bootstrap p={a['p_bootstrap']:.3f}")
    if a.get("p_mcnemar") is not None:
        ps.append(f"McNemar p={a['p_mcnemar']:.3f}")
    verdict = "significantly ahead of" if is_significant(run) else "not significantly ahead of"
    return f"`{best}`, {verdict} `{runner_up}`" + (f" ({', '.join(ps)})" if ps else "")


def choice_words(chosen: str | None) -> str:
    """An ensemble's choice (made on validation macro-F1) in words."""
    if not chosen:
        return MISSING
    if chosen == "stack":
        return "the stacked meta-learner"
    if chosen == "average":
        return "the average of its bases"
    if chosen.startswith("best_base:"):
        return f"its best base, `{chosen.split(':', 1)[1]}`"
    return chosen


def _ensembles(run: Mapping[str, Any]) -> str:
    choice = run.get("ensemble_choice") or {}
    skipped = run.get("stack_skipped") or {}
    parts = []
    for name in sorted(set(choice) | set(skipped)):
        words = choice_words(choice.get(name))
        parts.append(f"`{name}`: {words} (stack left out: {skipped[name]})" if name in skipped else f"`{name}`: {words}")
    return "; ".join(parts) if parts else MISSING


def _baselines(run: Mapping[str, Any]) -> str:
    baselines = run.get("baselines") or {}
    return "; ".join(f"{n} {_with_ci(b)}" for n, b in sorted(baselines.items())) or MISSING


def runs_table(runs: Sequence[Mapping[str, Any]]) -> list[str]:
    header = ["Dataset", "Profile", "Rows (train / validation / test)", "Labels", "Overrides", "Wall time",
              "Peak RSS", "Load avg before → after (1 / 5 / 15 min)", "Winner", "Ensemble choice",
              "Baselines (macro-F1)"]
    rows = []
    for run in runs:
        dataset = f"`{run['dataset']}`"
        capped = caps(run)
        if capped:
            dataset += ": " + "; ".join(capped)
        rows_ = run.get("rows") or {}
        sizes = " / ".join(_int(rows_[s]) if rows_.get(s) is not None else MISSING for s in SPLITS)
        overrides = ", ".join(f"`{o}`" for o in other_overrides(run)) or MISSING
        load = run.get("load_avg") or {}
        rss = run.get("peak_rss_mb")
        rows.append([
            dataset, run.get("profile", "default"), sizes,
            _int(run["labels"]) if run.get("labels") is not None else MISSING, overrides,
            _duration(run.get("wall_seconds")), f"{_int(round(rss))} MB" if rss is not None else MISSING,
            f"{_load(load.get('before'))} → {_load(load.get('after'))}",
            _winner_summary(run), _ensembles(run), _baselines(run),
        ])
    return _table(header, rows, ["l", "l", "r", "r", "l", "r", "r", "l", "l", "l", "l"])


def ranks_table(runs: Sequence[Mapping[str, Any]]) -> list[str]:
    mr = mean_ranks(runs)
    rows = [[f"`{n}`", f"{mr[n][0]:.2f}", f"{mr[n][1]} of {len(runs)}", str(mr[n][2])] for n in approach_order(runs)]
    return _table(["Approach", "Mean rank", "Runs ranked in", "Wins"], rows, ["l", "r", "r", "r"])


def render(benchmark: Mapping[str, Any]) -> str:
    """results/README.md for a benchmark.json: the same bytes for the same JSON."""
    runs = list(benchmark.get("runs") or [])
    lines = [
        "# Benchmark results",
        "",
        f"Generated by `{COMMAND}` from [benchmark.json](benchmark.json) (written by `make benchmark`);"
        " do not edit by hand: change the benchmark (conf/benchmark/) or the renderer"
        " (src/textclf/benchmark/leaderboard.py) and regenerate. `python -m textclf.benchmark.leaderboard"
        " --check` says whether this file is what the JSON renders.",
        "",
        f"Machine: {machine_line(benchmark.get('machine') or {})}.",
        "",
    ]
    missing = list(benchmark.get("not_run") or [])
    if missing:
        lines += [f"**Not run yet** (in the benchmark config, no recorded run): {', '.join(f'`{m}`' for m in missing)}."
                  " `make benchmark` runs what is missing and keeps what is recorded.", ""]
    if not runs:
        return "\n".join([*lines, "No runs recorded.", ""])
    lines += [
        "## Test macro-F1 by approach and dataset",
        "",
        "Each cell: test-set macro-F1 with its 95% bootstrap confidence interval. The run's winner"
        f" (the summary's best) is in bold: {SIGNIFICANT} = significantly ahead of the runner-up (the"
        f" paired bootstrap and McNemar's test both p < {ALPHA}), {NOT_SIGNIFICANT} = not significantly"
        f" ahead (a statistical tie with the runner-up). {MISSING} = the approach did not run on that"
        " dataset. Approaches are listed by mean rank.",
        "",
        *leaderboard_table(runs),
        "",
        "## Runs",
        "",
        "Rows are after caps and cleaning. A capped split is a seeded, class-stratified sample of the"
        " split (`data.limits`). Peak RSS is the largest single process of the run; the load average"
        " is the machine's, read just before and just after the run. An ensemble picks the stacked"
        " meta-learner, the average of its bases or its best base by validation macro-F1.",
        "",
        *runs_table(runs),
        "",
        "## Mean rank",
        "",
        "Rank 1 = the best test macro-F1 in a run; tied approaches share the average of their ranks."
        " The mean is over the runs the approach appears in (said next to it), so an approach that"
        " ran on fewer datasets is averaged over fewer runs.",
        "",
        *ranks_table(runs),
        "",
    ]
    notes = [(run_label(r), r["note"]) for r in runs if r.get("note")]
    if notes:
        lines += ["## Notes", "", *[f"- {label}: {' '.join(str(note).split())}" for label, note in notes], ""]
    return "\n".join(lines)


# --- the command ----------------------------------------------------------------------------------

def check(readme: Path, expected: str) -> str | None:
    """None when readme holds exactly `expected`; else what is wrong, with a short diff."""
    if not readme.is_file():
        return f"{readme} does not exist; write it with `{COMMAND}`"
    actual = readme.read_bytes()
    if actual == expected.encode("utf-8"):
        return None
    diff = difflib.unified_diff(actual.decode("utf-8", "replace").splitlines(), expected.splitlines(),
                                f"{readme} (on disk)", f"{readme} (rendered from benchmark.json)", lineterm="", n=1)
    shown = list(diff)[:40]
    return (f"{readme} differs from what benchmark.json renders (edited by hand, or not regenerated after "
            f"the JSON changed). Regenerate it with `{COMMAND}`; edits belong in the renderer.\n" + "\n".join(shown))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", default="results", help="the folder with benchmark.json (default: results/)")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if README.md is not what the JSON renders")
    args = parser.parse_args(argv)
    results = Path(args.results)
    source, readme = results / "benchmark.json", results / "README.md"
    if not source.is_file():
        print(f"error: {source} not found: `make benchmark` writes it", file=sys.stderr)
        return 1
    text = render(json.loads(source.read_text()))
    if args.check:
        problem = check(readme, text)
        if problem:
            print(f"error: {problem}", file=sys.stderr)
            return 1
        print(f"{readme} is up to date with {source}")
        return 0
    readme.write_bytes(text.encode("utf-8"))
    print(f"{readme} written from {source}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
