"""Zero-shot: cosine similarity to embedded label descriptions (several per label are averaged)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from ..embed import Embedder
from . import Labelled, Prediction, cosine_predict, unit


def descriptions_for(label_names: Sequence[str], descriptions: Mapping[str, Sequence[str] | str]) -> list[list[str]]:
    """One non-empty list of descriptions per label, in label order; errors name what is wrong."""
    unknown = sorted(set(descriptions) - set(label_names))
    missing = [n for n in label_names if n not in descriptions]
    if unknown or missing:
        raise ValueError(f"data.label_descriptions: labels without descriptions {missing}, "
                         f"descriptions for unknown labels {unknown} (labels: {list(label_names)})")
    out = []
    for name in label_names:
        d = descriptions[name]
        d = [d] if isinstance(d, str) else list(d)
        if not d or not all(isinstance(s, str) and s.strip() for s in d):
            raise ValueError(f"data.label_descriptions.{name}: needs one or more non-empty strings, got {d!r}")
        out.append(d)
    return out


def fit(ctx, name: str, out_dir: Path) -> None:
    per_label = descriptions_for(ctx.label_names, ctx.params["data"]["label_descriptions"])
    flat = [s for d in per_label for s in d]
    emb = Embedder.from_spec(ctx.params["embedder"], ctx.device).encode(flat, progress=False)
    refs, i = [], 0
    for d in per_label:
        refs.append(unit(emb[i:i + len(d)]).mean(axis=0))
        i += len(d)
    out_dir.mkdir(parents=True, exist_ok=True)
    np.save(out_dir / "label_embeddings.npy", np.stack(refs).astype(np.float32))
    (out_dir / "descriptions.json").write_text(json.dumps(dict(zip(ctx.label_names, per_label)), indent=2) + "\n")


def predict(ctx, name: str, model_dir: Path, split: str) -> Prediction:
    return cosine_predict(ctx.embeddings(split), np.load(model_dir / "label_embeddings.npy"))


def labelled(params, name: str) -> Labelled:
    return Labelled()  # zero-shot: label descriptions, no labelled rows
