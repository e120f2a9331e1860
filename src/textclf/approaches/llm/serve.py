"""Run llama-cpp-python's OpenAI-compatible server with its routes also answering
under /openai/v1, where the groq SDK posts ({base_url}/openai/v1/chat/completions):

    python -m textclf.approaches.llm.serve --model F.gguf --port 8000 [--n_threads 2]
"""

from __future__ import annotations

import argparse

PREFIX = "/openai"


def strip_prefix(app, prefix: str = PREFIX):
    """ASGI wrapper: /openai/v1/... is served as /v1/... (lifespan passes through)."""
    async def wrapped(scope, receive, send):
        if scope["type"] in ("http", "websocket") and scope["path"].startswith(prefix + "/"):
            path = scope["path"][len(prefix):]
            scope = {**scope, "path": path, "raw_path": path.encode()}
        await app(scope, receive, send)
    return wrapped


def exit_with_parent(interval: float = 1.0) -> None:
    """Stop when the process that started us is gone (killed with SIGKILL, say), so
    no orphaned server keeps a port and two cores."""
    import os
    import threading
    import time

    parent = os.getppid()

    def watch():
        while os.getppid() == parent:
            time.sleep(interval)
        os._exit(0)

    threading.Thread(target=watch, daemon=True).start()


def main(argv: list[str] | None = None) -> None:
    import uvicorn
    from llama_cpp.server.app import create_app
    from llama_cpp.server.settings import ModelSettings, ServerSettings

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", required=True)
    ap.add_argument("--model_alias", default=None)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--n_threads", type=int, default=2)
    ap.add_argument("--n_ctx", type=int, default=2048)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no_logits_all", action="store_true", help="no logprobs, slightly faster prompts")
    a = ap.parse_args(argv)
    # logits_all: llama-cpp-python refuses logprobs without it (it costs the prompt's
    # logits over the whole vocabulary, so modes without logprobs turn it off).
    model = ModelSettings(model=a.model, model_alias=a.model_alias, n_threads=a.n_threads, n_threads_batch=a.n_threads,
                         n_ctx=a.n_ctx, seed=a.seed, logits_all=not a.no_logits_all, verbose=False)
    exit_with_parent()
    app = create_app(server_settings=ServerSettings(host=a.host, port=a.port), model_settings=[model])
    uvicorn.run(strip_prefix(app), host=a.host, port=a.port, log_level="warning")


if __name__ == "__main__":
    main()
