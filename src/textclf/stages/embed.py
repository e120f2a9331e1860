"""Stage `embed`: embed every prepared split into data/embeddings/<split>.npy; how many
texts were cut to the embedder's token limit goes to metrics/embed.json."""

from __future__ import annotations

import logging
import time

import numpy as np

from textclf.core.context import Context, embeddings_path, metrics_path, setup_logging, timing_path
from textclf.core.io import dump_json
from textclf.core.settings import Backend
from textclf.data.prepared import SPLITS
from textclf.runtime.embed import Embedder
from textclf.runtime.engine import check_engine

log = logging.getLogger("textclf.runtime.embed")


def main() -> None:
    setup_logging()
    ctx = Context.from_cwd()
    # The raw groups: Embedder and the engine take them as params.yaml spells them.
    embedder = Embedder.from_spec(ctx.params["embedder"], ctx.device)
    engine = check_engine(ctx.params["engine"])  # before any work: a bad engine fails here
    name = ctx.settings.embedder.name
    backend = Backend(embedder.backend).value  # the one it resolved to (auto: onnx on the CPU)
    timings, truncated = {}, {}
    _, limit = embedder.token_limit()
    for split in SPLITS:
        texts = ctx.split(split).texts
        log.info("Embedding %d %s texts with %s (%s, %s, engine=%s)", len(texts), split,
                 name, backend, ctx.device, ctx.settings.engine.name.value)
        start = time.perf_counter()
        out = ctx.path(embeddings_path(split))
        out.parent.mkdir(parents=True, exist_ok=True)
        np.save(out, embedder.encode(texts, engine=engine))
        secs = time.perf_counter() - start
        timings[split] = {"seconds": round(secs, 3), "texts_per_second": round(len(texts) / secs, 2)}
        truncated[split] = {"rows": len(texts), "truncated": embedder.count_truncated(texts)}
        if truncated[split]["truncated"]:
            log.warning("%s: %d of %d texts are longer than %d tokens: the embedder sees their first %d",
                        split, truncated[split]["truncated"], len(texts), limit, limit)
    dump_json(timings, ctx.path(timing_path("embed")))
    dump_json({"embedder": name, "backend": backend, "max_tokens": limit,
               "splits": truncated}, ctx.path(metrics_path("embed")))


if __name__ == "__main__":
    main()
