"""Stage `fit@<approach>`: fit one approach and write models/<approach>/."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ..approaches import module_for
from ..context import Context, setup_logging
from ..metrics import dump_json


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("approach")
    args = parser.parse_args(argv)
    setup_logging()
    ctx = Context.from_cwd()
    spec = ctx.approach(args.approach)
    out_dir = ctx.model_dir(args.approach)
    start = time.perf_counter()
    module_for(spec["kind"]).fit(ctx, args.approach, out_dir)
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    dump_json({"fit_seconds": round(time.perf_counter() - start, 3)}, ctx.root / "metrics/timings" / f"fit_{args.approach}.json")


if __name__ == "__main__":
    main()
