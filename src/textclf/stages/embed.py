"""Stage `embed`: embed every prepared split into data/embeddings/<split>.npy."""

from __future__ import annotations

import logging
import time

import numpy as np

from ..context import EMBEDDINGS, Context, setup_logging
from ..embed import Embedder
from ..prepared import SPLITS
from ..metrics import dump_json

log = logging.getLogger("textclf.embed")


def main() -> None:
    setup_logging()
    ctx = Context.from_cwd()
    embedder = Embedder.from_spec(ctx.params["embedder"], ctx.device)
    out = ctx.root / EMBEDDINGS
    out.mkdir(parents=True, exist_ok=True)
    timings = {}
    for split in SPLITS:
        texts = ctx.split(split).texts
        log.info("Embedding %d %s texts with %s (%s, %s)", len(texts), split, ctx.params["embedder"]["name"],
                 embedder.backend, ctx.device)
        start = time.perf_counter()
        np.save(out / f"{split}.npy", embedder.encode(texts))
        secs = time.perf_counter() - start
        timings[split] = {"seconds": round(secs, 3), "texts_per_second": round(len(texts) / secs, 2)}
    dump_json(timings, ctx.root / "metrics/timings/embed.json")


if __name__ == "__main__":
    main()
