"""The chat-LLM approach's settings (the `llm` group in params.yaml): types, allowed values and
defaults, read typed by the approach (`ctx.approach_settings(name, Settings)`). Defaults agree
with conf/llm/common.yaml; what has none here (MISSING: the prompts) comes from conf/.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Dict, List, Mapping, Optional

from omegaconf import MISSING

from textclf.core.settings import ModelSpec, typed


class LlmMode(Enum):
    label = "label"
    score = "score"
    logprob = "logprob"


class Provider(Enum):
    local = "local"  # a GGUF model served by llama.cpp (started here, or at base_url)
    groq = "groq"  # Groq's API, or a server answering /openai/v1 at base_url


class KeyVar(Enum):
    """The only variables (environment or .env) llm.api_key_env may name: params cannot point
    the key reader at another secret, which would then be sent to base_url (policy.py)."""
    GROQ_API_KEY = "GROQ_API_KEY"
    TEXTCLF_LLM_API_KEY = "TEXTCLF_LLM_API_KEY"


@dataclass
class Prompts:
    label_system: str = MISSING
    score_system: str = MISSING
    user: str = MISSING


@dataclass
class Decoding:
    temperature: float = 0.0
    max_tokens: int = 5
    seed: Optional[int] = 0
    top_logprobs: int = 10


@dataclass
class FewShot:
    k: int = 0
    seed: int = 42


@dataclass
class Select:
    """Candidates chosen among on validation at fit (selection.py). Null or one candidate:
    nothing to choose, no request at fit."""
    label_system: Optional[List[str]] = None  # more system prompts for label/logprob mode (prompts.label_system first)
    few_shot_k: Optional[List[int]] = None  # more few-shot k (few_shot.k first)
    max_rows: Optional[int] = 300  # a seeded, stratified subset of validation (null: every row)
    seed: int = 42


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
    label_words: Optional[Dict[str, str]] = None
    threshold: float = 0.5
    constrained: bool = True
    max_text_tokens: Optional[int] = None
    context_tokens: Optional[int] = None
    chars_per_token: Optional[float] = None
    prompts: Prompts = field(default_factory=Prompts)
    decoding: Decoding = field(default_factory=Decoding)
    few_shot: FewShot = field(default_factory=FewShot)
    select: Select = field(default_factory=Select)
    base_url: Optional[str] = None
    server: Server = field(default_factory=Server)
    concurrency: int = 1
    rpm: Optional[float] = None
    timeout: float = 120
    retries: Retries = field(default_factory=Retries)
    cache: Cache = field(default_factory=Cache)
    price: Price = field(default_factory=Price)
    api_key_env: KeyVar = KeyVar.GROQ_API_KEY


Settings = Llm


def read(group: Mapping[str, Any], source: str = "params.yaml", prefix: str = "llm") -> Llm:
    """The llm group (a mapping as written in params.yaml) typed: for code holding no Context."""
    return typed(Llm, group, source, prefix)
