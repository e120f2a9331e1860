"""Stage `embed`: embed every prepared split into data/embeddings/<split>.npy; how many
texts were cut to the embedder's token limit goes to metrics/embed.json."""

from __future__ import annotations

import logging
import time

import numpy as np

from textclf.core.context import EMBEDDINGS, Context, setup_logging
from textclf.runtime.embed import Embedder
from textclf.runtime.engine import check_engine
from textclf.data.prepared import SPLITS
from textclf.core.io import dump_json

log = logging.getLogger("textclf.runtime.embed")


def main() -> None:
    setup_logging()
    ctx = Context.from_cwd()
    embedder = Embedder.from_spec(ctx.params["embedder"], ctx.device)
    engine = check_engine(ctx.params.get("engine"))  # before any work: a bad engine fails here
    out = ctx.root / EMBEDDINGS
    out.mkdir(parents=True, exist_ok=True)
    timings, truncated = {}, {}
    _, limit = embedder.token_limit()
    for split in SPLITS:
        texts = ctx.split(split).texts
        log.info("Embedding %d %s texts with %s (%s, %s, engine=%s)", len(texts), split,
                 ctx.params["embedder"]["name"], embedder.backend.value, ctx.device, engine.name.value)
        start = time.perf_counter()
        np.save(out / f"{split}.npy", embedder.encode(texts, engine=engine))
        secs = time.perf_counter() - start
        timings[split] = {"seconds": round(secs, 3), "texts_per_second": round(len(texts) / secs, 2)}
        truncated[split] = {"rows": len(texts), "truncated": embedder.count_truncated(texts)}
        if truncated[split]["truncated"]:
            log.warning("%s: %d of %d texts are longer than %d tokens: the embedder sees their first %d",
                        split, truncated[split]["truncated"], len(texts), limit, limit)
    dump_json(timings, ctx.root / "metrics/timings/embed.json")
    dump_json({"embedder": ctx.params["embedder"]["name"], "backend": embedder.backend.value, "max_tokens": limit,
               "splits": truncated}, ctx.root / "metrics/embed.json")


if __name__ == "__main__":
    main()
