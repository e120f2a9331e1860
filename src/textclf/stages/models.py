"""Stage `models`: resolve the embedder to local files (path, PyPI package or hub),
check its sha256, and record its identity in models/embedder.json."""

from __future__ import annotations

from textclf.core.context import EMBEDDER_ID, Context, setup_logging
from textclf.runtime.resolve import write_identity


def main() -> None:
    setup_logging()
    ctx = Context.from_cwd()
    # The raw spec: the identity record names the model as params.yaml does.
    write_identity(ctx.params["embedder"], ctx.path(EMBEDDER_ID))


if __name__ == "__main__":
    main()
