"""What fit records in models/<name>/config.json: everything that decides the answers (model
identity, mode asked and used, prompts, decoding, the label constraint, few-shot examples and
the text's token budget), checked. predict reads it back; the request payloads and cache keys
are built from it alone.

Records keep values as written in params.yaml (`raw`: decoding, prompts, the model spec), so
config.json and the cache keys do not depend on how the schema types them; `s` (typed) decides.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from textclf.approaches.llm import budget, prompts
from textclf.approaches.llm.policy import check_api_key_env, check_base_url
from textclf.approaches.llm.settings import LlmMode, Provider, Settings

log = logging.getLogger(__name__)


def model_identity(s: Settings, raw: Mapping[str, Any]) -> tuple[dict[str, Any], Path | None]:
    """What the cache key and config.json record as 'the model' (never a key or a port), and the
    local model's file (from the raw model spec). A local model served at `base_url` (not started
    here) is identified by that URL too; with base_url null the identity has no base_url key, so
    its cache keys are those of before."""
    check_base_url(s.base_url)
    if s.provider is Provider.groq:
        return {"provider": "groq", "name": s.api_model, "base_url": s.base_url}, None
    from textclf.runtime.resolve import resolve, verify

    model = raw["model"]
    location, _ = resolve(model)
    identity = {"provider": "local", "name": model["name"], "sha256": verify(location, model)}
    if s.base_url:
        identity["base_url"] = s.base_url
    elif s.server.n_gpu_layers:
        # GPU kernels round differently: offloaded layers are part of what answers (0 adds no key).
        identity["n_gpu_layers"] = s.server.n_gpu_layers
    return identity, location


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


def choose_mode(mode: LlmMode, constrained: bool, shared: list[tuple[str, str]]) -> tuple[LlmMode, str | None]:
    """(the mode used, why it differs from the one asked for). Logprob mode cannot tell apart
    labels that share a first token: with llm.constrained it falls back to constrained label
    mode (recorded, warned); without, it is refused."""
    if mode is not LlmMode.logprob or not shared:
        return mode, None
    if not constrained:
        raise ValueError(f"llm.mode=logprob: labels {shared[:5]} start with the same token for this model, so the "
                         "first token cannot tell them apart. Set llm.constrained=true (falls back to constrained "
                         "label mode), use mode=label, or rename the labels (data.label_names).")
    more = f" and {len(shared) - 3} more pairs" if len(shared) > 3 else ""
    return LlmMode.label, (f"logprob mode refused: labels {shared[:3]}{more} start with the same token for this "
                           "model; constrained label mode used instead")


def constraint_for(provider: Provider, labels: list[str]) -> dict[str, Any]:
    """What makes the reply one of the labels, per provider: a GBNF grammar for llama.cpp
    (sent as `grammar`), Groq's structured output (a JSON schema with the labels as enum)."""
    if provider is Provider.local:
        return {"kind": "grammar", "grammar": prompts.label_grammar(labels)}
    return {"kind": "json_schema", "response_format": prompts.label_response_format(labels)}


def counter_for(location: Path | None, trunc: Mapping[str, Any]) -> budget.Counter:
    if trunc["counter"] == budget.CHARS_PER_TOKEN:
        return budget.CharEstimate(trunc["chars_per_token"])
    return budget.VocabCounter(location)


def few_shots(s: Settings, train: tuple[list[str], list[int]] | None) -> list[tuple[str, int]]:
    """llm.few_shot.k examples drawn from `train` with llm.few_shot.seed, in row order."""
    k = s.few_shot.k
    if not k:
        return []
    texts, y = train
    rng = np.random.default_rng(s.few_shot.seed)
    return [(texts[i], int(y[i])) for i in sorted(rng.choice(len(texts), k, replace=False))]


def decoding_for(s: Settings, raw_decoding: Mapping[str, Any], mode_used: LlmMode) -> dict[str, Any]:
    """The request's decoding parameters as written in params (they go into the cache key),
    adjusted to the mode used."""
    dec = dict(raw_decoding)
    if mode_used is LlmMode.logprob:  # one token, greedy, with its alternatives
        dec.update(max_tokens=1, temperature=0.0, logprobs=True, top_logprobs=s.decoding.top_logprobs)
    else:
        dec.pop("top_logprobs", None)
        dec["logprobs"] = False
    return dec


def build_conf(s: Settings, raw: Mapping[str, Any], labels: list[str],
               train: tuple[list[str], list[int]] | None, positive: str | None = None) -> dict[str, Any]:
    """config.json's content: `s` the llm group typed, `raw` the same group as written (its
    decoding, prompts and model spec are recorded as they are); the few-shot examples are drawn
    from `train` and cut, with the text's budget, to fit the context. `labels` are the words the
    model answers with (data.label_words or the names), `positive` score mode's among them
    (default: s.positive_label, else the last)."""
    check_api_key_env(s)  # here too: a bad setting fails at fit, not at predict
    positive = positive or s.positive_label or labels[-1]
    if s.mode is LlmMode.score and (len(labels) != 2 or positive not in labels):
        raise ValueError(f"llm.mode=score needs two labels and llm.positive_label among them; labels: {labels}, "
                         f"positive_label: {positive!r}. Use mode=label or logprob for multi-class data.")
    identity, location = model_identity(s, raw)
    logprob = s.mode is LlmMode.logprob and location is not None
    mode_used, reason = choose_mode(s.mode, s.constrained, shared_first_token_labels(location, labels) if logprob else [])
    if reason:
        log.warning("llm: %s (recorded as mode_used/mode_reason in config.json and the metrics)", reason)
    dec = decoding_for(s, raw["decoding"], mode_used)
    # Label mode only: score and logprob replies are not label names.
    constraint = constraint_for(s.provider, labels) if mode_used is LlmMode.label and s.constrained else None
    if constraint:  # room for the longest label, else it is cut mid-way
        dec["max_tokens"] = max(int(dec["max_tokens"]), prompts.constrained_max_tokens(constraint["kind"], labels))
    trunc = budget.settings(s)
    render = lambda text, shots: prompts.build_messages(raw["prompts"], mode_used, labels, text, shots, positive)  # noqa: E731
    # Also renders one prompt now: a bad template fails at fit, not after the first request.
    text_tokens, shots, cut = budget.plan(
        counter_for(location, trunc), render, few_shots(s, train), trunc["n_ctx"], int(dec["max_tokens"]),
        trunc["max_text_tokens"], "Raise llm.server.n_ctx (local) or llm.context_tokens (groq), or use fewer "
        "few-shot examples (llm.few_shot.k) or shorter prompts.")
    if cut:
        log.warning("llm: %d of %d few-shot examples cut to fit the context", cut, len(shots))
    trunc.update(text_tokens=text_tokens, truncated_shots=cut)
    return {"model": identity, "mode": mode_used.value, "mode_requested": s.mode.value, "mode_reason": reason,
            "labels": labels, "positive": positive, "threshold": s.threshold, "prompts": dict(raw["prompts"]),
            "decoding": dec, "constrained": s.constrained, "constraint": constraint, "shots": shots,
            "truncation": trunc}
