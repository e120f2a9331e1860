"""The chat-LLM approach's settings (the `llm` group in params.yaml)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Dict, List, Optional

from textclf.core.settings import ModelSpec


class LlmMode(Enum):
    label = "label"
    score = "score"
    logprob = "logprob"


class Provider(Enum):
    local = "local"
    groq = "groq"


@dataclass
class Prompts:
    label_system: str = ""
    score_system: str = ""
    user: str = ""


@dataclass
class Decoding:
    temperature: float = 0.0
    max_tokens: int = 5
    seed: Optional[int] = None
    top_logprobs: int = 10


@dataclass
class FewShot:
    k: int = 0
    seed: int = 0


@dataclass
class Server:
    n_threads: int = 2
    n_ctx: int = 2048
    startup_timeout: float = 180
    n_gpu_layers: int = 0


@dataclass
class Retries:
    max: int = 5
    backoff: float = 1.0
    max_backoff: float = 60


@dataclass
class Cache:
    enabled: bool = True
    dir: Optional[str] = None


@dataclass
class Price:
    input_per_mtok: float = 0.0
    output_per_mtok: float = 0.0


@dataclass
class Llm:
    provider: Provider = Provider.local
    api_model: Optional[str] = None
    model: Optional[ModelSpec] = None
    mode: LlmMode = LlmMode.label
    positive_label: Optional[str] = None
    threshold: float = 0.5
    constrained: bool = True
    max_text_tokens: Optional[int] = None
    context_tokens: Optional[int] = None
    chars_per_token: Optional[float] = None
    prompts: Prompts = field(default_factory=Prompts)
    decoding: Decoding = field(default_factory=Decoding)
    few_shot: FewShot = field(default_factory=FewShot)
    base_url: Optional[str] = None
    server: Server = field(default_factory=Server)
    concurrency: int = 1
    rpm: Optional[float] = None
    timeout: float = 120
    retries: Retries = field(default_factory=Retries)
    cache: Cache = field(default_factory=Cache)
    price: Price = field(default_factory=Price)
    api_key_env: str = "GROQ_API_KEY"


Settings = Llm
