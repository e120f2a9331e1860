"""Choosing the system prompt and the few-shot k on validation (llm.select).

The candidates are every system prompt (prompts.label_system, then select.label_system's
others) with every k (few_shot.k, then select.few_shot_k's others), prompt-major: candidate 0
is the configuration as written. Each labels the same seeded, class-stratified subset of the
VALIDATION split (select.max_rows); the highest macro-F1 wins, ties to the earlier candidate, so
a candidate must beat the configuration as written to replace it. Test plays no part
(tests/test_llm.py permutes it). One candidate: nothing to choose, no request at fit.

Score mode asks with prompts.score_system: it keeps that prompt and may choose k only.
Here: what the candidates are and the record; approach.fit sends the requests.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from copy import deepcopy
from dataclasses import dataclass, replace
from typing import Any

from textclf.approaches.llm.settings import LlmMode, Settings
from textclf.data.prepared import stratified_indices

FILE = "selection.json"
METRIC = "validation macro-F1"
NOTHING = "none: one candidate (llm.select adds no other prompt or k); no request at fit"
RULE = "grid: highest validation macro-F1, ties to the earlier candidate (candidate 0: the settings as written)"


@dataclass(frozen=True)
class Candidate:
    label_system: str
    few_shot_k: int

    def as_dict(self) -> dict[str, Any]:
        return {"label_system": self.label_system, "few_shot_k": self.few_shot_k}


def _unique(first, others) -> list:
    out = [first]
    for x in others or []:
        if x not in out:
            out.append(x)
    return out


def candidates(s: Settings) -> list[Candidate]:
    """The grid, checked: the settings as written first, repeats dropped, prompt-major."""
    prompts = _unique(s.prompts.label_system, s.select.label_system)
    ks = _unique(s.few_shot.k, s.select.few_shot_k)
    if s.mode is LlmMode.score and len(prompts) > 1:
        raise ValueError("llm.select.label_system chooses the system prompt of label and logprob mode; "
                         "llm.mode=score asks with prompts.score_system, which is not chosen. Set "
                         "llm.select.label_system to null (llm.select.few_shot_k may still choose k).")
    bad = [k for k in ks if not isinstance(k, int) or k < 0]
    if bad:
        raise ValueError(f"llm.select.few_shot_k: {bad} are not whole numbers >= 0")
    if s.select.max_rows is not None and s.select.max_rows < 1:
        raise ValueError(f"llm.select.max_rows must be >= 1 (null: every validation row), got {s.select.max_rows}")
    return [Candidate(p, k) for p in prompts for k in ks]


def variant(s: Settings, raw: Mapping[str, Any], c: Candidate) -> tuple[Settings, dict[str, Any]]:
    """The llm group, typed and as written, with the candidate's prompt and k: what build_conf
    reads. Candidate 0 gives back the same values, so its config.json is that of no selection."""
    s = replace(s, prompts=replace(s.prompts, label_system=c.label_system),
                few_shot=replace(s.few_shot, k=c.few_shot_k))
    raw = deepcopy(dict(raw))
    raw["prompts"] = {**raw["prompts"], "label_system": c.label_system}
    raw["few_shot"] = {**raw["few_shot"], "k": c.few_shot_k}
    return s, raw


def rows(s: Settings, labels: Sequence[int]) -> tuple[list[int], dict[str, Any]]:
    """The validation rows labelled for each candidate, and how they were drawn."""
    n, want = len(labels), s.select.max_rows
    if want is None or want >= n:
        return list(range(n)), {"validation_rows": n, "used": n, "drawn": "every validation row"}
    idx = stratified_indices(labels, want, s.select.seed)
    return idx, {"validation_rows": n, "used": len(idx), "seed": s.select.seed,
                 "drawn": "class-stratified sample (textclf.data.prepared.stratified_indices, llm.select.max_rows/seed)"}


def best(scores: Sequence[float]) -> int:
    """The highest score's index, ties to the earlier."""
    return max(range(len(scores)), key=lambda i: (scores[i], -i))


def nothing_chosen(c: Candidate) -> dict[str, Any]:
    return {"rule": NOTHING, "chosen": 0, "candidates": [c.as_dict()]}


def record(cands: Sequence[Candidate], scores: Sequence[float], unparseable: Sequence[int],
           drawn: Mapping[str, Any]) -> dict[str, Any]:
    """selection.json: deterministic for given params, validation rows and replies."""
    chosen = best(scores)
    return {"rule": RULE, "metric": METRIC, "chosen": chosen, "validation_macro_f1": scores[chosen],
            "rows": dict(drawn),
            "candidates": [{**c.as_dict(), "validation_macro_f1": f, "unparseable": u}
                           for c, f, u in zip(cands, scores, unparseable)]}
