"""Stage `summary`: metrics/summary.json (deterministic) and reports/summary.md (with timings)
over the approaches and ensembles that ran."""

from __future__ import annotations

from ..context import Context, setup_logging
from ..prepared import SPLITS
from ..metrics import dump_json
from ..summary import collect, markdown


def main() -> None:
    setup_logging()
    ctx = Context.from_cwd()
    split_rows = {s: len(ctx.split(s).labels) for s in SPLITS}
    cfg = ctx.params.get("compare") or {}
    summary = collect(ctx.root, ctx.params, split_rows, len(ctx.label_names),
                      int(cfg.get("bootstrap_resamples", 1000)), int(cfg.get("seed", ctx.seed)))
    dump_json(summary, ctx.root / "metrics/summary.json")
    md = markdown(summary, ctx.root, ctx.params)
    out = ctx.root / "reports/summary.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(md)
    print(md)


if __name__ == "__main__":
    main()
