"""Stage `data`: load, validate and write data/prepared/ and metrics/data.json."""

from __future__ import annotations

import logging

from textclf.core.context import PREPARED, Context, metrics_path, setup_logging
from textclf.core.io import dump_json
from textclf.data.prepare import prepare
from textclf.data.prepared import write_prepared

log = logging.getLogger("textclf.data.prepare")


def main() -> None:
    setup_logging()
    ctx = Context.from_cwd()
    cfg = ctx.settings.data
    splits, report = prepare(cfg, ctx.root, ctx.seed)
    # The label set as used (declared or inferred): later stages read it from labels.json.
    write_prepared(splits, report.label_names, ctx.path(PREPARED))
    for split, counts in report.counts.items():
        log.info("%s: %s", split, ", ".join(f"{k}={v}" for k, v in sorted(counts.items())))
    dump_json({"dataset": cfg.name, "source": report.source, "label_names_from": report.label_names_from,
               "label_names": report.label_names, "splits": report.counts}, ctx.path(metrics_path("data")))


if __name__ == "__main__":
    main()
