"""Chat-LLM approach: ask a chat model for each review's label through the groq SDK.

Providers (conf/llm/*.yaml, the `llm:` params):
  local - a GGUF model (PyPI package, path or hub; sha256-checked) served by
          llama-cpp-python on 127.0.0.1, started and stopped by the stage, or an already
          running server at `base_url` (then part of the model identity: its replies are
          cached apart from those of the server started here);
  groq  - Groq's API (or any server at `base_url` answering /openai/v1), key from the
          environment or .env (only the variables in API_KEY_VARS), never from params;
          GROQ_API_KEY only ever goes to api.groq.com (check_api_key_env).
`base_url` must be https, or http to a loopback host (check_base_url).

fit writes models/<name>/config.json: everything that decides the answers (model
identity, mode asked and used, prompts, decoding, the label constraint, few-shot examples,
the text's token budget: long texts are cut to fit the context, see budget.py). predict reads it, plus the
operational settings (concurrency, rpm, retries, timeouts, server) straight from params,
so changing those does not invalidate results. Replies are cached on disk (cache.py).
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence
from urllib.parse import urlsplit

import numpy as np

from textclf.core.context import group
from textclf.approaches.base import UNPARSEABLE, Labelled, Prediction
from textclf.approaches.llm import budget
from textclf.approaches.llm import client
from textclf.approaches.llm import prompts
from textclf.approaches.llm.cache import ResponseCache, request_key

log = logging.getLogger(__name__)

CONFIG = "config.json"
# The only environment (or .env) variables llm.api_key_env may name (docs/llm.md): params
# cannot point the key reader at another secret, which would then be sent to base_url.
API_KEY_VARS = ("GROQ_API_KEY", "TEXTCLF_LLM_API_KEY")
GROQ_HOST = "api.groq.com"
GROQ_URL = f"https://{GROQ_HOST}"  # given to the SDK, which would otherwise read GROQ_BASE_URL from the environment


class FailedRows(RuntimeError):
    """Some rows got no reply after all retries: the stage must not record its outputs."""


def check_base_url(url: str | None) -> None:
    """Refuse a base_url the reviews (and the API key) would travel to in clear text: it must
    be https, or http to a loopback host (127.0.0.0/8, ::1, localhost)."""
    if url is None:
        return
    parts = urlsplit(str(url))
    host = parts.hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not host or parts.scheme not in ("https", "http") or (parts.scheme == "http" and not loopback):
        raise ValueError(f"llm.base_url={url!r}: use an https:// URL, or http:// to a server on this machine "
                         "(127.0.0.1, ::1 or localhost); plain http elsewhere would send the reviews and the API key "
                         "unencrypted.")


def check_api_key_env(cfg: Mapping[str, Any]) -> str:
    """The variable the API key is read from. GROQ_API_KEY holds a key for Groq: it is only
    ever sent to GROQ_HOST, so a groq provider pointed at another base_url must read its key
    from TEXTCLF_LLM_API_KEY (a params file cannot send the Groq key to a host of its choice)."""
    var = cfg.get("api_key_env") or "GROQ_API_KEY"
    if var not in API_KEY_VARS:
        raise ValueError(f"llm.api_key_env={var!r}: the API key is read only from {' or '.join(API_KEY_VARS)} "
                         "(environment or .env); put the key in one of those.")
    url = cfg.get("base_url")
    if var == "GROQ_API_KEY" and cfg.get("provider") != "local" and url and urlsplit(str(url)).hostname != GROQ_HOST:
        raise ValueError(f"llm.base_url={url!r} is not Groq's API ({GROQ_HOST}): GROQ_API_KEY is only sent to "
                         f"{GROQ_HOST}. Put that server's key in TEXTCLF_LLM_API_KEY (environment or .env) and set "
                         "llm.api_key_env=TEXTCLF_LLM_API_KEY, or set llm.base_url=null to use Groq.")
    return var


def model_identity(cfg: Mapping[str, Any]) -> tuple[dict[str, Any], Path | None]:
    """What the cache key and config.json record as 'the model' (never a key or a port).
    A local model served at `base_url` (not started here) is identified by that URL too; with
    base_url null the identity has no base_url key, so its cache keys are those of before."""
    check_base_url(cfg.get("base_url"))
    if cfg["provider"] == "local":
        from textclf.runtime.resolve import resolve, verify

        location, _ = resolve(cfg["model"])
        identity = {"provider": "local", "name": cfg["model"]["name"], "sha256": verify(location, cfg["model"])}
        if cfg.get("base_url"):
            identity["base_url"] = cfg["base_url"]
        elif int((cfg.get("server") or {}).get("n_gpu_layers") or 0):
            # GPU kernels round differently: offloaded layers are part of what answers (0 adds no key).
            identity["n_gpu_layers"] = int(cfg["server"]["n_gpu_layers"])
        return identity, location
    if cfg["provider"] == "groq":
        return {"provider": "groq", "name": cfg["api_model"], "base_url": cfg.get("base_url")}, None
    raise ValueError(f"llm.provider must be local or groq, not {cfg['provider']!r}")


def shared_first_token_labels(model_path: Path, label_names: list[str]) -> list[tuple[str, str]]:
    """Pairs of labels that start with the same token of this model (tokenised with its vocabulary)."""
    from llama_cpp import Llama

    vocab = Llama(model_path=str(model_path), vocab_only=True, verbose=False)
    return prompts.shared_first_tokens(label_names, lambda s: vocab.tokenize(s.encode(), add_bos=False))


def check_logprob_labels(model_path: Path, label_names: list[str]) -> None:
    """Refuse logprob mode when two labels start with the same token of this model."""
    shared = shared_first_token_labels(model_path, label_names)
    if shared:
        raise ValueError(f"llm.mode=logprob: labels {shared} start with the same token for this model, so the first "
                         "token cannot tell them apart. Use mode=label, set llm.constrained=true (logprob mode then "
                         "falls back to constrained label mode), or rename the labels (data.label_names).")


def choose_mode(mode: str, constrained: bool, shared: list[tuple[str, str]]) -> tuple[str, str | None]:
    """(the mode used, why it differs from the one asked for). Logprob mode cannot tell apart
    labels that share a first token: with llm.constrained it falls back to constrained label
    mode (recorded, warned); without, it is refused."""
    if mode != "logprob" or not shared:
        return mode, None
    if not constrained:
        raise ValueError(f"llm.mode=logprob: labels {shared[:5]} start with the same token for this model, so the "
                         "first token cannot tell them apart. Set llm.constrained=true (falls back to constrained "
                         "label mode), use mode=label, or rename the labels (data.label_names).")
    more = f" and {len(shared) - 3} more pairs" if len(shared) > 3 else ""
    return "label", (f"logprob mode refused: labels {shared[:3]}{more} start with the same token for this model; "
                     "constrained label mode used instead")


def constraint_for(provider: str, labels: list[str]) -> dict[str, Any]:
    """What makes the reply one of the labels, per provider: a GBNF grammar for llama.cpp
    (sent as `grammar`), Groq's structured output (a JSON schema with the labels as enum)."""
    if provider == "local":
        return {"kind": "grammar", "grammar": prompts.label_grammar(labels)}
    return {"kind": "json_schema", "response_format": prompts.label_response_format(labels)}


def counter_for(cfg: Mapping[str, Any], location: Path | None, trunc: Mapping[str, Any]) -> budget.Counter:
    if trunc["counter"] == "chars_per_token":
        return budget.CharEstimate(trunc["chars_per_token"])
    return budget.VocabCounter(location)


def build_conf(cfg: Mapping[str, Any], labels: list[str], train: tuple[list[str], list[int]] | None,
               seed: int) -> dict[str, Any]:
    """Everything that decides the answers, checked: model identity, mode (asked and used),
    prompts, decoding, the label constraint, the few-shot examples (drawn from `train` with the
    seed, cut to fit the context) and the text's token budget."""
    mode = cfg["mode"]
    check_api_key_env(cfg)  # here too: a bad setting fails at fit, not at predict
    if mode not in prompts.MODES:
        raise ValueError(f"llm.mode must be one of {prompts.MODES}, not {mode!r}")
    constrained = cfg.get("constrained")
    if not isinstance(constrained, bool):
        raise ValueError(f"llm.constrained must be true or false (label mode: the reply is exactly one label), "
                         f"not {constrained!r}")
    positive = cfg.get("positive_label") or labels[-1]
    if mode == "score" and (len(labels) != 2 or positive not in labels):
        raise ValueError(f"llm.mode=score needs two labels and llm.positive_label among them; labels: {labels}, "
                         f"positive_label: {positive!r}. Use mode=label or logprob for multi-class data.")
    identity, location = model_identity(cfg)
    shared = shared_first_token_labels(location, labels) if mode == "logprob" and location is not None else []
    mode_used, reason = choose_mode(mode, constrained, shared)
    if reason:
        log.warning("llm: %s (recorded as mode_used/mode_reason in config.json and the metrics)", reason)
    k = int((cfg.get("few_shot") or {}).get("k", 0))
    shots: list[tuple[str, int]] = []
    if k:
        texts, y = train
        rng = np.random.default_rng(int(cfg["few_shot"].get("seed", seed)))
        shots = [(texts[i], int(y[i])) for i in sorted(rng.choice(len(texts), k, replace=False))]
    dec = dict(cfg["decoding"])
    if mode_used == "logprob":  # one token, greedy, with its alternatives
        dec.update(max_tokens=1, temperature=0.0, logprobs=True, top_logprobs=int(dec.get("top_logprobs") or 10))
    else:
        dec.pop("top_logprobs", None)
        dec["logprobs"] = False
    # Label mode only: score and logprob replies are not label names.
    constraint = constraint_for(cfg["provider"], labels) if mode_used == "label" and constrained else None
    if constraint:  # room for the longest label, else it is cut mid-way
        dec["max_tokens"] = max(int(dec["max_tokens"]), prompts.constrained_max_tokens(constraint["kind"], labels))
    trunc = budget.settings(cfg)
    render = lambda text, s: prompts.build_messages(cfg["prompts"], mode_used, labels, text, s, positive)  # noqa: E731
    # Also renders one prompt now: a bad template fails at fit, not after the first request.
    text_tokens, shots, cut = budget.plan(
        counter_for(cfg, location, trunc), render, shots, trunc["n_ctx"], int(dec["max_tokens"]),
        trunc["max_text_tokens"], "Raise llm.server.n_ctx (local) or llm.context_tokens (groq), or use fewer "
        "few-shot examples (llm.few_shot.k) or shorter prompts.")
    if cut:
        log.warning("llm: %d of %d few-shot examples cut to fit the context", cut, len(shots))
    trunc.update(text_tokens=text_tokens, truncated_shots=cut)
    return {"model": identity, "mode": mode_used, "mode_requested": mode, "mode_reason": reason, "labels": labels,
            "positive": positive, "threshold": float(cfg.get("threshold", 0.5)), "prompts": dict(cfg["prompts"]),
            "decoding": dec, "constrained": constrained, "constraint": constraint, "shots": shots,
            "truncation": trunc}


def fit(ctx, name: str, out_dir: Path) -> None:
    cfg = ctx.group(name)
    need_train = int((cfg.get("few_shot") or {}).get("k", 0)) > 0
    train = ctx.split("train") if need_train else None
    conf = build_conf(cfg, list(ctx.label_names), (train.texts, list(train.labels)) if train else None, ctx.seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / CONFIG).write_text(json.dumps(conf, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def api_key(cfg: Mapping[str, Any], root: Path) -> str:
    var = check_api_key_env(cfg)
    if cfg["provider"] == "local":
        return "no-key-needed"  # the groq SDK insists on one; llama.cpp ignores it
    key = os.environ.get(var)
    if not key and (root / ".env").is_file():
        from dotenv import dotenv_values

        key = dotenv_values(root / ".env").get(var)
    if not key:
        raise RuntimeError(f"llm.provider={cfg['provider']}: set {var} in the environment or in .env "
                           "(it is never read from params)")
    return key


@contextmanager
def endpoint(cfg: Mapping[str, Any], root: Path, needed: bool = True) -> Iterator[str | None]:
    """base_url for the client: the configured one, or a llama.cpp server started here, only
    when `needed` (a fully cached run sends nothing, so it starts no server)."""
    check_base_url(cfg.get("base_url"))
    if cfg.get("base_url") or cfg["provider"] != "local" or not needed:
        yield cfg.get("base_url") or (GROQ_URL if cfg["provider"] == "groq" else None)
        return
    from textclf.runtime.resolve import resolve
    from textclf.approaches.llm.local_server import LocalServer

    location, _ = resolve(cfg["model"])
    srv = cfg.get("server") or {}
    with LocalServer(location, n_threads=int(srv.get("n_threads") or 2), n_ctx=int(srv.get("n_ctx") or 2048),
                     startup_timeout=float(srv.get("startup_timeout") or 180),
                     n_gpu_layers=int(srv.get("n_gpu_layers") or 0)) as url:
        yield url


def cache_for(cfg: Mapping[str, Any]) -> ResponseCache | None:
    c = cfg.get("cache") or {}
    if not c.get("enabled", True):
        return None
    from textclf.runtime.resolve import cache_root

    return ResponseCache(Path(c.get("dir") or cache_root() / "llm") / "responses.sqlite")


def parse(conf: Mapping[str, Any], response: Mapping[str, Any]) -> prompts.Parsed:
    labels = conf["labels"]
    if conf["mode"] == "label" and conf.get("constraint"):
        return prompts.parse_constrained(response["text"], labels, conf["constraint"]["kind"])
    if conf["mode"] == "label":
        return prompts.parse_label(response["text"], labels)
    if conf["mode"] == "score":
        return prompts.parse_score(response["text"], len(labels), labels.index(conf["positive"]), conf["threshold"])
    return prompts.parse_logprobs([tuple(t) for t in response["top_logprobs"]], labels)


def cost(cfg: Mapping[str, Any], prompt_tokens: int, completion_tokens: int) -> float:
    price = cfg.get("price") or {}
    return round((prompt_tokens * float(price.get("input_per_mtok", 0))
                  + completion_tokens * float(price.get("output_per_mtok", 0))) / 1e6, 6)


def requests_for(conf: Mapping[str, Any], texts: list[str]) -> list[dict[str, Any]]:
    """One request per (already fitted) text; each is also the cache key's content, the
    constraint included (absent when there is none: unconstrained requests keep their keys)."""
    shots = [tuple(s) for s in conf["shots"]]
    extra = {"constraint": conf["constraint"]} if conf.get("constraint") else {}
    return [{"model": conf["model"], "decoding": conf["decoding"],
             "messages": prompts.build_messages(conf["prompts"], conf["mode"], conf["labels"], t, shots,
                                                conf["positive"]), **extra} for t in texts]


def fit_texts(cfg: Mapping[str, Any], conf: Mapping[str, Any], texts: list[str]) -> tuple[list[str], int]:
    """(texts cut to the budget recorded at fit, how many were cut). Texts that fit are
    returned as they are, without loading a tokenizer when they fit by bytes."""
    trunc = conf["truncation"]
    n = trunc["text_tokens"]
    if trunc["counter"] != "chars_per_token" and all(len(t.encode()) + 1 <= n for t in texts):
        return list(texts), 0
    location = None
    if trunc["counter"] != "chars_per_token":
        from textclf.runtime.resolve import resolve

        location, _ = resolve(cfg["model"])
    counter = counter_for(cfg, location, trunc)
    out = [budget.fit_text(counter, t, n) for t in texts]
    return [t for t, _ in out], sum(cut for _, cut in out)


def all_cached(requests: list[dict[str, Any]], cache: ResponseCache | None) -> bool:
    if cache is None:
        return False
    have = cache.keys()
    return all(request_key(r) in have for r in requests)


def send_all(cfg: Mapping[str, Any], conf: Mapping[str, Any], requests: list[dict[str, Any]], base_url: str | None,
             key: str, cache: ResponseCache | None, policy: client.Policy, desc: str = "llm"):
    """Send (or take from the cache) every request through the groq SDK."""
    import groq

    api = groq.Groq(api_key=key, base_url=base_url, max_retries=0, timeout=policy.timeout)  # retries: ours
    api_model = cfg.get("api_model") or conf["model"]["name"]

    def send(req: Mapping[str, Any]):
        d = dict(req["decoding"])
        if not d.pop("logprobs", False):
            d.pop("top_logprobs", None)
        else:
            d["logprobs"] = True
        c = req.get("constraint")
        if c and c["kind"] == "grammar":  # llama.cpp's server reads `grammar` (GBNF) from the body
            d["extra_body"] = {"grammar": c["grammar"]}
        elif c:
            d["response_format"] = c["response_format"]
        return api.chat.completions.create(model=api_model, messages=req["messages"], **d)

    return client.run(requests, send, cache, policy, desc=desc)


def collect(conf: Mapping[str, Any], outcomes: list[client.Outcome]):
    """Per row: prediction (UNPARSEABLE when the reply names no label), label
    probabilities (zeros where the mode gives none), failures, unparseable reasons, tokens."""
    pred = np.full(len(outcomes), UNPARSEABLE, dtype=np.int64)
    scores = np.zeros((len(outcomes), len(conf["labels"])))
    failed, reasons = [], {}
    tokens = {"prompt_tokens": 0, "completion_tokens": 0}
    for i, out in enumerate(outcomes):
        if out.response is None:
            failed.append({"row": i, "error": out.error})
            continue
        for k in tokens:
            tokens[k] += out.response["usage"][k]
        p = parse(conf, out.response)
        pred[i] = p.pred
        if p.scores is not None:
            scores[i] = p.scores
        if p.pred == UNPARSEABLE:
            reasons[i] = p.reason
    return pred, scores, failed, reasons, tokens


def predict(ctx, name: str, model_dir: Path, split: str) -> Prediction:
    return predict_texts(ctx, name, model_dir, ctx.split(split).texts, split=split)


def predict_texts(ctx, name: str, model_dir: Path, texts: Sequence[str], progress: bool = True,
                  split: str = "texts") -> Prediction:
    """`split` names the rows in logs and in logs/llm/<name>/<split>.failed.jsonl."""
    cfg = ctx.group(name)
    config_path = model_dir / CONFIG
    if not config_path.is_file():
        raise FileNotFoundError(f"{config_path} is missing: run `dvc repro fit@{name}` (or `dvc pull`)")
    conf = json.loads(config_path.read_text())
    texts, truncated = fit_texts(cfg, conf, list(texts))
    if truncated:
        log.warning("%s/%s: %d of %d texts cut to %d tokens (the context's room; llm.max_text_tokens: %s)", name,
                    split, truncated, len(texts), conf["truncation"]["text_tokens"],
                    conf["truncation"]["max_text_tokens"])
    requests = requests_for(conf, texts)
    policy = client.Policy.from_config(cfg)
    cache = cache_for(cfg)
    key = api_key(cfg, ctx.root)
    start = time.perf_counter()
    try:
        with endpoint(cfg, ctx.root, needed=not all_cached(requests, cache)) as base_url:
            outcomes, stats = send_all(cfg, conf, requests, base_url, key, cache, policy, desc=f"{name}/{split}")
    finally:
        if cache:
            cache.close()
    wall = time.perf_counter() - start

    pred, scores, failed, reasons, tokens = collect(conf, outcomes)
    n = len(texts)
    unparseable = len(reasons)
    log.info("%s/%s: %d rows, %d unparseable, %d failed; %d requests, %d cache hits", name, split, n, unparseable,
             len(failed), stats.requests, stats.cache_hits)
    failed_path = ctx.root / "logs" / "llm" / name / f"{split}.failed.jsonl"
    if failed:
        failed_path.parent.mkdir(parents=True, exist_ok=True)
        failed_path.write_text("".join(json.dumps(f) + "\n" for f in failed))
        raise FailedRows(f"{name}/{split}: {len(failed)} of {n} rows failed after retries (first: {failed[0]['error']}); "
                         f"listed in {failed_path}. The replies received are cached: rerun to retry only these rows.")
    failed_path.unlink(missing_ok=True)
    # Deterministic for given params and replies: goes into metrics/<name>.json.
    info = {"mode": conf["mode_requested"], "mode_used": conf["mode"], "mode_reason": conf["mode_reason"],
            "constraint": (conf["constraint"] or {}).get("kind"), "truncated_rows": truncated,
            "text_tokens": conf["truncation"]["text_tokens"], "model": conf["model"]["name"], "rows": n,
            "answered": n - unparseable,
            "unparseable": unparseable, "unparseable_rate": round(unparseable / max(n, 1), 6), "failed": 0,
            **tokens, "cost_usd": cost(cfg, **tokens),
            "unparseable_examples": [{"row": i, "reason": r} for i, r in list(reasons.items())[:5]]}
    # What this run did (a cached rerun makes no requests): metrics/timings/.
    run_stats = {"requests": stats.requests, "cache_hits": stats.cache_hits, "retries": stats.retries,
                 "errors": dict(sorted(stats.errors.items())), "prompt_tokens": stats.prompt_tokens,
                 "completion_tokens": stats.completion_tokens,
                 "cost_usd": cost(cfg, stats.prompt_tokens, stats.completion_tokens),
                 "wall_seconds": round(wall, 3), "requests_per_second": round(stats.requests / wall, 3) if wall else None,
                 "rows_per_second": round(n / wall, 3) if wall else None, "concurrency": policy.concurrency}
    with_scores = conf["mode"] != "label"
    return Prediction(pred, scores if with_scores else None, "probability", info=info, timings=run_stats)


def labelled(params: Mapping[str, Any], name: str) -> Labelled:
    """The only labelled rows a chat model sees are its few-shot examples."""
    return Labelled(rows=int((group(params, name).get("few_shot") or {}).get("k", 0)))
