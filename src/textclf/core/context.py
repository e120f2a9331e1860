"""What a stage knows: the composed params, the repository root and the standard paths."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import yaml

from textclf.core import settings as schema
from textclf.data import prepared

T = TypeVar("T")

# Every path a stage reads or writes, named once (relative to the repository root; dvc.yaml
# spells the same ones).
PREPARED = Path("data/prepared")
EMBEDDINGS = Path("data/embeddings")
MODELS = Path("models")
EMBEDDER_ID = MODELS / "embedder.json"
PREDICTIONS = Path("predictions")  # predictions/<approach>/<split>.jsonl
ENSEMBLES = Path("ensembles")  # ensembles/<ensemble>/<split>.jsonl (outside predictions/: no cycle)
METRICS = Path("metrics")
TIMINGS = METRICS / "timings"
TRAIN_LOGS = METRICS / "train"  # dvclive logs of fit@<name>


def metrics_path(name: str) -> Path:
    """metrics/<name>.json: an approach's or ensemble's test metrics (or data, embed, summary)."""
    return METRICS / f"{name}.json"


def timing_path(stage: str, name: str | None = None) -> Path:
    """metrics/timings/<stage>_<name>.json (fit, predict) or metrics/timings/<stage>.json (embed)."""
    return TIMINGS / (f"{stage}_{name}.json" if name else f"{stage}.json")


def predictions_dir(name: str, ensemble: bool = False) -> Path:
    return (ENSEMBLES if ensemble else PREDICTIONS) / name


def model_path(name: str) -> Path:
    """models/<name>/: what fit@<name> (or ensemble@<name>) wrote."""
    return MODELS / name


def embeddings_path(split: str) -> Path:
    return EMBEDDINGS / f"{split}.npy"


def approach_names(params: dict[str, Any]) -> list[str]:
    """The configured approaches, in params order (the fit@/predict@ stages)."""
    return list(schema.shared(params).approaches)


def ensemble_names(params: dict[str, Any]) -> list[str]:
    return list(schema.shared(params).ensembles)
# Where DVC runs queued experiments: <repo>/.dvc/tmp/exps/<tmp>/ (`dvc exp run --queue`) and
# <repo>/.dvc/tmp/exps/standalone/<tmp>/ (`--temp`).
EXP_TMP = Path(".dvc/tmp/exps")
EXP_PARENTS = (EXP_TMP, EXP_TMP / "standalone")


def setup_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def load_params(root: Path) -> dict[str, Any]:
    path = root / "params.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run `python -m textclf.params` to compose it from conf/")
    params = yaml.safe_load(path.read_text())
    # `dvc exp run -S key=val` and hand edits change params.yaml without Hydra: check the shared
    # groups here, before any stage does work, so a typo fails with its key's name (an approach's
    # own group is checked when that approach reads it: Context.approach_settings).
    schema.shared(params, str(path))
    return params


def link_outside_paths(root: Path, paths: list[str | None]) -> None:
    """DVC resolves a dependency outside the repository (`../shared/...`) from the workspace it
    runs in; a queued experiment (`dvc exp run --queue`, `--temp`) runs in
    <repo>/.dvc/tmp/exps/<tmp>/ (`--temp`: .dvc/tmp/exps/standalone/<tmp>/), where `..` is
    DVC's tmp dir. Link <repo>/.dvc/tmp/exps/<name> (and .../standalone/<name>) to
    <repo>/../<name> for each such path, so that the same relative path names the same files
    there (the links live in DVC's own, git-ignored tmp dir). Called from the main workspace by
    every stage and by `python -m textclf.params`."""
    if Path(os.environ.get("DVC_ROOT", root)).resolve() != root.resolve() or EXP_TMP.parts[0] in root.parts:
        return  # inside an experiment's copy: the main workspace has linked already
    for p in filter(None, paths):
        parts = Path(p).parts
        if len(parts) < 2 or parts[0] != ".." or parts[1] == "..":
            continue
        target = (root.parent / parts[1]).resolve()
        for parent in EXP_PARENTS:
            link = root / parent / parts[1]
            if target.exists() and not link.exists() and (root / ".dvc").is_dir():
                link.parent.mkdir(parents=True, exist_ok=True)
                try:
                    link.symlink_to(target, target_is_directory=target.is_dir())
                except FileExistsError:  # another stage made it meanwhile
                    pass


def link_from_params(root: Path) -> None:
    """link_outside_paths for the paths params.yaml names (`make setup` runs it)."""
    if (root / "params.yaml").is_file():
        link_outside_paths(root, [schema.shared(load_params(root)).data.local_dir])


@dataclass
class Context:
    root: Path
    params: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_cwd(cls) -> Context:
        root = Path.cwd()
        link_from_params(root)
        return cls(root, load_params(root))

    @property
    def seed(self) -> int:
        return self.settings.seed

    @cached_property
    def label_names(self) -> list[str]:
        return prepared.read_label_names(self.root / PREPARED)

    def split(self, name: str) -> prepared.Prepared:
        return prepared.read_split(self.root / PREPARED, name)

    def embeddings(self, name: str) -> np.ndarray:
        path = self.path(embeddings_path(name))
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing: run `dvc repro embed`")
        try:
            return np.load(path)
        except (ValueError, OSError, EOFError) as exc:  # numpy's own message names no file
            raise ValueError(f"{path} is not a readable .npy file ({exc}): rebuild it with `dvc repro -f embed`") from exc

    @cached_property
    def device(self) -> str:
        from textclf.core.device import resolve_device, set_threads

        set_threads(self.settings.device.threads)
        return resolve_device(self.settings.device.name)

    @cached_property
    def settings(self) -> schema.Params:
        """The shared groups, typed: `ctx.settings.data.text_column`, `ctx.settings.device.name`."""
        return schema.shared(self.params)

    def approach_settings(self, name: str, cls: type[T]) -> T:
        """The settings group approach `name` names (`approaches.<name>.params`), typed by `cls`
        (its kind's `settings.Settings`)."""
        key = self.approach(name)["params"]
        return schema.typed(cls, schema.lookup(self.params, key), "params.yaml", key)

    def approach(self, name: str) -> dict[str, Any]:
        """The raw entry `approaches.<name>` (typed: `ctx.settings.approaches[name]`)."""
        if name not in self.settings.approaches:
            raise KeyError(f"approach {name!r} is not configured; configured: {sorted(self.settings.approaches)}")
        return self.params["approaches"][name]

    def group(self, name: str) -> dict[str, Any]:
        """The raw settings group an approach entry's `params` names (a dotted key, e.g. `llm`), as
        written in params.yaml (for records such as model cards; code reads approach_settings)."""
        return group(self.params, name)

    def model_dir(self, name: str) -> Path:
        return self.path(model_path(name))

    def path(self, relative: Path) -> Path:
        """A path of this run: ctx.path(metrics_path("stack")), ctx.path(timing_path("fit", name))."""
        return self.root / relative

    @property
    def approach_names(self) -> list[str]:
        return list(self.settings.approaches)

    @property
    def ensemble_names(self) -> list[str]:
        return list(self.settings.ensembles)


def group(params: dict[str, Any], name: str) -> dict[str, Any]:
    """`Context.group` for code that holds params but no Context (the summary's hooks)."""
    key = params["approaches"][name]["params"]
    try:
        return schema.lookup(params, key)
    except KeyError:
        raise KeyError(f"approaches.{name}.params names {key!r}, which params.yaml does not have") from None
