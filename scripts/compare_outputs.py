"""Byte-compare the pipeline outputs of two checkouts that each ran `dvc repro` (timings aside).

What a refactor must not change: every metrics file, prediction, report, plot, model file and
prepared split. Run-dependent files (metrics/timings/, the cards' and summary's timing columns)
are listed apart.

    python scripts/compare_outputs.py ../before ../after            # prints the differences
    python scripts/compare_outputs.py ../before ../after --json out.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

OUTPUTS = ("metrics", "predictions", "ensembles", "reports", "plots", "models", "data/prepared", "data/embeddings")
# Files holding wall times of the run that wrote them (they differ between any two runs).
TIMED = ("metrics/timings/", "reports/summary.md", "reports/cards/")


def digests(root: Path) -> dict[str, str]:
    out = {}
    for d in OUTPUTS:
        for f in sorted((root / d).rglob("*")):
            if f.is_file() and f.name != ".gitignore":
                out[f.relative_to(root).as_posix()] = hashlib.md5(f.read_bytes()).hexdigest()
    return out


def compare(a: Path, b: Path) -> dict:
    da, db = digests(a), digests(b)
    common = sorted(set(da) & set(db))
    differ = [k for k in common if da[k] != db[k]]
    return {"identical": sum(da[k] == db[k] for k in common),
            "different": [k for k in differ if not k.startswith(TIMED)],
            "different_timed": [k for k in differ if k.startswith(TIMED)],
            "only_before": sorted(set(da) - set(db)), "only_after": sorted(set(db) - set(da))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("before", type=Path)
    ap.add_argument("after", type=Path)
    ap.add_argument("--json", type=Path, help="also write the result here")
    args = ap.parse_args()
    result = compare(args.before, args.after)
    print(f"identical: {result['identical']} files; different: {len(result['different'])} "
          f"(+{len(result['different_timed'])} holding wall times); only before: {len(result['only_before'])}, "
          f"only after: {len(result['only_after'])}")
    for key in ("different", "different_timed", "only_before", "only_after"):
        for path in result[key]:
            print(f"  {key}: {path}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
