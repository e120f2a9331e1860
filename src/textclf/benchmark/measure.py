"""`python -m textclf.benchmark.measure OUT.json -- CMD ...`: run CMD, pass its exit code on, and
write the peak resident memory of its largest process (CMD and every descendant it waited for:
getrusage(RUSAGE_CHILDREN).ru_maxrss, in KiB on Linux) to OUT.json. A process of its own, so that
each benchmark run's figure is its own and not the maximum of every run before it."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) < 3 or argv[1] != "--":
        print("usage: python -m textclf.benchmark.measure OUT.json -- CMD ...", file=sys.stderr)
        return 2
    rc = subprocess.run(argv[2:]).returncode
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    Path(argv[0]).write_text(json.dumps({"peak_rss_kb": peak, "returncode": rc}) + "\n")
    return rc


if __name__ == "__main__":
    sys.exit(main())
