"""How many inputs a model truncates: every transformer input is cut to the model's limit
(the embedder's max_seq_length, a classifier's max_length); the count is reported, so a
long-text dataset shows how much of it the models never saw."""

from __future__ import annotations

import logging
from collections.abc import Sequence

log = logging.getLogger(__name__)


def count_truncated(tokenizer, texts: Sequence[str], limit: int, chunk: int = 256) -> int:
    """Texts whose tokens (special tokens included) exceed `limit`: those the model sees cut."""
    over = 0
    verbosity = tokenizer.deprecation_warnings.get("sequence-length-is-longer-than-the-specified-maximum")
    # Tokenizing past the model's limit is the point here: mute the "longer than" warning.
    tokenizer.deprecation_warnings["sequence-length-is-longer-than-the-specified-maximum"] = True
    try:
        for start in range(0, len(texts), chunk):
            ids = tokenizer(list(texts[start:start + chunk]), truncation=False)["input_ids"]
            over += sum(len(x) > limit for x in ids)
    finally:
        if verbosity is None:
            tokenizer.deprecation_warnings.pop("sequence-length-is-longer-than-the-specified-maximum", None)
    return over
