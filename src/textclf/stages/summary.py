"""Stage `summary`: metrics/summary.json and reports/summary.md over the approaches that ran."""

from __future__ import annotations

from ..context import Context, setup_logging
from ..metrics import dump_json
from ..summary import collect, markdown


def main() -> None:
    setup_logging()
    ctx = Context.from_cwd()
    summary = collect(ctx.root, ctx.params["approaches"])
    dump_json(summary, ctx.root / "metrics/summary.json")
    md = markdown(summary, ctx.root, ctx.params["data"]["name"], ctx.params["embedder"]["name"])
    out = ctx.root / "reports/summary.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(md)
    print(md)


if __name__ == "__main__":
    main()
