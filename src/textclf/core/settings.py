"""The shape of params.yaml as OmegaConf structured configs (dataclasses): types, allowed
values and key names of every known group, checked before any stage does work.

Only the shared groups live here: each approach's own group is typed by its
`approaches/<kind>/settings.py`, so that editing one approach's settings reruns that approach
alone (this module is a dependency of every stage). `textclf.params.validate` checks both.

Why a check and not Hydra's ConfigStore in conf/'s defaults list: `dvc exp run -S` composes
conf/ inside DVC's own process, where this module is never imported, so conf/ cannot name a
schema registered from here; and `-S key=val` on an existing params.yaml bypasses Hydra
altogether. So `python -m textclf.params` validates what it composed, and every stage
validates the shared groups of params.yaml as it loads it (context.load_params): a wrong type,
an unknown policy value or a misspelt key fails with the key's dotted name and what is allowed.

Open-ended on purpose: `approaches.<name>` entries may name their own settings group
(`params: mygroup`), which is then not checked here; everything else is closed.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field, fields, is_dataclass
from enum import Enum
from typing import Any, Dict, List, Mapping, Optional, TypeVar

from omegaconf import OmegaConf
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException

T = TypeVar("T")


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


# The embedder's backend (runtime/embed.py). Built by name because OmegaConf matches a value to
# a member by its NAME, and `onnx-int8` (what conf/ and -S spell) is not an identifier.
Backend = Enum("Backend", [(v, v) for v in ("auto", "torch", "onnx", "onnx-int8")], module=__name__)


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
    weights: str = "model.safetensors"  # the file verify() checks in a model folder
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
class Task:  # the LLM prompts' wording: conf/data/defaults.yaml holds it (read only there)
    instruction: Optional[str] = None
    item: Optional[str] = None
    item_label: Optional[str] = None


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
    label_words: Optional[Dict[str, str]] = None
    task: Task = field(default_factory=Task)
    limits: Limits = field(default_factory=Limits)
    on_empty_text: Policy = Policy.error
    on_null_label: Policy = Policy.error
    on_unknown_label: Policy = Policy.error
    on_cross_split_duplicate: DupPolicy = DupPolicy.drop


class DeviceName(Enum):  # core.device.resolve_device
    cpu = "cpu"
    cuda = "cuda"
    auto = "auto"


@dataclass
class Device:
    name: DeviceName = DeviceName.cpu
    threads: Optional[int] = None


class EngineName(Enum):  # where batch inference runs (runtime/engine.py)
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


@dataclass
class Approach:
    kind: str = ""
    input: str = ""
    params: Optional[str] = None
    code: List[str] = field(default_factory=list)
    splits: Optional[List[str]] = None
    # label_desc: how its descriptions are used, forward | all (checked by label_desc.select)
    select: Optional[str] = None


class Scoring(Enum):  # the meta-classifier's C search (evaluation/ensemble_model.py), over all labels
    neg_log_loss = "neg_log_loss"
    f1_macro = "f1_macro"


class Candidate(Enum):  # what may predict an ensemble's test rows (evaluation/ensemble.py)
    best_base = "best_base"
    average = "average"
    stack = "stack"


@dataclass
class Ensemble:  # ensembles.<name> (conf/ensemble/): bases, Cs and candidates are set there
    bases: List[str] = field(default_factory=list)
    Cs: List[float] = field(default_factory=list)
    folds: int = 5
    scoring: Scoring = Scoring.neg_log_loss
    max_iter: int = 1000
    candidates: List[Candidate] = field(default_factory=list)


@dataclass
class Compare:  # conf/compare/default.yaml
    bootstrap_resamples: int = 1000
    seed: int = 42  # conf: ${seed}
    rare_classes: int = 5  # the rarest classes' per-class table (0: none)


@dataclass
class Params:
    seed: int = 42
    data: Data = field(default_factory=Data)
    embedder: Embedder = field(default_factory=Embedder)
    device: Device = field(default_factory=Device)
    engine: Engine = field(default_factory=Engine)
    approaches: Dict[str, Approach] = field(default_factory=dict)
    ensembles: Dict[str, Ensemble] = field(default_factory=dict)
    compare: Compare = field(default_factory=Compare)


# ---------------------------------------------------------------- the check

def _schema_at(root: Any, dotted: str) -> Any:
    """The dataclass the parent of `dotted` (relative to `root`) is checked against, or None."""
    node: Any = root
    in_dict = False  # the part after a Dict[str, X] field is a name (approaches.<name>), not a key
    for part in dotted.split(".")[:-1]:
        if in_dict:
            in_dict = False
            continue
        hints = {f.name: f.type for f in fields(node)} if is_dataclass(node) else {}
        if part not in hints:
            return None
        node, in_dict = _dataclass_in(hints[part], node), str(hints[part]).startswith(("Dict", "dict"))
    return node if is_dataclass(node) and not in_dict else None


def _dataclass_in(type_: Any, owner: Any) -> Any:
    """The dataclass a field holds (Optional[X] / Dict[str, X] -> X); names are strings under
    `from __future__ import annotations`, looked up in the module that defines `owner`."""
    import sys

    scope = vars(sys.modules[owner.__module__])
    name = str(type_)
    for candidate in reversed(name.replace("[", " ").replace("]", " ").replace(",", " ").split()):
        obj = scope.get(candidate.split(".")[-1])
        if is_dataclass(obj):
            return obj
    return None


def _message(exc: OmegaConfBaseException, source: str, root: Any, prefix: str) -> str:
    rel = exc.full_key or "?"
    key = f"{prefix}.{rel}" if prefix else rel
    msg = str(exc.msg).splitlines()[0]
    if isinstance(exc, ConfigKeyError):
        schema = _schema_at(root, rel)
        known = [f.name for f in fields(schema)] if schema else []
        close = difflib.get_close_matches(key.split(".")[-1], known, n=1)
        hint = f" Did you mean {'.'.join(key.split('.')[:-1] + close[:1])!r}?" if close else ""
        return (f"{source}: unknown key {key!r}.{hint} Known keys there: {known}. "
                "Fix the spelling in conf/ or in the -S override.")
    return f"{source}: {key}: {msg}. Fix the value in conf/ or in the -S override, then rerun."


def typed(schema: type[T], node: Any, source: str = "params.yaml", prefix: str = "") -> T:
    """`node` (a mapping from params.yaml) checked against the dataclass `schema` and returned as
    an instance of it: every key typed, enums as members, nothing missing. The one way settings
    are read, so no code carries a default of its own."""
    try:
        return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(schema), node or {}))
    except OmegaConfBaseException as exc:
        raise ParamsError(_message(exc, source, schema, prefix)) from None


def lookup(params: Mapping[str, Any], dotted: str) -> Any:
    """The value at a dotted key of params (e.g. an approach's `params: task_specific`)."""
    node: Any = params
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            raise KeyError(f"params.yaml has no {dotted!r}")
        node = node[part]
    return node


def shared(params: Mapping[str, Any], source: str = "params.yaml") -> Params:
    """The shared groups of `params`, typed (Params). Any other top-level key is an approach's own
    group (`approaches.<name>.params`, or a kind's group conf/ composes, e.g. text2text): typed when
    that approach reads it (Context.approach_settings); `textclf.params.validate` checks them all."""
    if not isinstance(params, Mapping):
        raise ParamsError(f"{source}: expected a mapping of settings, found {type(params).__name__}")
    known = {f.name for f in fields(Params)}
    return typed(Params, {k: v for k, v in params.items() if k in known}, source)


def approach_groups(params: Mapping[str, Any]) -> dict[str, tuple[str, str]]:
    """{approach name: (its settings key, its kind)} for approaches whose `params` names a group
    of their own rather than a shared one (data, seed, ...)."""
    known = {f.name for f in fields(Params)}
    entries = params.get("approaches")  # raw and not yet checked: shared() types it
    entries = entries if isinstance(entries, Mapping) else {}
    return {name: (str(a["params"]), str(a.get("kind"))) for name, a in entries.items()
            if isinstance(a, Mapping) and a.get("params") and str(a["params"]).split(".")[0] not in known}

