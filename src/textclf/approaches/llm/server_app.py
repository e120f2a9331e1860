"""Run llama-cpp-python's OpenAI-compatible server with its routes also answering
under /openai/v1, where the groq SDK posts ({base_url}/openai/v1/chat/completions):

    python -m textclf.approaches.llm.server_app --model F.gguf --port 8000 [--n_threads 2]

Logprobs are computed from the rows sampling reads, not with `logits_all` (see
LastRowLogprobs): same replies, about twice as fast per review on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import sys

PREFIX = "/openai"


def strip_prefix(app, prefix: str = PREFIX):
    """ASGI wrapper: /openai/v1/... is served as /v1/... (lifespan passes through)."""
    async def wrapped(scope, receive, send):
        if scope["type"] in ("http", "websocket") and scope["path"].startswith(prefix + "/"):
            path = scope["path"][len(prefix):]
            scope = {**scope, "path": path, "raw_path": path.encode()}
        await app(scope, receive, send)
    return wrapped


def exit_with_parent(parent: int, interval: float = 1.0) -> None:
    """Stop when `parent` (the process that started us) is gone, killed with SIGKILL say, so no
    orphaned server keeps a port and two cores. `parent` comes from the parent itself
    (--parent_pid): read here, after this package's imports (seconds), os.getppid() would be
    the orphan's new parent if the stage was killed meanwhile, and the server would never stop."""
    import os
    import threading
    import time

    if os.getppid() != parent:  # already orphaned: exit before loading the model
        os._exit(0)

    def watch():
        while os.getppid() == parent:
            time.sleep(interval)
        os._exit(0)

    threading.Thread(target=watch, daemon=True).start()


def top_k(logprobs, k: int):
    """The ids of `sorted(zip(logprobs, range(n)), reverse=True)[:k]` (highest logprob first,
    ties to the higher id), as llama-cpp-python orders them, without sorting the vocabulary:
    every id at or above the k-th largest value, then those few sorted."""
    import numpy as np

    if k <= 0:
        return np.empty(0, dtype=np.int64)
    k = min(k, len(logprobs))
    kth = np.partition(logprobs, len(logprobs) - k)[len(logprobs) - k]
    cand = np.flatnonzero(logprobs >= kth)
    return cand[np.lexsort((cand, logprobs[cand]))[::-1][:k]]


def last_row_logprobs_class():
    """A `llama_cpp.Llama` whose chat completions compute logprobs only for the positions
    they return.

    llama-cpp-python refuses logprobs unless the model keeps logits for every prompt
    position (`logits_all`): that costs the output layer (151k words for Qwen) on every
    prompt token, a log-softmax over all of them, and a Python sort of the vocabulary per
    returned token. The replies need only the logits at each generated position, which is
    what sampling reads anyway: this class copies that row as each token is sampled, then
    builds the same `logprobs` structure llama-cpp-python would (same log-softmax, same
    ordering with ties to the higher token id, same token strings), so the response is
    unchanged while the model runs with logits_all=False and keeps its prefix reuse."""
    import llama_cpp
    import numpy as np
    from llama_cpp.llama_chat_format import _convert_text_completion_logprobs_to_chat

    class LastRowLogprobs(llama_cpp.Llama):
        _steps: list | None = None  # (token, logits row) per sampled token, while recording

        def sample(self, *args, **kwargs):
            row = None
            if self._steps is not None:
                idx = kwargs.get("idx")
                ptr = llama_cpp.llama_get_logits_ith(self._ctx.ctx, idx - self.n_tokens if idx is not None else -1)
                row = np.ctypeslib.as_array(ptr, shape=(self._n_vocab,)).copy()
            token = super().sample(*args, **kwargs)
            if self._steps is not None:
                self._steps.append((int(token), row))
            return token

        def create_chat_completion(self, *args, logprobs=None, top_logprobs=None, **kwargs):
            if not logprobs:
                return super().create_chat_completion(*args, logprobs=logprobs, top_logprobs=top_logprobs, **kwargs)
            if kwargs.get("stream"):
                raise ValueError("streamed logprobs are not supported by this server")
            self._steps = []
            try:
                out = super().create_chat_completion(*args, logprobs=False, **kwargs)
                steps = self._steps[:out["usage"]["completion_tokens"]]  # not the step that sampled the end
            finally:
                self._steps = None
            out["choices"][0]["logprobs"] = _convert_text_completion_logprobs_to_chat(
                self.completion_logprobs(steps, int(top_logprobs or 0)))
            return out

        def completion_logprobs(self, steps: list, k: int) -> dict:
            """llama-cpp-python's `_create_completion` logprobs (echo off) for these steps."""
            tokens = [t for t, _ in steps]
            strs, token_lps, tops = [], [], []
            for i, (token, row) in enumerate(steps):
                if token == self.token_bos():
                    continue
                lp = llama_cpp.Llama.logits_to_logprobs(row)
                order = top_k(lp, k)
                text = self.detokenize([token], prev_tokens=tokens[:i]).decode("utf-8", errors="ignore")
                top = {self.detokenize([int(j)], prev_tokens=tokens[:i]).decode("utf-8", errors="ignore"): lp[j]
                       for j in order}
                top.update({text: lp[token]})
                strs.append(text)
                token_lps.append(lp[token])
                tops.append(top)
            return {"tokens": strs, "text_offset": [], "token_logprobs": token_lps, "top_logprobs": tops}

    return LastRowLogprobs


def main(argv: list[str] | None = None) -> None:
    import os

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--parent_pid", type=int, default=os.getppid(),
                    help="stop when this process is gone (LocalServer passes its own pid; default: our parent now)")
    ap.add_argument("--model", required=True)
    ap.add_argument("--model_alias", default=None)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--n_threads", type=int, default=2)
    ap.add_argument("--n_ctx", type=int, default=2048)
    ap.add_argument("--n_gpu_layers", type=int, default=0,
                    help="layers offloaded to the GPU (-1: all); needs llama-cpp-python built with CUDA")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--library_logprobs", action="store_true",
                    help="llama-cpp-python's own logprobs (logits_all on): the slower path, for benchmarks")
    a = ap.parse_args(argv)
    exit_with_parent(a.parent_pid)  # before the heavy imports below
    import llama_cpp
    import uvicorn
    from llama_cpp.server.app import create_app
    from llama_cpp.server.settings import ModelSettings, ServerSettings

    if a.n_gpu_layers and not llama_cpp.llama_supports_gpu_offload():
        sys.exit(f"llm.server.n_gpu_layers={a.n_gpu_layers}, but this llama-cpp-python has no GPU support: reinstall it "
                 "with CMAKE_ARGS='-DGGML_CUDA=on', or set n_gpu_layers: 0")
    if not a.library_logprobs:
        # The server builds its model as `llama_cpp.Llama(...)` (llama_cpp/server/model.py):
        # in this process, make that the class that computes logprobs without logits_all.
        llama_cpp.Llama = last_row_logprobs_class()
    model = ModelSettings(model=a.model, model_alias=a.model_alias, n_threads=a.n_threads, n_threads_batch=a.n_threads,
                         n_ctx=a.n_ctx, n_gpu_layers=a.n_gpu_layers, seed=a.seed, logits_all=a.library_logprobs, verbose=False)
    app = create_app(server_settings=ServerSettings(host=a.host, port=a.port), model_settings=[model])
    uvicorn.run(strip_prefix(app), host=a.host, port=a.port, log_level="warning")


if __name__ == "__main__":
    main()
