"""text2text's settings (the `text2text` group in params.yaml)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Dict, List, Optional

from textclf.core.settings import ModelSpec


class Text2TextMode(Enum):
    generate = "generate"
    score = "score"


@dataclass
class Text2Text:
    model: Optional[ModelSpec] = None
    mode: Text2TextMode = Text2TextMode.generate
    prompt: str = ""
    label_words: Optional[Dict[str, str]] = None
    max_length: int = 256
    max_new_tokens: int = 5
    batch_size: int = 16


Settings = Text2Text
