"""What a stage knows: the composed params, the repository root and the standard paths."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from . import data

PREPARED = Path("data/prepared")
EMBEDDINGS = Path("data/embeddings")
EMBEDDER_ID = Path("models/embedder.json")


def setup_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def load_params(root: Path) -> dict[str, Any]:
    path = root / "params.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run `python -m textclf.params` to compose it from conf/")
    return yaml.safe_load(path.read_text())


@dataclass
class Context:
    root: Path
    params: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_cwd(cls) -> "Context":
        root = Path.cwd()
        return cls(root, load_params(root))

    @property
    def seed(self) -> int:
        return int(self.params["seed"])

    @cached_property
    def label_names(self) -> list[str]:
        return data.read_label_names(self.root / PREPARED)

    def split(self, name: str) -> data.Prepared:
        return data.read_split(self.root / PREPARED, name)

    def embeddings(self, name: str) -> np.ndarray:
        path = self.root / EMBEDDINGS / f"{name}.npy"
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing: run `dvc repro embed`")
        return np.load(path)

    @cached_property
    def device(self) -> str:
        from .embed import resolve_device, set_threads

        set_threads(self.params["device"].get("threads"))
        return resolve_device(self.params["device"]["name"])

    def embedder(self):
        from .embed import Embedder
        from .resolve import resolve

        spec = self.params["embedder"]
        location, _ = resolve(spec)
        return Embedder(location, spec, self.device)

    def approach(self, name: str) -> dict[str, Any]:
        approaches = self.params.get("approaches") or {}
        if name not in approaches:
            raise KeyError(f"approach {name!r} is not configured; configured: {sorted(approaches)}")
        return approaches[name]
