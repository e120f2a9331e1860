"""Chat-LLM approach: ask a chat model for each review's label through the groq SDK.

Providers (conf/llm/*.yaml, the `llm:` params; settings.py types them):
  local - a GGUF model (PyPI package, path or hub; sha256-checked) served by
          llama-cpp-python on 127.0.0.1, started and stopped by the stage (local_server.py),
          or an already running server at `base_url` (then part of the model identity: its
          replies are cached apart from those of the server started here);
  groq  - Groq's API (or any server at `base_url` answering /openai/v1), key from the
          environment or .env, never from params (policy.py: where keys and reviews may go).

fit writes models/<name>/config.json (model_config.py): everything that decides the answers,
with the system prompt and few-shot k chosen on validation when llm.select lists candidates
(selection.py; the record in models/<name>/selection.json).
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
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from textclf.approaches.base import UNPARSEABLE, Labelled, Prediction
from textclf.approaches.llm import budget, client, prompts, selection
from textclf.approaches.llm.cache import ResponseCache, request_key
from textclf.approaches.llm.model_config import build_conf, counter_for
from textclf.approaches.llm.policy import api_key
from textclf.approaches.llm.settings import LlmMode, Settings
from textclf.approaches.llm.transport import endpoint, send_all
from textclf.core.context import group
from textclf.core.settings import typed
from textclf.data.prepared import label_words
from textclf.evaluation.metrics import macro_f1

log = logging.getLogger(__name__)

CONFIG = "config.json"


class FailedRows(RuntimeError):
    """Some rows got no reply after all retries: the stage must not record its outputs."""


def fit(ctx, name: str, out_dir: Path) -> None:
    s, raw = ctx.approach_settings(name, Settings), ctx.group(name)
    cands = selection.candidates(s)
    train = ctx.split("train") if any(c.few_shot_k > 0 for c in cands) else None
    shots = (train.texts, list(train.labels)) if train else None
    # The words the model answers with (data.label_words, via the llm group): the label names
    # unless mapped; predictions index into them, so the prepared labels stay as they are.
    names = list(ctx.label_names)
    labels = label_words(names, s.label_words)
    positive = labels[names.index(s.positive_label)] if s.positive_label in names else s.positive_label
    if len(cands) == 1:
        conf, record = build_conf(s, raw, labels, shots, positive), selection.nothing_chosen(cands[0])
    else:
        conf, record = choose(ctx, name, s, raw, cands, labels, shots, positive)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / CONFIG).write_text(json.dumps(conf, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    (out_dir / selection.FILE).write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n")


def choose(ctx, name: str, s: Settings, raw: Mapping[str, Any], cands: list[selection.Candidate], labels: list[str],
           shots: tuple[list[str], list[int]] | None, positive: str | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the chosen candidate's config.json content, selection.json's): each candidate's config
    labels the same validation rows through predict's path (cache included: predict's
    validation requests for the chosen one are then cache hits). Reads validation, never test."""
    val = ctx.split("validation")
    idx, drawn = selection.rows(s, val.labels)
    gold, texts = val.labels[idx], [val.texts[i] for i in idx]
    confs, batches = [], []
    for c in cands:
        cs, craw = selection.variant(s, raw, c)
        conf = build_conf(cs, craw, labels, shots, positive)
        cut, _ = truncate_texts(craw, conf, texts)
        confs.append(conf)
        batches.append(requests_for(conf, cut))
    log.info("%s: choosing the prompt and few-shot k among %d candidates on %d of %d validation rows (%d requests "
             "at most; cached replies are reused)", name, len(cands), len(idx), len(val.labels), len(cands) * len(idx))
    scores, unparseable = [], []
    with session(s, raw, ctx.root, [r for b in batches for r in b]) as (send, _):
        for i, (c, conf, requests) in enumerate(zip(cands, confs, batches)):
            outcomes, stats = send(conf, requests, f"{name}/select {i + 1}/{len(cands)}")
            pred, _, failed, reasons, _ = collect(conf, outcomes)
            record_failures(ctx.root / "logs" / "llm" / name / "selection.failed.jsonl",
                            [{**f, "row": idx[f["row"]], "candidate": i} for f in failed],
                            f"{name}/selection candidate {i} (validation rows)", len(requests))
            scores.append(macro_f1(gold, pred, len(labels)))
            unparseable.append(len(reasons))
            log.info("%s: candidate %d/%d (k=%d, prompt %r): validation macro-F1 %.4f, %d unparseable; %d requests, "
                     "%d cache hits", name, i + 1, len(cands), c.few_shot_k, c.label_system[:60], scores[-1],
                     len(reasons), stats.requests, stats.cache_hits)
    record = selection.record(cands, scores, unparseable, drawn)
    chosen = cands[record["chosen"]]
    log.info("%s: chose candidate %d (k=%d, prompt %r): validation macro-F1 %.4f (candidate 0, as written: %.4f)",
             name, record["chosen"], chosen.few_shot_k, chosen.label_system[:60], scores[record["chosen"]], scores[0])
    return confs[record["chosen"]], record


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


@contextmanager
def session(s: Settings, raw: Mapping[str, Any], root: Path, requests: list[dict[str, Any]]):
    """(send, policy): send(conf, requests, desc) -> (outcomes, stats), through the cache and one
    endpoint for every call (a local server is started once, and only if some of `requests`,
    every request to come, has no cached reply). predict and the selection at fit share it."""
    policy = client.Policy.from_settings(s)
    cache = cache_for(s)
    try:
        key = api_key(s, root)
        with endpoint(s, raw, needed=not all_cached(requests, cache)) as base_url:
            yield (lambda conf, reqs, desc: send_all(s, conf, reqs, base_url, key, cache, policy, desc=desc)), policy
    finally:
        if cache:
            cache.close()


def predict(ctx, name: str, model_dir: Path, split: str) -> Prediction:
    pred = predict_texts(ctx, name, model_dir, ctx.split(split).texts, split=split)
    chosen = read_selection(model_dir)
    if split == "test" and chosen is not None:  # the choice, once, in metrics/<name>.json: details.test.selection
        pred.info = {**pred.info, "selection": chosen}
    return pred


def read_selection(model_dir: Path) -> dict[str, Any] | None:
    """selection.json when fit chose among candidates; None when there was nothing to choose
    (the metrics are then those of before) or a fit from before selection wrote none."""
    path = model_dir / selection.FILE
    record = json.loads(path.read_text()) if path.is_file() else None
    return record if record and len(record["candidates"]) > 1 else None


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
    start = time.perf_counter()
    with session(s, raw, ctx.root, requests) as (send, policy):
        outcomes, stats = send(conf, requests, f"{name}/{split}")
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
    """The labelled rows a chat model sees are its few-shot examples. Choosing a prompt or k
    reads the validation labels, so the summary then counts that split (as for label_desc),
    plus every candidate k's examples (at most the sum of the distinct k: the draws may overlap)."""
    cands = selection.candidates(typed(Settings, group(params, name)))
    if len(cands) == 1:
        return Labelled(rows=cands[0].few_shot_k)
    return Labelled(splits=("validation",), rows=sum({c.few_shot_k for c in cands}))
