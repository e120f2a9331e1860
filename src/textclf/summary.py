"""Compare the approaches that ran: metrics/summary.json (deterministic) and a Markdown table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping


def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.is_file() else {}


def collect(root: Path, approaches: Mapping[str, Any]) -> dict[str, Any]:
    rows = {}
    for name in approaches:
        m = _load(root / "metrics" / f"{name}.json")
        if not m:
            raise FileNotFoundError(f"metrics/{name}.json is missing: run `dvc repro predict@{name}`")
        rows[name] = {"kind": m["kind"], "rows": m["rows"], "accuracy": m["accuracy"], "macro_f1": m["macro"]["f1"],
                      "weighted_f1": m["weighted"]["f1"], "unparseable": m["unparseable"],
                      "validation_macro_f1": m["validation"]["macro"]["f1"] if "validation" in m else None}
    best = max(rows, key=lambda n: rows[n]["macro_f1"]) if rows else None
    return {"approaches": rows, "best": best}


def timings(root: Path, name: str) -> dict[str, Any]:
    t = root / "metrics" / "timings"
    return {**_load(t / f"fit_{name}.json"), **_load(t / f"predict_{name}.json")}


def markdown(summary: Mapping[str, Any], root: Path, dataset: str, embedder: str) -> str:
    lines = [f"Dataset: `{dataset}`, embedder: `{embedder}`; test split.", "",
             "| approach | macro-F1 | accuracy | weighted-F1 | unparseable | fit s | test s / 1k texts |",
             "|---|---|---|---|---|---|---|"]
    ranked = sorted(summary["approaches"].items(), key=lambda kv: -kv[1]["macro_f1"])
    for name, r in ranked:
        t = timings(root, name)
        fit = t.get("fit_seconds")
        lines.append(f"| {name} | {r['macro_f1']:.4f} | {r['accuracy']:.4f} | {r['weighted_f1']:.4f} | "
                     f"{r['unparseable']} | {'' if fit is None else f'{fit:.1f}'} | "
                     f"{t.get('test_seconds_per_1000', float('nan')):.2f} |")
    return "\n".join(lines) + "\n"
