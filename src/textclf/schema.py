"""The shape of params.yaml as OmegaConf structured configs (dataclasses): types, allowed
values and key names of every known group, checked before any stage does work.

Why a check and not Hydra's ConfigStore in conf/'s defaults list: `dvc exp run -S` composes
conf/ inside DVC's own process, where this module is never imported, so conf/ cannot name a
schema registered from here; and `-S key=val` on an existing params.yaml bypasses Hydra
altogether. So `python -m textclf.params` validates what it composed, and every stage
validates params.yaml as it loads it (context.load_params): a wrong type, an unknown policy
value or a misspelt key fails with the key's dotted name and what is allowed.

Open-ended on purpose: `approaches.<name>` entries may name their own settings group
(`params: mygroup`), which is then not checked here; everything else is closed.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field, fields, is_dataclass
from enum import Enum
from typing import Any, Dict, List, Optional

from omegaconf import OmegaConf
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException


class ParamsError(ValueError):
    """params.yaml (or a composed override) that does not fit the schema."""


# ---------------------------------------------------------------- allowed values

class Policy(Enum):
    error = "error"
    drop = "drop"


class DupPolicy(Enum):
    error = "error"
    drop = "drop"
    keep = "keep"


class DataSource(Enum):
    auto = "auto"
    hub = "hub"
    local = "local"


class ModelSource(Enum):
    auto = "auto"
    path = "path"
    package = "package"
    hub = "hub"


class PackageKind(Enum):
    module = "module"
    parts_zip = "parts_zip"
    parts_concat = "parts_concat"
    file = "file"


class Backend(Enum):  # embed.BACKENDS
    auto = "auto"
    torch = "torch"
    onnx = "onnx"
    onnx_int8 = "onnx-int8"


class LlmMode(Enum):
    label = "label"
    score = "score"
    logprob = "logprob"


class Provider(Enum):
    local = "local"
    groq = "groq"


# ---------------------------------------------------------------- groups

@dataclass
class Package:
    kind: PackageKind = PackageKind.module
    module: Optional[str] = None
    function: Optional[str] = None
    dists: Optional[List[str]] = None
    filename: Optional[str] = None
    dist: Optional[str] = None
    file: Optional[str] = None
    part_hint: Optional[str] = None
    install: Optional[str] = None


@dataclass
class ModelSpec:  # resolve.py
    name: Optional[str] = None
    hub_id: Optional[str] = None
    hub_revision: Optional[str] = None
    hub_file: Optional[str] = None
    hub_files: Optional[List[str]] = None
    source: ModelSource = ModelSource.auto
    path: Optional[str] = None
    sha256: Optional[str] = None
    weights: Optional[str] = None
    package: Optional[Package] = None


@dataclass
class Embedder(ModelSpec):
    backend: Backend = Backend.auto
    batch_size: int = 16
    max_seq_length: Optional[int] = None
    normalize: bool = True


@dataclass
class Splits:
    train: Optional[str] = None
    validation: Optional[str] = None
    test: Optional[str] = None


@dataclass
class Limits:
    train: Optional[int] = None
    validation: Optional[int] = None
    test: Optional[int] = None


@dataclass
class Task:
    instruction: str = ""
    item: str = ""
    item_label: str = ""


@dataclass
class Data:
    name: Optional[str] = None
    source: DataSource = DataSource.auto
    hub_id: Optional[str] = None
    hub_revision: Optional[str] = None
    local_dir: Optional[str] = None
    splits: Splits = field(default_factory=Splits)
    validation_fraction: Optional[float] = None
    text_column: str = "text"
    label_column: str = "label"
    label_names: Optional[List[str]] = None
    label_descriptions: Optional[Dict[str, List[str]]] = None
    label_description_template: str = "{label}"
    task: Task = field(default_factory=Task)
    limits: Limits = field(default_factory=Limits)
    on_empty_text: Policy = Policy.error
    on_null_label: Policy = Policy.error
    on_unknown_label: Policy = Policy.error
    on_cross_split_duplicate: DupPolicy = DupPolicy.drop


class ClassWeight(Enum):
    balanced = "balanced"


@dataclass
class Classifier:
    C: float = 1.0
    max_iter: int = 1000
    class_weight: Optional[ClassWeight] = None
    seed: int = 0


@dataclass
class Device:
    name: str = "cpu"
    threads: Optional[int] = None


class EngineName(Enum):  # engine.ENGINES
    local = "local"
    ray = "ray"


@dataclass
class Engine:
    name: EngineName = EngineName.local
    address: Optional[str] = None
    num_cpus: Optional[int] = None
    actors: int = 2
    cpus_per_actor: float = 1
    gpus_per_actor: float = 1


class Precision(Enum):  # task_specific/finetune.PRECISIONS
    fp32 = "fp32"
    bf16 = "bf16"
    fp16 = "fp16"


@dataclass
class Labels:
    map: Optional[Dict[str, str]] = None
    ignore: List[str] = field(default_factory=list)


@dataclass
class Finetune:
    epochs: int = 3
    patience: int = 1
    lr: float = 5e-5
    head_lr: float = 1e-2
    batch_size: int = 32
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    eval_batch_size: int = 128
    seed: int = 0
    precision: Precision = Precision.fp32


class TaskSpecificMode(Enum):
    finetune = "finetune"
    pretrained = "pretrained"


@dataclass
class TaskSpecific:
    mode: TaskSpecificMode = TaskSpecificMode.finetune
    base: Optional[Embedder] = None
    model: Optional[ModelSpec] = None
    labels: Labels = field(default_factory=Labels)
    max_length: int = 128
    batch_size: int = 64
    finetune: Optional[Finetune] = None


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


@dataclass
class Approach:
    kind: str = ""
    input: str = ""
    params: Optional[str] = None
    code: List[str] = field(default_factory=list)
    splits: Optional[List[str]] = None
    # label_desc: how its descriptions are used, forward | all (checked by label_desc.select)
    select: Optional[str] = None


class Scoring(Enum):
    neg_log_loss = "neg_log_loss"
    f1_macro = "f1_macro"


class Candidate(Enum):
    best_base = "best_base"
    average = "average"
    stack = "stack"


@dataclass
class Ensemble:
    bases: List[str] = field(default_factory=list)
    Cs: List[float] = field(default_factory=list)
    folds: int = 5
    scoring: Scoring = Scoring.neg_log_loss
    max_iter: int = 1000
    candidates: List[Candidate] = field(default_factory=list)


@dataclass
class Compare:
    bootstrap_resamples: int = 1000
    seed: int = 0
    rare_classes: int = 5


@dataclass
class Params:
    seed: int = 42
    data: Data = field(default_factory=Data)
    embedder: Embedder = field(default_factory=Embedder)
    classifier: Classifier = field(default_factory=Classifier)
    device: Device = field(default_factory=Device)
    engine: Engine = field(default_factory=Engine)
    task_specific: TaskSpecific = field(default_factory=TaskSpecific)
    text2text: Text2Text = field(default_factory=Text2Text)
    llm: Llm = field(default_factory=Llm)
    approaches: Dict[str, Approach] = field(default_factory=dict)
    ensembles: Dict[str, Ensemble] = field(default_factory=dict)
    compare: Compare = field(default_factory=Compare)


# ---------------------------------------------------------------- the check

def _schema_at(dotted: str) -> Any:
    """The dataclass the parent of `dotted` is checked against (for the known keys), or None."""
    node: Any = Params
    in_dict = False  # the part after a Dict[str, X] field is a name (approaches.<name>), not a key
    for part in dotted.split(".")[:-1]:
        if in_dict:
            in_dict = False
            continue
        hints = {f.name: str(f.type) for f in fields(node)} if is_dataclass(node) else {}
        if part not in hints:
            return None
        node, in_dict = _dataclass_in(hints[part]), hints[part].startswith(("Dict", "dict"))
    return node if is_dataclass(node) and not in_dict else None


def _dataclass_in(type_: Any) -> Any:
    """The dataclass a field holds (Optional[X] / Dict[str, X] -> X); the module's own names
    are strings under `from __future__ import annotations`."""
    name = str(type_)
    for candidate in reversed(name.replace("[", " ").replace("]", " ").replace(",", " ").split()):
        obj = globals().get(candidate.split(".")[-1])
        if is_dataclass(obj):
            return obj
    return None


def _message(exc: OmegaConfBaseException, source: str) -> str:
    key = exc.full_key or "?"
    msg = str(exc.msg).splitlines()[0]
    if isinstance(exc, ConfigKeyError):
        schema = _schema_at(key)
        known = [f.name for f in fields(schema)] if schema else []
        close = difflib.get_close_matches(key.split(".")[-1], known, n=1)
        hint = f" Did you mean {'.'.join(key.split('.')[:-1] + close[:1])!r}?" if close else ""
        return (f"{source}: unknown key {key!r}.{hint} Known keys there: {known}. "
                "Fix the spelling in conf/ or in the -S override.")
    return f"{source}: {key}: {msg}. Fix the value in conf/ or in the -S override, then rerun."


def validate(params: Any, source: str = "params.yaml") -> None:
    """Raise ParamsError naming the first key of `params` (a dict) that breaks the schema."""
    if not isinstance(params, dict):
        raise ParamsError(f"{source}: expected a mapping of settings, found {type(params).__name__}")
    # A group named only by an approach's `params` (its own settings) is that approach's business.
    approaches = params.get("approaches") or {}
    own = {str(a.get("params", "")).split(".")[0] for a in approaches.values() if isinstance(a, dict)}
    known = {f.name for f in fields(Params)}
    checked = {k: v for k, v in params.items() if k in known or k not in own}
    try:
        OmegaConf.merge(OmegaConf.structured(Params), checked)
    except OmegaConfBaseException as exc:
        raise ParamsError(_message(exc, source)) from None
