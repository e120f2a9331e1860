"""Compare the approaches (and ensembles) that ran: metrics/summary.json and a Markdown table.

metrics/summary.json holds only what the predictions determine (metrics, seeded bootstrap
intervals, paired tests, labelled data needed), so identical runs give identical bytes; the
timing columns come from metrics/timings/ and go only into the Markdown.

Fields read from metrics/<name>.json: kind, rows, accuracy, macro.f1, weighted.f1,
unparseable, validation.macro.f1 (optional), and an optional block of LLM usage, `llm` or
else `details.test` (what the LLM approach writes), whose keys in LLM_KEYS are copied as
llm_<key>. The Markdown's "requests (this run)" comes from metrics/timings/predict_<name>.json
`details.test.requests` (a cached rerun makes none).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import yaml
from sklearn.metrics import precision_recall_fscore_support

from textclf.evaluation import compare
from textclf.evaluation import predictions
from textclf.core.context import EMBEDDINGS

DIGITS = 6
# Optional keys of an `llm` block in metrics/<name>.json that the summary carries over.
LLM_KEYS = ("requests", "prompt_tokens", "completion_tokens", "estimated_cost_usd", "cost_usd")


def llm_usage(m: Mapping[str, Any]) -> dict[str, Any]:
    """The deterministic LLM usage an approach reported for test, or {} (read defensively:
    approaches without an LLM have neither block)."""
    block = m.get("llm")
    if not isinstance(block, Mapping):
        details = m.get("details")
        block = details.get("test") if isinstance(details, Mapping) else None
    if not isinstance(block, Mapping):
        return {}
    return {f"llm_{k}": block[k] for k in LLM_KEYS if isinstance(block.get(k), (int, float))}


def _r(x: float) -> float:
    return round(float(x), DIGITS)


def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.is_file() else {}


def entries(params: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Every compared model by name: the approaches, then the ensembles (kind "ensemble")."""
    out = {name: dict(spec) for name, spec in (params.get("approaches") or {}).items()}
    for name, spec in (params.get("ensembles") or {}).items():
        if name in out:
            raise ValueError(f"{name!r} names both an approach and an ensemble; rename one")
        out[name] = {**spec, "kind": "ensemble"}
    return out


def labelled(name: str, spec: Mapping[str, Any], all_specs: Mapping[str, Mapping[str, Any]],
             split_rows: Mapping[str, int], metrics: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Labelled rows an approach learns from, as its predict stage recorded them in
    metrics/<name>.json (`labelled`: whole splits plus single rows such as few-shot examples).
    An ensemble needs its bases' labels plus the validation split it is trained on.
    Read from the metrics rather than asked of the approach's code, so the summary does not
    depend on (and rerun with) every approach's module."""
    if spec["kind"] == "ensemble":
        parts = [labelled(b, all_specs[b], all_specs, split_rows, metrics) for b in spec["bases"]]
        if any(p["labelled_rows"] is None for p in parts):
            return {"labelled_rows": None, "labelled_splits": "unknown"}
        splits = sorted({s for p in parts for s in p["_splits"]} | {"validation"})
        extra = sum(p["_extra"] for p in parts)
        return {"labelled_rows": sum(split_rows[s] for s in splits) + extra,
                "labelled_splits": "+".join(splits) + ("+examples" if extra else ""), "_splits": splits, "_extra": extra}
    lab = metrics[name].get("labelled")
    if not isinstance(lab, Mapping):  # an approach that does not say: unknown rather than a guess
        return {"labelled_rows": None, "labelled_splits": "unknown"}
    splits, extra = list(lab.get("splits") or []), int(lab.get("rows") or 0)
    if not splits and extra:
        return {"labelled_rows": extra, "labelled_splits": "examples", "_splits": [], "_extra": extra}
    return {"labelled_rows": sum(split_rows[s] for s in splits) + extra,
            "labelled_splits": "+".join(splits) + ("+examples" if extra else "") if splits else "none",
            "_splits": splits, "_extra": extra}


def rare_classes_k(compare_cfg: Mapping[str, Any]) -> int:
    """compare.rare_classes: how many of the rarest classes get a per-class table (0: none)."""
    k = compare_cfg.get("rare_classes")
    if not isinstance(k, int) or isinstance(k, bool) or k < 0:
        raise ValueError(f"compare.rare_classes must be a whole number >= 0 (0: no table), got {k!r}; "
                         "set it in conf/compare/default.yaml or -S compare.rare_classes=5")
    return k


def rare_classes(gold: np.ndarray, preds: Mapping[str, np.ndarray], train_counts: Sequence[int],
                 label_names: Sequence[str], k: int) -> dict[str, Any] | None:
    """Per-class test F1 of every approach for the k classes with the fewest train rows (ties: label
    order), where a macro average hides them: only for more than 2 classes (with 2, both rows are
    in the per-approach metrics already) and k > 0; else None."""
    n = len(label_names)
    if n <= 2 or k <= 0:
        return None
    if len(train_counts) != n:
        raise ValueError(f"{len(train_counts)} train counts for {n} labels")
    rarest = sorted(range(n), key=lambda i: (int(train_counts[i]), i))[:k]
    labels = list(range(n))
    f1 = {name: precision_recall_fscore_support(gold, pred, labels=labels, average=None, zero_division=0)[2]
          for name, pred in preds.items()}
    test_rows = np.bincount(gold, minlength=n)
    return {"k": k, "by": "train rows", "classes": [
        {"label": label_names[i], "train_rows": int(train_counts[i]), "test_rows": int(test_rows[i]),
         "f1": {name: _r(f[i]) for name, f in sorted(f1.items())}} for i in rarest]}


def collect(root: Path, params: Mapping[str, Any], split_rows: Mapping[str, int], n_labels: int,
            resamples: int, seed: int, *, rare: tuple[Sequence[int], Sequence[str], int] | None = None) -> dict[str, Any]:
    """The summary of the configured approaches and ensembles only (`entries(params)`: files of
    an approach dropped from the config are never read; `python -m textclf.report.stale` lists them).
    rare: (train rows per class, label names, k) for the rarest-classes table, or None for none."""
    specs = entries(params)
    rows, tests = {}, {}
    gold = None
    metrics = {name: _load(root / "metrics" / f"{name}.json") for name in specs}
    for name, spec in specs.items():
        m = metrics[name]
        if not m:
            stage = f"ensemble@{name}" if spec["kind"] == "ensemble" else f"predict@{name}"
            raise FileNotFoundError(f"metrics/{name}.json is missing: run `dvc repro {stage}`")
        saved = predictions.read(predictions.prediction_file(root, name, "test", params))
        if gold is None:
            gold = saved.labels
        elif not np.array_equal(saved.labels, gold):
            raise ValueError(f"{name}'s test predictions are on other rows than the others': rerun `dvc repro`")
        tests[name] = saved
        r = {"kind": m["kind"], "rows": m["rows"], "accuracy": m["accuracy"], "macro_f1": m["macro"]["f1"],
             "weighted_f1": m["weighted"]["f1"], "unparseable": m["unparseable"],
             "unparseable_rate": _r(m["unparseable"] / max(m["rows"], 1)),
             "validation_macro_f1": m["validation"]["macro"]["f1"] if "validation" in m else None}
        if spec["kind"] == "ensemble":
            r["bases"] = "+".join(spec["bases"])
        lab = labelled(name, spec, specs, split_rows, metrics)
        r.update({k: v for k, v in lab.items() if not k.startswith("_")})
        r.update(llm_usage(m))
        rows[name] = r
    if not rows:
        return {"approaches": {}, "best": None}
    weights = compare.bootstrap_weights(len(gold), resamples, seed)
    for name, saved in tests.items():
        samples = compare.weighted_macro_f1(gold, saved.pred, n_labels, weights)
        lo, hi = compare.interval(samples)
        rows[name].update(macro_f1_ci_low=_r(lo), macro_f1_ci_high=_r(hi))
    # Ties go to the earlier name in sorted order, so the choice does not depend on dict order.
    best = min(rows, key=lambda n: (-rows[n]["macro_f1"], n))
    for name, saved in tests.items():
        if name == best:
            continue
        p = compare.paired(gold, tests[best].pred, saved.pred, n_labels, weights)
        rows[name]["vs_best"] = {
            "best_minus_this_macro_f1": _r(p.delta), "ci_low": _r(p.delta_ci[0]), "ci_high": _r(p.delta_ci[1]),
            "p_bootstrap": _r(p.p_bootstrap), "p_mcnemar": _r(p.p_mcnemar),
            "significant": significant(p.p_bootstrap, p.p_mcnemar),
            "best_only_correct": p.a_only_correct, "this_only_correct": p.b_only_correct}
    out = {"approaches": dict(sorted(rows.items())), "best": best,
           "bootstrap": {"resamples": resamples, "seed": seed, "confidence": compare.CONFIDENCE},
           "significance": {"alpha": compare.ALPHA, "rule": "both the paired bootstrap and McNemar below alpha"}}
    table = rare_classes(gold, {n: t.pred for n, t in tests.items()}, *rare) if rare else None
    if table:  # absent for binary tasks: their summary.json stays as it was
        out["rare_classes"] = table
    return out


def significant(p_bootstrap: float, p_mcnemar: float, alpha: float = compare.ALPHA) -> bool:
    """The best beats another at `alpha` only when both paired tests say so: the bootstrap of
    the macro-F1 difference and McNemar's test on per-row correctness can disagree near the line."""
    return bool(p_bootstrap < alpha and p_mcnemar < alpha)


def verdict(best: str, name: str, v: Mapping[str, Any], alpha: float = compare.ALPHA) -> str:
    """One plain sentence: does the best approach beat `name` at `alpha`? v: its `vs_best`."""
    level = f"{alpha:.0%}"
    d = f"ΔF1 {v['best_minus_this_macro_f1']:+.4f} [{v['ci_low']:+.4f}, {v['ci_high']:+.4f}]"
    pb, pm = v["p_bootstrap"], v["p_mcnemar"]
    if v["best_minus_this_macro_f1"] <= 0:
        return f"{best} ties {name} on test macro-F1 ({d}): neither is better."
    if significant(pb, pm, alpha):
        return f"{best} beats {name} significantly at {level} ({d}; paired bootstrap {_p_is(pb)}, McNemar {_p_is(pm)})."
    if pb < alpha or pm < alpha:
        yes, no = (("paired bootstrap", pb), ("McNemar", pm)) if pb < alpha else (("McNemar", pm), ("paired bootstrap", pb))
        return (f"{best} is not significantly better than {name} at {level}: {yes[0]} says it is ({_p_is(yes[1])}), "
                f"{no[0]} does not ({_p_is(no[1])}) ({d}).")
    return (f"{best} is not significantly better than {name} at {level} ({d}; paired bootstrap {_p_is(pb)}, "
            f"McNemar {_p_is(pm)}).")


def verdicts(summary: Mapping[str, Any]) -> list[str]:
    """The best approach against every other, in the table's order (highest macro-F1 first)."""
    rows, best = summary["approaches"], summary.get("best")
    order = sorted(rows.items(), key=lambda kv: (-kv[1]["macro_f1"], kv[0]))
    return [verdict(best, name, r["vs_best"]) for name, r in order if name != best and "vs_best" in r]


# ---------------------------------------------------------------- timings (Markdown only)

def timings(root: Path, name: str) -> dict[str, Any]:
    t = root / "metrics" / "timings"
    return {**_load(t / f"fit_{name}.json"), **_load(t / f"predict_{name}.json")}


def cost_columns(root: Path, specs: Mapping[str, Mapping[str, Any]],
                 rows: Mapping[str, Mapping[str, Any]]) -> Callable[[str], tuple[float | None, float | None]]:
    """(training seconds, test seconds per 1,000 texts) per name. Both include the shared
    embedding stage for approaches that read data/embeddings (counted once per ensemble):
    training the embedding of the labelled splits it learns from, inference the test
    embedding rate. An ensemble's include its bases'."""
    embed = _load(root / "metrics" / "timings" / "embed.json")

    def embed_cost(names: Sequence[str], fit_splits: Sequence[str]) -> tuple[float, float]:
        if not embed or not any(specs[n].get("input") == str(EMBEDDINGS) for n in names):
            return 0.0, 0.0
        train = sum(embed.get(s, {}).get("seconds", 0.0) for s in fit_splits)
        t = embed.get("test", {})
        return train, (1000 / t["texts_per_second"] if t.get("texts_per_second") else 0.0)

    def own(name: str) -> tuple[float | None, float | None]:
        t = timings(root, name)
        return t.get("fit_seconds"), t.get("test_seconds_per_1000")

    def cost(name: str) -> tuple[float | None, float | None]:
        spec = specs[name]
        names = [*spec["bases"], name] if spec["kind"] == "ensemble" else [name]
        parts = [own(n) for n in names]
        if any(v is None for p in parts for v in p):
            return None, None
        e_train, e_test = embed_cost(names, str(rows[name]["labelled_splits"]).split("+"))
        return sum(p[0] for p in parts) + e_train, sum(p[1] for p in parts) + e_test

    return cost


def _fmt(x: Any, spec: str = ".4f") -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return format(x, spec) if isinstance(x, (int, float)) and not isinstance(x, bool) else str(x)


def _p(p: float) -> str:
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def _p_is(p: float) -> str:
    return "p<0.001" if p < 0.001 else f"p={p:.3f}"


def markdown(summary: Mapping[str, Any], root: Path, params: Mapping[str, Any]) -> str:
    specs = entries(params)
    rows = summary["approaches"]
    cost = cost_columns(root, specs, rows)
    llm = any(k.startswith("llm_") for r in rows.values() for k in r)
    b = summary.get("bootstrap", {})
    lines = [f"Dataset `{params['data']['name']}`, embedder `{params['embedder']['name']}`; "
             f"test split, {next(iter(rows.values()))['rows'] if rows else 0} rows. "
             f"Macro-F1 with a {b.get('confidence', 0.95):.0%} bootstrap interval ({b.get('resamples')} resamples "
             f"of the test rows, seed {b.get('seed')}); *vs best*: paired bootstrap difference and p-values "
             f"(paired bootstrap, exact McNemar) against **{summary['best']}** on the same rows.", "",
             "| approach | kind | macro-F1 [95% CI] | accuracy | labelled rows | vs best: ΔF1 [95% CI] | p (boot / McNemar) "
             "| unparseable | train s | s / 1k texts |" + (" LLM tokens | requests (this run) | est. cost $ |" if llm else ""),
             "|---|---|---|---|---|---|---|---|---|---|" + ("---|---|---|" if llm else "")]
    for name, r in sorted(rows.items(), key=lambda kv: (-kv[1]["macro_f1"], kv[0])):
        train_s, per_1k = cost(name)
        v = r.get("vs_best")
        versus = ("(best)", "") if v is None else (
            f"{-v['best_minus_this_macro_f1']:+.4f} [{-v['ci_high']:+.4f}, {-v['ci_low']:+.4f}]",
            f"{_p(v['p_bootstrap'])} / {_p(v['p_mcnemar'])}")
        lab = "unknown" if r["labelled_rows"] is None else f"{r['labelled_rows']:,} ({r['labelled_splits']})"
        line = (f"| {name} | {r['kind']} | {r['macro_f1']:.4f} [{r['macro_f1_ci_low']:.4f}, {r['macro_f1_ci_high']:.4f}] "
                f"| {r['accuracy']:.4f} | {lab} | {versus[0]} | {versus[1]} | {r['unparseable_rate']:.1%} "
                f"| {_fmt(train_s, '.1f')} | {_fmt(per_1k, '.2f')} |")
        if llm:
            tokens = [r[k] for k in ("llm_prompt_tokens", "llm_completion_tokens") if k in r]
            requests = r.get("llm_requests", ((timings(root, name).get("details") or {}).get("test") or {}).get("requests"))
            cost_usd = r.get("llm_estimated_cost_usd", r.get("llm_cost_usd"))
            line += f" {_fmt(sum(tokens) if tokens else None, ',d')} | {_fmt(requests, ',d')} | {_fmt(cost_usd, '.4f')} |"
        lines.append(line)
    lines += ["", "Timings (train s, s / 1k texts) are from metrics/timings/ of this run and include the shared "
              "embedding stage for approaches on data/embeddings; an ensemble's include its bases'. "
              "ΔF1 is this approach minus the best."]
    said = verdicts(summary)
    if said:
        lines += ["", f"Is **{summary['best']}** significantly better than the others? Significant at "
                  f"{compare.ALPHA:.0%} means both paired tests agree (paired bootstrap of the macro-F1 difference, "
                  "exact McNemar on per-row correctness); ΔF1 is the best minus the other, with its 95% interval.", ""]
        lines += [f"- {line}" for line in said]
    rare = summary.get("rare_classes")
    if rare:
        names = [n for n, _ in sorted(rows.items(), key=lambda kv: (-kv[1]["macro_f1"], kv[0]))]
        lines += ["", f"Per-class F1 on test of the {rare['k']} classes with the fewest train rows "
                  "(a macro average over many classes hides them):", "",
                  "| class | train rows | test rows | " + " | ".join(names) + " |",
                  "|---|---|---|" + "---|" * len(names)]
        for c in rare["classes"]:
            lines.append(f"| {c['label']} | {c['train_rows']:,} | {c['test_rows']:,} | "
                         + " | ".join(f"{c['f1'][n]:.4f}" for n in names) + " |")
    return "\n".join(lines) + "\n"


def model_cards(summary: Mapping[str, Any], root: Path, params: Mapping[str, Any]) -> dict[str, str]:
    """A short model card per approach and ensemble (reports/cards/<name>.md): data, settings, test
    macro-F1 with its interval, labelled rows used, inference cost per 1,000 texts, how to use it."""
    specs = entries(params)
    rows = summary["approaches"]
    cost = cost_columns(root, specs, rows)
    data = params["data"]
    cards = {}
    for name, r in sorted(rows.items()):
        spec = specs[name]
        if spec["kind"] == "ensemble":
            settings_key, settings = f"ensembles.{name}", spec
        else:
            settings_key = spec["params"]
            settings = params
            for part in settings_key.split("."):
                settings = settings[part]
        train_s, per_1k = cost(name)
        lab = "unknown" if r["labelled_rows"] is None else f"{r['labelled_rows']:,} ({r['labelled_splits']})"
        embeds = spec.get("input") == str(EMBEDDINGS) or (spec["kind"] == "ensemble" and any(
            specs[b].get("input") == str(EMBEDDINGS) for b in spec["bases"]))
        lines = [f"# Model card: `{name}` ({spec['kind']})", "",
                 f"- **Data**: `{data['name']}` ({data.get('hub_id') or data.get('local_dir')}), labels "
                 f"{', '.join(f'`{n}`' for n in data.get('label_names') or [])}; test split, {r['rows']:,} rows.",
                 f"- **Test macro-F1**: {r['macro_f1']:.4f} [{r['macro_f1_ci_low']:.4f}, {r['macro_f1_ci_high']:.4f}] "
                 f"(95% bootstrap interval); accuracy {r['accuracy']:.4f}; unparseable {r['unparseable_rate']:.1%}.",
                 f"- **Labelled rows used**: {lab}.",
                 f"- **Inference cost**: {_fmt(per_1k, '.2f')} s per 1,000 texts on this run's machine "
                 f"(metrics/timings/{', embedding included' if embeds else ''}); training {_fmt(train_s, '.1f')} s.",
                 *([f"- **Embedder**: `{params['embedder']['name']}` (backend `{params['embedder'].get('backend')}`)"]
                   if embeds else []),
                 f"- **Model**: `models/{name}/` (DVC artifact); metrics `metrics/{name}.json`.", "",
                 f"## Settings (`{settings_key}` in params.yaml)", "", "```yaml",
                 yaml.safe_dump(settings, sort_keys=True).rstrip(), "```", "",
                 "## Use it", "", "```bash", f'textclf predict --approach {name} "a witty, moving film"', "```", "",
                 "```python", "import textclf", f'textclf.load("{name}").predict(["a witty, moving film"])', "```", ""]
        cards[name] = "\n".join(lines)
    return cards
