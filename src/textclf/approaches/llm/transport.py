"""The groq transport: which server requests go to (endpoint), and the SDK client that sends
them (send_all; client.py retries, rate-limits and caches)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from textclf.approaches.llm import client
from textclf.approaches.llm.cache import ResponseCache
from textclf.approaches.llm.policy import GROQ_URL, check_base_url
from textclf.approaches.llm.settings import Provider, Settings


@contextmanager
def endpoint(s: Settings, raw: Mapping[str, Any], needed: bool = True) -> Iterator[str | None]:
    """base_url for the client: the configured one, Groq's, or a llama.cpp server started here
    for raw["model"] (the model spec as written), only when `needed` (a fully cached run sends
    nothing, so it starts no server)."""
    check_base_url(s.base_url)
    if s.base_url or s.provider is not Provider.local or not needed:
        yield s.base_url or (GROQ_URL if s.provider is Provider.groq else None)
        return
    from textclf.approaches.llm.local_server import LocalServer
    from textclf.runtime.resolve import resolve

    location, _ = resolve(raw["model"])
    srv = s.server
    with LocalServer(location, n_threads=srv.n_threads, n_ctx=srv.n_ctx, startup_timeout=srv.startup_timeout,
                     n_gpu_layers=srv.n_gpu_layers) as url:
        yield url


def completion_args(req: Mapping[str, Any]) -> dict[str, Any]:
    """The SDK's keyword arguments (model aside) for one request: its decoding, and its label
    constraint as llama.cpp (`grammar` in the body) or Groq (`response_format`) reads it."""
    d = dict(req["decoding"])
    if not d.pop("logprobs", False):
        d.pop("top_logprobs", None)
    else:
        d["logprobs"] = True
    c = req.get("constraint")
    if c and c["kind"] == "grammar":
        d["extra_body"] = {"grammar": c["grammar"]}
    elif c:
        d["response_format"] = c["response_format"]
    return {"messages": req["messages"], **d}


def send_all(s: Settings, conf: Mapping[str, Any], requests: list[dict[str, Any]], base_url: str | None,
             key: str, cache: ResponseCache | None, policy: client.Policy, desc: str = "llm"):
    """Send (or take from the cache) every request through the groq SDK."""
    import groq

    api = groq.Groq(api_key=key, base_url=base_url, max_retries=0, timeout=policy.timeout)  # retries: ours
    api_model = s.api_model or conf["model"]["name"]

    def send(req: Mapping[str, Any]):
        return api.chat.completions.create(model=api_model, **completion_args(req))

    return client.run(requests, send, cache, policy, desc=desc)
