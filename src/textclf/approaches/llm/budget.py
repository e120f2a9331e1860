"""Fit every text into the model's context: count tokens, and truncate (keeping the start).

Two counters, one interface (`count`, `truncate`, `prompt`):
  VocabCounter  - provider local: the GGUF's own vocabulary (llama.cpp, vocab only) and its
                  chat template, so counts are the server's counts;
  CharEstimate  - provider groq: no tokenizer for the API model here, so an estimate of
                  `chars_per_token` characters per token, meant to over-count (English
                  averages about 4 characters per token with Llama-style vocabularies).

`plan` (at fit) turns n_ctx, the prompt without the text, the reply's max_tokens and a margin
into the text's token budget, truncating the few-shot examples if they would not leave room;
`truncate_text` (at predict) cuts one text to that budget. A text within the budget is returned
unchanged, so short texts make exactly the requests they made before truncation existed."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from textclf.approaches.llm.settings import Provider, Settings

# Tokens kept free beyond the reply's max_tokens: the text's tokens inside the prompt can
# differ from its standalone count at the two seams ("Review: " + text + end of turn).
MARGIN = 16
# Below this many tokens for the text the classification is meaningless: refuse at fit.
MIN_TEXT_TOKENS = 32
# config.json's truncation.counter: how tokens are counted (recorded, so spelled once).
VOCABULARY = "model vocabulary"
CHARS_PER_TOKEN = "chars_per_token"


class Counter(Protocol):
    def count(self, text: str) -> int: ...
    def truncate(self, text: str, n: int) -> str: ...
    def prompt(self, messages: list[dict[str, str]]) -> int: ...


def truncate_by_tokens(text: str, n: int, tokenize: Callable[[str], list[int]],
                       detokenize: Callable[[list[int]], bytes]) -> str:
    """The longest start of `text` (cut where the first n tokens end) whose own count is <= n.
    The cut is made on the original text's bytes, so the result is a true prefix."""
    raw = text.encode()
    tokens = tokenize(text)
    if len(tokens) <= n:
        return text
    k = n
    while k > 0:
        cut = raw[:len(detokenize(tokens[:k]))].decode("utf-8", errors="ignore")
        if len(tokenize(cut)) <= n:  # re-tokenising a cut can merge differently: check
            return cut
        k -= 1
    return ""


class VocabCounter:
    """Token counts with the model's own vocabulary and chat template (no weights loaded)."""

    def __init__(self, model_path: Path):
        from llama_cpp import Llama
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        self.vocab = Llama(model_path=str(model_path), vocab_only=True, verbose=False)
        template = self.vocab.metadata.get("tokenizer.chat_template")
        if not template:
            raise ValueError(f"{model_path.name} has no chat template in its metadata: the prompt's size is unknown")
        text = self.vocab._model.token_get_text
        eos, bos = self.vocab.token_eos(), self.vocab.token_bos()
        self.formatter = Jinja2ChatFormatter(template=template, eos_token=text(eos) if eos != -1 else "",
                                             bos_token=text(bos) if bos != -1 else "")

    def _tokenize(self, s: str) -> list[int]:
        return self.vocab.tokenize(s.encode(), add_bos=False, special=False)

    def count(self, text: str) -> int:
        return len(self._tokenize(text))

    def truncate(self, text: str, n: int) -> str:
        # A token is at least one byte (+1: a vocabulary may prefix a space): a text that
        # fits by bytes needs no tokenizing.
        if len(text.encode()) + 1 <= n:
            return text
        return truncate_by_tokens(text, n, self._tokenize, lambda t: self.vocab.detokenize(t))

    def prompt(self, messages: list[dict[str, str]]) -> int:
        rendered = self.formatter(messages=messages).prompt  # what the server renders, template and all
        return len(self.vocab.tokenize(rendered.encode(), add_bos=True, special=True))


@dataclass(frozen=True)
class CharEstimate:
    """No tokenizer: `chars_per_token` characters count as one token (rounded up)."""
    chars_per_token: float
    per_message: int = 8  # role markers and separators of a chat template, over-counted

    def count(self, text: str) -> int:
        return math.ceil(len(text) / self.chars_per_token)

    def truncate(self, text: str, n: int) -> str:
        return text if self.count(text) <= n else text[:int(n * self.chars_per_token)]

    def prompt(self, messages: list[dict[str, str]]) -> int:
        return sum(self.count(m["content"]) + self.per_message for m in messages) + self.per_message


def plan(counter: Counter, render: Callable[[str, Sequence[tuple[str, int]]], list[dict[str, str]]],
         shots: Sequence[tuple[str, int]], n_ctx: int, max_tokens: int, cap: int | None,
         what: str) -> tuple[int, list[tuple[str, int]], int]:
    """(the text's token budget, the few-shot examples cut to fit, how many were cut).

    budget = n_ctx - tokens of the prompt with an empty text - the reply's max_tokens - MARGIN,
    at most `cap`. Long few-shot examples share the room with the text: each is cut to
    1/(k+1) of what an empty prompt leaves. `render(text, shots)` gives the messages."""
    empty = counter.prompt(render("", [("", y) for _, y in shots]))
    room = n_ctx - empty - max_tokens - MARGIN
    if room < MIN_TEXT_TOKENS * (len(shots) + 1):
        raise ValueError(f"llm: the prompt without texts takes {empty} tokens of the {n_ctx}-token context "
                         f"(reply {max_tokens}, margin {MARGIN}), leaving {room} for {len(shots)} few-shot "
                         f"example(s) and the text. {what}")
    per_shot = room // (len(shots) + 1)
    if cap is not None:
        per_shot = min(per_shot, cap)
    cut = [(counter.truncate(t, per_shot), y) for t, y in shots]
    n_cut = sum(c != t for (c, _), (t, _) in zip(cut, shots))
    budget = n_ctx - counter.prompt(render("", cut)) - max_tokens - MARGIN
    if cap is not None:
        budget = min(budget, cap)
    return budget, cut, n_cut


def truncate_text(counter: Counter, text: str, budget: int) -> tuple[str, bool]:
    """(text cut to `budget` tokens keeping its start, whether it was cut)."""
    out = counter.truncate(text, budget)
    return out, out != text


def settings(s: Settings) -> dict[str, Any]:
    """The context and cap from params, checked: what decides how long texts are cut."""
    cap = s.max_text_tokens
    if cap is not None and cap < MIN_TEXT_TOKENS:
        raise ValueError(f"llm.max_text_tokens must be null or an integer >= {MIN_TEXT_TOKENS}, not {cap!r}")
    if s.provider is Provider.local:
        return {"counter": VOCABULARY, "n_ctx": s.server.n_ctx, "max_text_tokens": cap}
    if not s.chars_per_token or not s.context_tokens:
        raise ValueError("llm.provider=groq: set llm.context_tokens (the API model's context window) and "
                         "llm.chars_per_token (the estimate used to cut long texts; conf/llm/groq.yaml has both)")
    return {"counter": CHARS_PER_TOKEN, "chars_per_token": s.chars_per_token, "n_ctx": s.context_tokens,
            "max_text_tokens": cap}
