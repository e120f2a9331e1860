"""`python -m textclf.benchmark.ci_guard [--committed results/ci/summary.json] [--current
metrics/summary.json] [--max-drop 0.02] [--write]`: after `make ci`, compare each approach's test
macro-F1 on the CI profile with the committed figures, and fail when one fell.

Without --write it prints a `dvc metrics diff`-style table (approach, committed, current, change)
over the approaches of either file and exits 1 when an approach's macro-F1 dropped by more than
--max-drop, or a committed approach is gone; a new approach is reported, not a failure. With
--write it stores the current per-approach macro-F1 as the committed figures (sorted keys, a
trailing newline), for a change that moves them on purpose.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

COMMITTED = "results/ci/summary.json"
CURRENT = "metrics/summary.json"
MAX_DROP = 0.02
PROFILE = "ci"
UPDATE = "python -m textclf.benchmark.ci_guard --write"


class GuardError(RuntimeError):
    pass


def scores(summary: Mapping[str, Any], origin: str) -> dict[str, float]:
    """{approach: macro_f1} from a summary (the summary stage's, or the committed file)."""
    approaches = summary.get("approaches")
    if not isinstance(approaches, Mapping):
        raise GuardError(f"{origin}: expected an `approaches` object of {{name: {{macro_f1: ...}}}}")
    out = {}
    for name, a in approaches.items():
        f1 = a.get("macro_f1") if isinstance(a, Mapping) else None
        if f1 is not None:
            out[name] = float(f1)
    return out


def committed_doc(current: Mapping[str, float]) -> str:
    doc = {"profile": PROFILE, "approaches": {n: {"macro_f1": f1} for n, f1 in current.items()}}
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"


def compare(committed: Mapping[str, float], current: Mapping[str, float],
            max_drop: float = MAX_DROP) -> tuple[list[list[str]], list[str], list[str]]:
    """The table's rows (approach, committed, current, change, status), the failures, the new
    approaches. A drop counts when committed - current exceeds max_drop (rounded to 1e-9, so
    that 0.02 of float noise is not a failure at --max-drop 0.02)."""
    rows, failures, new = [], [], []
    for name in sorted(set(committed) | set(current)):
        before, after = committed.get(name), current.get(name)
        if before is None:
            assert after is not None
            rows.append([name, "-", f"{after:.4f}", "-", "new"])
            new.append(name)
        elif after is None:
            rows.append([name, f"{before:.4f}", "-", "-", "MISSING"])
            failures.append(f"{name}: in the committed figures (macro-F1 {before:.4f}), missing from this run")
        else:
            change = after - before
            dropped = round(-change, 9) > max_drop
            rows.append([name, f"{before:.4f}", f"{after:.4f}", f"{change:+.4f}",
                         f"DROP > {max_drop:g}" if dropped else "ok"])
            if dropped:
                failures.append(f"{name}: macro-F1 {before:.4f} -> {after:.4f} ({change:+.4f}), "
                                f"a drop of more than {max_drop:g}")
    return rows, failures, new


def format_table(rows: list[list[str]]) -> str:
    header = ["Approach", "Committed", "Current", "Change", "Status"]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in [header, *rows])


def _read(path: Path, missing: str) -> dict[str, Any]:
    if not path.is_file():
        raise GuardError(missing)
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise GuardError(f"{path}: not valid JSON ({e})") from e


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--committed", default=COMMITTED, help=f"the committed figures (default: {COMMITTED})")
    parser.add_argument("--current", default=CURRENT, help=f"this run's summary (default: {CURRENT})")
    parser.add_argument("--max-drop", type=float, default=MAX_DROP,
                        help=f"the largest macro-F1 drop allowed per approach (default: {MAX_DROP})")
    parser.add_argument("--write", action="store_true", help="store this run's macro-F1 as the committed figures")
    args = parser.parse_args(argv)
    committed_path, current_path = Path(args.committed), Path(args.current)
    update = UPDATE + "".join(f" --{flag} {value}" for flag, value, default in
                              (("committed", args.committed, COMMITTED), ("current", args.current, CURRENT))
                              if value != default)
    try:
        current = scores(_read(current_path, f"{current_path} not found: run `make ci` first (the summary stage "
                                              "writes it)"), str(current_path))
        if not current:
            raise GuardError(f"{current_path}: no approach has a macro_f1")
        if args.write:
            committed_path.parent.mkdir(parents=True, exist_ok=True)
            committed_path.write_text(committed_doc(current))
            print(f"{committed_path} written: macro-F1 of {len(current)} approaches from {current_path}. "
                  "Commit it with the change that moved them.")
            return 0
        doc = _read(committed_path, (
            f"{committed_path} not found: it holds the CI profile's committed macro-F1 per approach, which "
            f"this guard compares {current_path} with. Create it from a CI-profile run (`make ci`, then "
            f"`{update}`) and commit it."))
        if doc.get("profile", PROFILE) != PROFILE:
            raise GuardError(f"{committed_path}: profile {doc.get('profile')!r}; the guard compares CI-profile "
                             f"runs ({PROFILE!r})")
        committed = scores(doc, str(committed_path))
    except GuardError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    rows, failures, new = compare(committed, current, args.max_drop)
    print(f"macro-F1: {committed_path} (committed) vs {current_path} (current)")
    print(format_table(rows))
    if new:
        print(f"new approaches (not in {committed_path}; reported, not a failure): {', '.join(new)}")
    if failures:
        print(f"\nCI guard failed: {len(failures)} approach(es) fell:", file=sys.stderr)
        for f in failures:
            print(f"  - {f}", file=sys.stderr)
        print(f"If the change is intended, update {committed_path} in the same change with `{update}` "
              "after `make ci`.", file=sys.stderr)
        return 1
    print(f"CI guard passed: no approach's macro-F1 dropped by more than {args.max_drop:g}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
