"""text2text's settings (the `text2text` group in params.yaml), read typed by the approach
(`ctx.approach_settings(name, Settings)`). A default lives here or in conf/text2text/, not in the code."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Dict, Optional

from omegaconf import MISSING

from textclf.core.settings import ModelSpec


class Text2TextMode(Enum):  # generate: decode and parse | score: likelihood of each label word
    generate = "generate"
    score = "score"


@dataclass
class Text2Text:
    model: Optional[ModelSpec] = None
    mode: Text2TextMode = Text2TextMode.generate
    prompt: str = MISSING  # conf/text2text/ holds it: it names the task
    label_words: Optional[Dict[str, str]] = None
    max_length: int = 256
    max_new_tokens: int = 5
    batch_size: int = 16


Settings = Text2Text
