"""Zero-shot: cosine similarity to embedded label descriptions (several per label are averaged)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from ..embed import Embedder, embed_texts
from . import Labelled, Prediction, cosine_predict, unit

log = logging.getLogger(__name__)


def from_template(label_names: Sequence[str], template: str) -> list[list[str]]:
    """One description per label: the template with {label} replaced by the label name,
    underscores as spaces ("alarm_query" -> "alarm query"). Other braces are kept as written."""
    if not isinstance(template, str) or "{label}" not in template:
        raise ValueError(f"data.label_description_template must contain {{label}}, got {template!r} "
                         "(or set data.label_descriptions)")
    return [[template.replace("{label}", name.replace("_", " "))] for name in label_names]


def descriptions_for(label_names: Sequence[str], descriptions: Mapping[str, Sequence[str] | str] | None,
                     template: str | None = None) -> list[list[str]]:
    """One non-empty list of descriptions per label, in label order; errors name what is wrong.
    No descriptions: built from the template."""
    if descriptions is None:
        return from_template(label_names, template)
    unknown = sorted(set(descriptions) - set(label_names))
    missing = [n for n in label_names if n not in descriptions]
    if unknown or missing:
        raise ValueError(f"data.label_descriptions: labels without descriptions {missing}, "
                         f"descriptions for unknown labels {unknown} (labels: {list(label_names)}). Describe "
                         "every label, or set data.label_descriptions to null to use data.label_description_template")
    out = []
    for name in label_names:
        d = descriptions[name]
        d = [d] if isinstance(d, str) else list(d)
        if not d or not all(isinstance(s, str) and s.strip() for s in d):
            raise ValueError(f"data.label_descriptions.{name}: needs one or more non-empty strings, got {d!r}")
        out.append(d)
    return out


def fit(ctx, name: str, out_dir: Path) -> None:
    cfg = ctx.settings(name)  # data: the descriptions or the template (conf/approach/label_desc.yaml)
    per_label = descriptions_for(ctx.label_names, cfg.get("label_descriptions"), cfg.get("label_description_template"))
    if cfg.get("label_descriptions") is None:
        log.info("data.label_descriptions is null: from data.label_description_template %r: %s",
                 cfg.get("label_description_template"), per_label)
    flat = [s for d in per_label for s in d]
    emb = Embedder.from_spec(ctx.params["embedder"], ctx.device).encode(flat, progress=False)
    refs, i = [], 0
    for d in per_label:
        refs.append(unit(emb[i:i + len(d)]).mean(axis=0))
        i += len(d)
    out_dir.mkdir(parents=True, exist_ok=True)
    np.save(out_dir / "label_embeddings.npy", np.stack(refs).astype(np.float32))
    # The descriptions actually embedded, given or built from the template.
    (out_dir / "descriptions.json").write_text(json.dumps(dict(zip(ctx.label_names, per_label)), indent=2) + "\n")


def predict(ctx, name: str, model_dir: Path, split: str) -> Prediction:
    return cosine_predict(ctx.embeddings(split), np.load(model_dir / "label_embeddings.npy"))


def predict_texts(ctx, name: str, model_dir: Path, texts: Sequence[str], progress: bool = True) -> Prediction:
    return cosine_predict(embed_texts(ctx, texts, progress), np.load(model_dir / "label_embeddings.npy"))


def labelled(params, name: str) -> Labelled:
    return Labelled()  # zero-shot: label descriptions, no labelled rows
