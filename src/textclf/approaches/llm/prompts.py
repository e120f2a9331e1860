"""Prompts and strict parsing: pure functions, no I/O.

Three modes:
  label   - the model answers with one of the label names; anything else is unparseable;
  score   - the model answers a number in [0, 1] for the positive label (binary only),
            thresholded; anything else is unparseable;
  logprob - one token at temperature 0; each label's probability is the mass of the
            first-token top logprobs that spell the start of that label (and no other).
Label mode can be constrained (the reply is exactly a label by construction): a GBNF
grammar for llama.cpp, a JSON schema enum for Groq's structured output; parsed exactly.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from textclf.approaches.llm.settings import LlmMode


@dataclass(frozen=True)
class Parsed:
    pred: int  # label index or -1 (unparseable)
    scores: tuple[float, ...] | None = None  # per-label probabilities, when the mode gives them
    reason: str = ""  # why a row is unparseable


def render(template: str, **values: Any) -> str:
    """str.format with a clear error naming the missing placeholder."""
    try:
        return template.format(**values)
    except KeyError as exc:
        raise ValueError(f"prompt template uses {{{exc.args[0]}}}, available: {sorted(values)}") from None


def build_messages(prompts: Mapping[str, str], mode: LlmMode | str, label_names: Sequence[str], text: str,
                   shots: Sequence[tuple[str, int]] = (), positive: str | None = None) -> list[dict[str, str]]:
    """Chat messages for one review: system, then few-shot user/assistant pairs, then the review.
    `mode`: a member, or its value as config.json records it."""
    try:
        mode = LlmMode(mode)
    except ValueError:
        raise ValueError(f"llm.mode must be one of {[m.value for m in LlmMode]}, not {mode!r}") from None
    kind = "score" if mode is LlmMode.score else "label"  # logprob mode asks the label question
    values = {"labels": ", ".join(label_names), "positive": positive or label_names[-1]}
    msgs = [{"role": "system", "content": render(prompts[f"{kind}_system"], **values)}]
    for shot_text, shot_label in shots:
        answer = ("1" if label_names[shot_label] == values["positive"] else "0") if kind == "score" \
            else label_names[shot_label]
        msgs.append({"role": "user", "content": render(prompts["user"], text=shot_text, **values)})
        msgs.append({"role": "assistant", "content": answer})
    msgs.append({"role": "user", "content": render(prompts["user"], text=text, **values)})
    return msgs


_STRIP = " \t\r\n\"'`*_.,;:!()[]{}<>"


def _norm(s: str) -> str:
    return " ".join(s.strip(_STRIP).casefold().split())


def parse_label(text: str, label_names: Sequence[str]) -> Parsed:
    """The reply must start with a label name (case, quotes, markdown and trailing
    punctuation aside) followed by nothing or a non-word character; the longest such
    label wins. No label at the start: unparseable, never a default class."""
    reply = _norm(text)
    hits = []
    for i, name in enumerate(label_names):
        n = _norm(name)
        if reply == n or (reply.startswith(n) and not reply[len(n)].isalnum()):
            hits.append((len(n), i))
    if not hits:
        return Parsed(-1, reason=f"no label at the start of {text[:60]!r}")
    return Parsed(max(hits)[1])


_NUMBER = re.compile(r"^(?:0(?:\.\d+)?|1(?:\.0+)?|\.\d+)$")


def parse_score(text: str, n_labels: int, positive: int, threshold: float) -> Parsed:
    """The reply's first word must be a number in [0, 1]: pred = positive if >= threshold."""
    words = text.strip().split()
    word = words[0].rstrip(".,;") if words else ""
    if not _NUMBER.match(word):
        return Parsed(-1, reason=f"not a number in [0, 1]: {text[:60]!r}")
    p = float(word)
    scores = [0.0] * n_labels
    other = 1 - positive
    scores[positive], scores[other] = p, 1 - p
    return Parsed(positive if p >= threshold else other, tuple(scores))


def token_label(token: str, label_names: Sequence[str]) -> int | None | str:
    """Which label a first token spells the start of: an index, None (no label) or
    'ambiguous' (the start of several labels)."""
    t = _norm(token)
    if not t:
        return None
    hits = [i for i, n in enumerate(label_names) if _norm(n).startswith(t)]
    if len(hits) > 1:
        return "ambiguous"
    return hits[0] if hits else None


def parse_logprobs(top: Sequence[tuple[str, float]], label_names: Sequence[str]) -> Parsed:
    """Per-label probability from the first token's top logprobs, normalised over the
    labels. The most likely token must name a label: when it names none, or the start
    of several, the row is unparseable (its probabilities are still reported)."""
    mass = np.zeros(len(label_names))
    first: int | None | str = None
    for rank, (token, logprob) in enumerate(top):
        which = token_label(token, label_names)
        if rank == 0:
            first = which
        if isinstance(which, int):
            mass[which] += math.exp(logprob)
    total = mass.sum()
    scores = tuple(float(x) for x in (mass / total if total > 0 else mass))
    if first == "ambiguous":
        return Parsed(-1, scores, f"the most likely token {top[0][0]!r} starts several labels")
    if first is None:
        return Parsed(-1, scores, f"the most likely token {top[0][0]!r} starts no label" if top
                      else "no logprobs in the reply")
    return Parsed(int(np.argmax(mass)), scores)


def shared_first_tokens(label_names: Sequence[str], tokenize) -> list[tuple[str, str]]:
    """Pairs of labels whose first token is the same (so logprob mode cannot tell them
    apart), trying the spellings a model may start an answer with."""
    def firsts(name: str) -> set[int]:
        out = set()
        for variant in (name, name.capitalize(), " " + name, " " + name.capitalize()):
            toks = tokenize(variant)
            if toks:
                out.add(toks[0])
        return out
    f = {n: firsts(n) for n in label_names}
    return [(a, b) for i, a in enumerate(label_names) for b in label_names[i + 1:] if f[a] & f[b]]


# ---------------------------------------------------------------- constrained label mode

def gbnf_literal(s: str) -> str:
    """A GBNF string literal matching exactly `s` (llama.cpp grammar syntax): backslash,
    double quote and control characters escaped; other characters as they are (UTF-8)."""
    out = []
    for ch in s:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def label_grammar(label_names: Sequence[str]) -> str:
    """GBNF whose root is exactly one of the label names (nothing before or after)."""
    return "root ::= " + " | ".join(gbnf_literal(n) for n in label_names)


JSON_KEY = "label"


def label_response_format(label_names: Sequence[str]) -> dict[str, Any]:
    """OpenAI-style structured output: a JSON object whose only field is one of the labels."""
    return {"type": "json_schema",
            "json_schema": {"name": "classification",
                            "schema": {"type": "object",
                                       "properties": {JSON_KEY: {"type": "string", "enum": list(label_names)}},
                                       "required": [JSON_KEY], "additionalProperties": False}}}


def constrained_max_tokens(kind: str, label_names: Sequence[str]) -> int:
    """Reply tokens that always suffice for the longest label: a token is at least one byte
    (a grammar may spell a label in unusual, short tokens); JSON adds its wrapper and some
    whitespace. Fewer would cut a label mid-way, an unparseable row."""
    if kind == "grammar":
        return max(len(n.encode()) for n in label_names) + 1
    return max(len(json.dumps({JSON_KEY: n}).encode()) for n in label_names) + 32


def parse_constrained(text: str, label_names: Sequence[str], kind: str) -> Parsed:
    """A constrained reply is exactly a label (grammar) or {"label": <label>} (json_schema);
    anything else (a provider that ignored the constraint) is unparseable, not repaired."""
    value: Any = text
    if kind == "json_schema":
        try:
            value = json.loads(text)
        except ValueError:
            return Parsed(-1, reason=f"not JSON: {text[:60]!r}")
        value = value.get(JSON_KEY) if isinstance(value, dict) else None
    if isinstance(value, str) and value in label_names:
        return Parsed(list(label_names).index(value))
    return Parsed(-1, reason=f"constrained reply is not a label: {text[:60]!r}")
