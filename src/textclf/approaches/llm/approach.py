"""Chat-LLM approach: ask a chat model for each review's label through the groq SDK.

Providers (conf/llm/*.yaml, the `llm:` params; settings.py types them):
  local - a GGUF model (PyPI package, path or hub; sha256-checked) served by
          llama-cpp-python on 127.0.0.1, started and stopped by the stage (local_server.py),
          or an already running server at `base_url` (then part of the model identity: its
          replies are cached apart from those of the server started here);
  groq  - Groq's API (or any server at `base_url` answering /openai/v1), key from the
          environment or .env, never from params (policy.py: where keys and reviews may go).

fit writes models/<name>/config.json (model_config.py): everything that decides the answers.
predict reads it, plus the operational settings (concurrency, rpm, retries, timeouts, server)
straight from params, so changing those does not invalidate results; long texts are cut to
the budget recorded at fit (budget.py); requests go through transport.py and client.py, and
replies are cached on disk (cache.py).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from textclf.approaches.base import UNPARSEABLE, Labelled, Prediction
from textclf.approaches.llm import budget, client, prompts
from textclf.approaches.llm.cache import ResponseCache, request_key
from textclf.approaches.llm.model_config import build_conf, counter_for
from textclf.approaches.llm.policy import api_key
from textclf.approaches.llm.settings import LlmMode, Settings
from textclf.approaches.llm.transport import endpoint, send_all
from textclf.core.context import group
from textclf.core.settings import typed

log = logging.getLogger(__name__)

CONFIG = "config.json"


class FailedRows(RuntimeError):
    """Some rows got no reply after all retries: the stage must not record its outputs."""


def fit(ctx, name: str, out_dir: Path) -> None:
    s = ctx.approach_settings(name, Settings)
    train = ctx.split("train") if s.few_shot.k > 0 else None
    conf = build_conf(s, ctx.group(name), list(ctx.label_names), (train.texts, list(train.labels)) if train else None)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / CONFIG).write_text(json.dumps(conf, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def cache_for(s: Settings) -> ResponseCache | None:
    if not s.cache.enabled:
        return None
    from textclf.runtime.resolve import cache_root

    return ResponseCache(Path(s.cache.dir or cache_root() / "llm") / "responses.sqlite")


def parse(conf: Mapping[str, Any], response: Mapping[str, Any]) -> prompts.Parsed:
    labels = conf["labels"]
    mode = LlmMode(conf["mode"])
    if mode is LlmMode.label and conf.get("constraint"):
        return prompts.parse_constrained(response["text"], labels, conf["constraint"]["kind"])
    if mode is LlmMode.label:
        return prompts.parse_label(response["text"], labels)
    if mode is LlmMode.score:
        return prompts.parse_score(response["text"], len(labels), labels.index(conf["positive"]), conf["threshold"])
    return prompts.parse_logprobs([tuple(t) for t in response["top_logprobs"]], labels)


def cost(s: Settings, prompt_tokens: int, completion_tokens: int) -> float:
    return round((prompt_tokens * s.price.input_per_mtok + completion_tokens * s.price.output_per_mtok) / 1e6, 6)


def requests_for(conf: Mapping[str, Any], texts: list[str]) -> list[dict[str, Any]]:
    """One request per (already truncated) text; each is also the cache key's content, the
    constraint included (absent when there is none: unconstrained requests keep their keys)."""
    shots = [tuple(s) for s in conf["shots"]]
    extra = {"constraint": conf["constraint"]} if conf.get("constraint") else {}
    return [{"model": conf["model"], "decoding": conf["decoding"],
             "messages": prompts.build_messages(conf["prompts"], conf["mode"], conf["labels"], t, shots,
                                                conf["positive"]), **extra} for t in texts]


def truncate_texts(raw: Mapping[str, Any], conf: Mapping[str, Any], texts: list[str]) -> tuple[list[str], int]:
    """(texts cut to the budget recorded at fit, how many were cut). Texts that fit are
    returned as they are, without loading a tokenizer when they fit by bytes. `raw`: the llm
    group as written (its model spec locates the vocabulary)."""
    trunc = conf["truncation"]
    n = trunc["text_tokens"]
    by_vocab = trunc["counter"] != budget.CHARS_PER_TOKEN
    if by_vocab and all(len(t.encode()) + 1 <= n for t in texts):
        return list(texts), 0
    location = None
    if by_vocab:
        from textclf.runtime.resolve import resolve

        location, _ = resolve(raw["model"])
    counter = counter_for(location, trunc)
    out = [budget.truncate_text(counter, t, n) for t in texts]
    return [t for t, _ in out], sum(cut for _, cut in out)


def all_cached(requests: list[dict[str, Any]], cache: ResponseCache | None) -> bool:
    if cache is None:
        return False
    have = cache.keys()
    return all(request_key(r) in have for r in requests)


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


def read_conf(name: str, model_dir: Path) -> dict[str, Any]:
    config_path = model_dir / CONFIG
    if not config_path.is_file():
        raise FileNotFoundError(f"{config_path} is missing: run `dvc repro fit@{name}` (or `dvc pull`)")
    return json.loads(config_path.read_text())


def predict_texts(ctx, name: str, model_dir: Path, texts: Sequence[str], progress: bool = True,
                  split: str = "texts") -> Prediction:
    """`split` names the rows in logs and in logs/llm/<name>/<split>.failed.jsonl."""
    s, raw = ctx.approach_settings(name, Settings), ctx.group(name)
    conf = read_conf(name, model_dir)
    texts, truncated = truncate_texts(raw, conf, list(texts))
    if truncated:
        log.warning("%s/%s: %d of %d texts cut to %d tokens (the context's room; llm.max_text_tokens: %s)", name,
                    split, truncated, len(texts), conf["truncation"]["text_tokens"],
                    conf["truncation"]["max_text_tokens"])
    requests = requests_for(conf, texts)
    policy = client.Policy.from_settings(s)
    cache = cache_for(s)
    key = api_key(s, ctx.root)
    start = time.perf_counter()
    try:
        with endpoint(s, raw, needed=not all_cached(requests, cache)) as base_url:
            outcomes, stats = send_all(s, conf, requests, base_url, key, cache, policy, desc=f"{name}/{split}")
    finally:
        if cache:
            cache.close()
    wall = time.perf_counter() - start

    pred, scores, failed, reasons, tokens = collect(conf, outcomes)
    n = len(texts)
    log.info("%s/%s: %d rows, %d unparseable, %d failed; %d requests, %d cache hits", name, split, n, len(reasons),
             len(failed), stats.requests, stats.cache_hits)
    record_failures(ctx.root / "logs" / "llm" / name / f"{split}.failed.jsonl", failed, f"{name}/{split}", n)
    info = details(s, conf, n, truncated, reasons, tokens)
    with_scores = conf["mode"] != LlmMode.label.value
    return Prediction(pred, scores if with_scores else None, "probability", info=info,
                      timings=run_stats(s, stats, n, wall, policy))


def record_failures(path: Path, failed: list[dict[str, Any]], what: str, n: int) -> None:
    """List the rows with no reply in `path` and stop (FailedRows); none: remove the old list."""
    if failed:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(json.dumps(f) + "\n" for f in failed))
        raise FailedRows(f"{what}: {len(failed)} of {n} rows failed after retries (first: {failed[0]['error']}); "
                         f"listed in {path}. The replies received are cached: rerun to retry only these rows.")
    path.unlink(missing_ok=True)


def details(s: Settings, conf: Mapping[str, Any], n: int, truncated: int, reasons: dict[int, str],
            tokens: dict[str, int]) -> dict[str, Any]:
    """Deterministic for given params and replies: goes into metrics/<name>.json."""
    unparseable = len(reasons)
    return {"mode": conf["mode_requested"], "mode_used": conf["mode"], "mode_reason": conf["mode_reason"],
            "constraint": (conf["constraint"] or {}).get("kind"), "truncated_rows": truncated,
            "text_tokens": conf["truncation"]["text_tokens"], "model": conf["model"]["name"], "rows": n,
            "answered": n - unparseable,
            "unparseable": unparseable, "unparseable_rate": round(unparseable / max(n, 1), 6), "failed": 0,
            **tokens, "cost_usd": cost(s, **tokens),
            "unparseable_examples": [{"row": i, "reason": r} for i, r in list(reasons.items())[:5]]}


def run_stats(s: Settings, stats: client.Stats, n: int, wall: float, policy: client.Policy) -> dict[str, Any]:
    """What this run did (a cached rerun makes no requests): metrics/timings/."""
    return {"requests": stats.requests, "cache_hits": stats.cache_hits, "retries": stats.retries,
            "errors": dict(sorted(stats.errors.items())), "prompt_tokens": stats.prompt_tokens,
            "completion_tokens": stats.completion_tokens,
            "cost_usd": cost(s, stats.prompt_tokens, stats.completion_tokens),
            "wall_seconds": round(wall, 3), "requests_per_second": round(stats.requests / wall, 3) if wall else None,
            "rows_per_second": round(n / wall, 3) if wall else None, "concurrency": policy.concurrency}


def labelled(params: Mapping[str, Any], name: str) -> Labelled:
    """The only labelled rows a chat model sees are its few-shot examples."""
    return Labelled(rows=typed(Settings, group(params, name)).few_shot.k)
