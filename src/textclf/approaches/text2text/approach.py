"""Text-to-text (T5): a prompt per review into `AutoModelForSeq2SeqLM` (transformers 5
has no text2text pipeline), in one of two modes:

  - generate: greedy decoding, the text mapped to the label whose word it names;
              text naming no label (or several) is UNPARSEABLE, counted in the metrics.
              The raw generations go to predictions/<name>/<split>.generations.jsonl.
  - score:    the log-likelihood of each label word's tokens given the prompt; argmax,
              softmax over labels kept as probabilities.

`fit` resolves the model (a model spec, resolve.py: hub id or local folder) and saves it
with the prompt settings in models/<name>/; with no reachable weights it fails at once.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from textclf.approaches.base import META, UNPARSEABLE, Labelled, Prediction, load_meta
from textclf.approaches.text2text.settings import Settings, Text2TextMode
from textclf.core.context import predictions_dir

log = logging.getLogger(__name__)



def label_words_for(label_names: Sequence[str], words: Mapping[str, str] | None) -> list[str]:
    """The word the model should produce for each label, in label order."""
    if words is None:
        return list(label_names)
    unknown = sorted(set(words) - set(label_names))
    missing = [n for n in label_names if n not in words]
    if unknown or missing:
        raise ValueError(f"label_words: labels without a word {missing}, words for unknown labels {unknown} "
                         f"(labels: {list(label_names)})")
    out = [str(words[n]).strip() for n in label_names]
    if not all(out) or len({w.lower() for w in out}) != len(out):
        raise ValueError(f"label_words must be non-empty and distinct, got {out}")
    return out


def check_prompt(template: str) -> str:
    if not isinstance(template, str) or template.count("{text}") != 1:
        raise ValueError(f"prompt must contain {{text}} exactly once, got {template!r}")
    return template


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def parse(text: str, label_words: Sequence[str]) -> int:
    """The label whose word(s) the text contains, if exactly one does; else UNPARSEABLE."""
    words = _words(text)
    hits = []
    for i, lw in enumerate(label_words):
        target = _words(lw)
        if target and any(words[j:j + len(target)] == target for j in range(len(words) - len(target) + 1)):
            hits.append(i)
    return hits[0] if len(hits) == 1 else UNPARSEABLE


def fit(ctx, name: str, out_dir: Path) -> None:
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    from textclf.runtime.resolve import ModelNotFound, resolve

    settings = ctx.approach_settings(name, Settings)
    words = label_words_for(ctx.label_names, settings.label_words)
    check_prompt(settings.prompt)
    spec = ctx.group(name)["model"]  # the model spec as written: an identity for resolve()
    try:
        location, source = resolve(spec)
    except ModelNotFound as exc:
        raise ModelNotFound(f"{exc} No T5 weights are packaged for offline use: approach {name!r} needs the hub "
                            f"or a local seq2seq folder (-S {ctx.approach(name)['params']}.model.path=/abs/folder); "
                            f"or leave it out (-S '~approach@approaches.{name}').") from None
    log.info("Using %s (%s, from %s)", spec["name"], location, source)
    out_dir.mkdir(parents=True, exist_ok=True)
    AutoModelForSeq2SeqLM.from_pretrained(str(location)).save_pretrained(str(out_dir))
    AutoTokenizer.from_pretrained(str(location)).save_pretrained(str(out_dir))
    meta = {"model": spec["name"], "hub_id": spec.get("hub_id"), "mode": settings.mode.value, "prompt": settings.prompt,
            "label_words": words, "dataset_labels": list(ctx.label_names), "max_length": settings.max_length,
            "max_new_tokens": settings.max_new_tokens}
    (out_dir / META).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")


def _batches(prompts: Sequence[str], batch_size: int, desc: str, progress: bool):
    order = np.argsort([-len(p) for p in prompts], kind="stable")  # similar lengths pad little
    for start in tqdm(range(0, len(order), batch_size), desc=desc, disable=not progress):
        yield order[start:start + batch_size]


def generate(model, tok, prompts: Sequence[str], max_length: int, max_new_tokens: int, batch_size: int,
             device: str, progress: bool = True) -> list[str]:
    import torch

    out: list[str] = [""] * len(prompts)
    with torch.no_grad():
        for idx in _batches(prompts, batch_size, "Generating", progress):
            enc = tok([prompts[i] for i in idx], padding=True, truncation=True, max_length=max_length,
                      return_tensors="pt").to(device)
            ids = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False, num_beams=1)
            for i, text in zip(idx, tok.batch_decode(ids, skip_special_tokens=True)):
                out[i] = text.strip()
    return out


def label_loglik(model, tok, prompts: Sequence[str], label_words: Sequence[str], max_length: int, batch_size: int,
                 device: str, progress: bool = True) -> np.ndarray:
    """(n, n_labels) sum of log p(label tokens | prompt); encoder run once per batch."""
    import torch

    targets = [tok(w, return_tensors="pt").input_ids.to(device) for w in label_words]  # with </s>
    out = np.zeros((len(prompts), len(label_words)), dtype=np.float64)
    with torch.no_grad():
        for idx in _batches(prompts, batch_size, "Scoring", progress):
            enc = tok([prompts[i] for i in idx], padding=True, truncation=True, max_length=max_length,
                      return_tensors="pt").to(device)
            encoded = model.get_encoder()(**enc)
            for j, target in enumerate(targets):
                labels = target.expand(len(idx), -1).contiguous()
                dec_in = model.prepare_decoder_input_ids_from_labels(labels=labels)  # shifted right, no loss
                logits = model(encoder_outputs=encoded, attention_mask=enc["attention_mask"],
                               decoder_input_ids=dec_in).logits
                logp = torch.log_softmax(logits.float(), dim=-1).gather(-1, labels.unsqueeze(-1)).squeeze(-1)
                out[idx, j] = logp.sum(-1).cpu().numpy()
    return out


def load(model_dir: Path, device: str):
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    return AutoModelForSeq2SeqLM.from_pretrained(str(model_dir)).to(device).eval(), AutoTokenizer.from_pretrained(str(model_dir))


def predict(ctx, name: str, model_dir: Path, split: str) -> Prediction:
    pred = predict_texts(ctx, name, model_dir, ctx.split(split).texts)
    generated = (pred.info or {}).pop("generations", None)
    if generated is not None:
        # Raw outputs beside the predictions, so unparseable answers can be read.
        raw = ctx.path(predictions_dir(name)) / f"{split}.generations.jsonl"
        raw.parent.mkdir(parents=True, exist_ok=True)
        raw.write_text("".join(json.dumps({"row": i, "generated": g, "pred": int(p)}) + "\n"
                               for i, (g, p) in enumerate(zip(generated, pred.pred))), encoding="utf-8")
        n_bad = int((pred.pred == UNPARSEABLE).sum())
        if n_bad:
            log.warning("%s/%s: %d of %d generations name no single label (counted as unparseable; see %s)",
                        name, split, n_bad, len(pred.pred), raw)
    return pred


def predict_texts(ctx, name: str, model_dir: Path, texts: Sequence[str], progress: bool = True) -> Prediction:
    """In generate mode, info["generations"] holds the raw outputs (predict writes them to a file)."""
    meta = load_meta(model_dir, name, ctx.label_names)
    batch_size = ctx.approach_settings(name, Settings).batch_size  # speed only
    model, tok = load(model_dir, ctx.device)
    prompts = [meta["prompt"].replace("{text}", t) for t in texts]
    words = meta["label_words"]
    from textclf.runtime.tokens import count_truncated

    # The prompt (question first) is cut to max_length tokens: how many lose their end.
    info = {"max_length": int(meta["max_length"]),
            "truncated_rows": count_truncated(tok, prompts, int(meta["max_length"]))}
    if Text2TextMode(meta["mode"]) is Text2TextMode.score:
        ll = label_loglik(model, tok, prompts, words, meta["max_length"], batch_size, ctx.device, progress)
        probs = np.exp(ll - ll.max(axis=1, keepdims=True))
        probs /= probs.sum(axis=1, keepdims=True)
        return Prediction(probs.argmax(axis=1).astype(np.int64), probs, "probability", info=info)
    generated = generate(model, tok, prompts, meta["max_length"], meta["max_new_tokens"], batch_size, ctx.device,
                         progress)
    pred = np.asarray([parse(g, words) for g in generated], dtype=np.int64)
    return Prediction(pred, None, info={**info, "generations": generated})


def labelled(params: Mapping[str, Any], name: str) -> Labelled:
    return Labelled()  # zero-shot: a prompt and label words, no labelled rows
