"""Zero-shot: cosine similarity to embedded label descriptions.

The descriptions in config are candidates. With `select: forward` (conf/approach/label_desc.yaml)
the i-th description of every label forms candidate set i ("A negative review" / "A positive
review"), and sets are chosen on the VALIDATION split alone by greedy forward selection: start
from no set, add the set that gives the highest validation macro-F1 (ties to the earlier set in
config), stop when no set raises it. Each label's vector is the mean of its chosen descriptions'
unit embeddings. Whole sets, not single descriptions, are added: adding a description to one label
only would move the decision boundary for every label at once (on rotten_tomatoes no single
addition helped). `select: all` averages every description given (lists of any length).
One set only (e.g. descriptions built from the template): nothing to choose, recorded as such.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np

from textclf.approaches.base import Labelled, Prediction, cosine_predict, unit
from textclf.core import settings as schema
from textclf.data.prepared import label_words
from textclf.evaluation.metrics import macro_f1
from textclf.runtime.embed import Embedder, embed_texts

log = logging.getLogger(__name__)


class Select(Enum):
    """approaches.<name>.select: how the descriptions are used (module docstring)."""
    forward = "forward"
    all = "all"


SELECTION_FILE = "selection.json"


def from_template(label_names: Sequence[str], template: str, words: Mapping[str, str] | None = None) -> list[list[str]]:
    """One description per label: the template with {label} replaced by the label's words
    (data.label_words) or else its name, underscores as spaces ("alarm_query" -> "alarm query").
    Other braces are kept as written."""
    if not isinstance(template, str) or "{label}" not in template:
        raise ValueError(f"data.label_description_template must contain {{label}}, got {template!r} "
                         "(or set data.label_descriptions)")
    mapped = label_words(label_names, words)
    return [[template.replace("{label}", w if name in (words or {}) else name.replace("_", " "))]
            for name, w in zip(label_names, mapped)]


def descriptions_for(label_names: Sequence[str], descriptions: Mapping[str, Sequence[str] | str] | None,
                     template: str | None = None, words: Mapping[str, str] | None = None) -> list[list[str]]:
    """One non-empty list of descriptions per label, in label order; errors name what is wrong.
    No descriptions: built from the template (and data.label_words)."""
    if descriptions is None:
        return from_template(label_names, template, words)
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


def candidate_sets(label_names: Sequence[str], per_label: Sequence[Sequence[str]]) -> int:
    """How many candidate sets `select: forward` chooses among: every label must list the same
    number of descriptions (set i = the i-th of each)."""
    lengths = {name: len(d) for name, d in zip(label_names, per_label)}
    if len(set(lengths.values())) != 1:
        raise ValueError(f"approaches.label_desc.select=forward pairs the i-th descriptions of every label into "
                         f"candidate set i, so every label needs the same number of descriptions; "
                         f"data.label_descriptions has {lengths}. List as many per label, or set "
                         "approaches.label_desc.select=all to average them all")
    return next(iter(lengths.values()))


def references(unit_emb: np.ndarray, chosen: Sequence[int]) -> np.ndarray:
    """(labels, dim): each label's mean over the chosen sets. unit_emb: (sets, labels, dim).
    Summed in set order whatever the order chosen, so a score recomputed later is the same bits."""
    return unit_emb[sorted(chosen)].mean(axis=0)


@dataclass
class Selection:
    rule: str
    chosen: list[int]  # candidate set indices, in the order they were added
    validation_macro_f1: float
    alone: list[float] = field(default_factory=list)  # each set's validation macro-F1 on its own
    steps: list[dict] = field(default_factory=list)  # {"added": i, "validation_macro_f1": f}


def forward_select(unit_emb: np.ndarray, val_emb: np.ndarray, val_labels: np.ndarray) -> Selection:
    """Greedy forward selection of candidate sets on validation (module docstring). Reads only
    the validation rows it is given; deterministic (ties to the lower index)."""
    n_sets, n_labels = unit_emb.shape[:2]
    x = unit(val_emb)

    def score(chosen: Sequence[int]) -> float:
        return macro_f1(val_labels, (x @ unit(references(unit_emb, chosen)).T).argmax(axis=1), n_labels)

    alone = [score([i]) for i in range(n_sets)]
    if n_sets == 1:
        return Selection("none: one candidate set", [0], alone[0], alone)
    chosen: list[int] = []
    current, steps = -1.0, []
    while len(chosen) < n_sets:
        scores = {i: alone[i] if not chosen else score([*chosen, i]) for i in range(n_sets) if i not in chosen}
        best = max(scores, key=lambda i: (scores[i], -i))
        if scores[best] <= current:  # strictly better or stop: ties keep the smaller set
            break
        chosen.append(best)
        current = scores[best]
        steps.append({"added": best, "validation_macro_f1": current})
    return Selection("forward", chosen, current, alone, steps)


def select(label_names: Sequence[str], per_label: list[list[str]], emb: np.ndarray, how: Select,
           val_emb: np.ndarray, val_labels: np.ndarray) -> tuple[np.ndarray, list[list[str]], dict]:
    """The label vectors, the descriptions they average, and the record of the choice.
    emb: the unit or raw embeddings of every description, flattened in label order."""
    emb = unit(emb)
    if how is Select.all:
        refs, i = [], 0
        for d in per_label:
            refs.append(emb[i:i + len(d)].mean(axis=0))
            i += len(d)
        return np.stack(refs), per_label, {"rule": "all: every description averaged, nothing chosen"}
    n_sets = candidate_sets(label_names, per_label)
    # flattened label-major -> (sets, labels, dim)
    by_set = emb.reshape(len(label_names), n_sets, -1).transpose(1, 0, 2)
    sel = forward_select(by_set, val_emb, val_labels)
    chosen = sorted(sel.chosen)  # config order in descriptions.json; the steps keep the order added
    record = {**asdict(sel), "metric": "validation macro-F1", "candidates": [
        {"set": i, "descriptions": {n: per_label[j][i] for j, n in enumerate(label_names)},
         "validation_macro_f1_alone": sel.alone[i]} for i in range(n_sets)]}
    del record["alone"]
    return references(by_set, chosen), [[d[i] for i in chosen] for d in per_label], record


def select_rule(entry: schema.Approach) -> Select:
    """approaches.<name>.select, checked (conf/approach/label_desc.yaml sets it)."""
    allowed = tuple(m.value for m in Select)
    if entry.select not in allowed:
        raise ValueError(f"approaches.label_desc.select must be one of {allowed}, got {entry.select!r}")
    return Select(entry.select)


def fit(ctx, name: str, out_dir: Path) -> None:
    data = ctx.settings.data  # the descriptions or the template (conf/approach/label_desc.yaml)
    how = select_rule(ctx.settings.approaches[name])
    per_label = descriptions_for(ctx.label_names, data.label_descriptions, data.label_description_template,
                                 data.label_words)
    if data.label_descriptions is None:
        log.info("data.label_descriptions is null: from data.label_description_template %r: %s",
                 data.label_description_template, per_label)
    emb = Embedder.from_spec(ctx.params["embedder"], ctx.device).encode([s for d in per_label for s in d], progress=False)
    # Validation only: test plays no part in the choice (tests/test_approaches.py permutes it).
    val = ctx.split("validation")
    refs, chosen, record = select(ctx.label_names, per_label, emb, how, ctx.embeddings("validation"), val.labels)
    log.info("label descriptions (%s): %s", record["rule"], chosen)
    out_dir.mkdir(parents=True, exist_ok=True)
    np.save(out_dir / "label_embeddings.npy", refs.astype(np.float32))
    # The descriptions actually embedded and averaged, given or built from the template.
    (out_dir / "descriptions.json").write_text(json.dumps(dict(zip(ctx.label_names, chosen)), indent=2) + "\n")
    (out_dir / SELECTION_FILE).write_text(json.dumps(record, indent=2) + "\n")


def predict(ctx, name: str, model_dir: Path, split: str) -> Prediction:
    pred = cosine_predict(ctx.embeddings(split), np.load(model_dir / "label_embeddings.npy"))
    if split == "test":  # the choice, once, in metrics/<name>.json: details.test.selection
        pred.info = {"selection": json.loads((model_dir / SELECTION_FILE).read_text())}
    return pred


def predict_texts(ctx, name: str, model_dir: Path, texts: Sequence[str], progress: bool = True) -> Prediction:
    return cosine_predict(embed_texts(ctx, texts, progress), np.load(model_dir / "label_embeddings.npy"))


def labelled(params: Mapping[str, Any], name: str) -> Labelled:
    """Zero-shot: no training rows. Choosing among several candidate sets reads the validation
    labels, so the summary counts that split (as it does for a checkpoint chosen on validation)."""
    settings = schema.shared(params)
    lengths = {len(d) for d in (settings.data.label_descriptions or {}).values()}
    if select_rule(settings.approaches[name]) is Select.forward and lengths and max(lengths) > 1:
        return Labelled(splits=("validation",))
    return Labelled()
