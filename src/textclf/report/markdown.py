"""reports/summary.md: the comparison as a Markdown table with this run's costs, the
significance verdicts in words, how much approaches' errors overlap and the rarest classes' F1,
from metrics/summary.json's figures (report/collect.py) and metrics/timings/ (report/costs.py)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from textclf.core.context import Context
from textclf.evaluation import compare
from textclf.report.collect import entries, significant
from textclf.report.costs import cost_columns, timings


def fmt(x: Any, spec: str = ".4f") -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return format(x, spec) if isinstance(x, (int, float)) and not isinstance(x, bool) else str(x)


def _p(p: float) -> str:
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def _p_is(p: float) -> str:
    return "p<0.001" if p < 0.001 else f"p={p:.3f}"


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
    best = summary.get("best")
    return [verdict(best, name, r["vs_best"]) for name, r in in_order(summary["approaches"])
            if name != best and "vs_best" in r]


# ---------------------------------------------------------------- the table

def in_order(rows: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """The table's order: highest test macro-F1 first, ties by name."""
    return sorted(rows.items(), key=lambda kv: (-kv[1]["macro_f1"], kv[0]))


def _head(summary: Mapping[str, Any], ctx: Context, llm: bool) -> list[str]:
    rows = summary["approaches"]
    b = summary.get("bootstrap", {})
    return [f"Dataset `{ctx.settings.data.name}`, embedder `{ctx.settings.embedder.name}`; "
            f"test split, {next(iter(rows.values()))['rows'] if rows else 0} rows. "
            f"Macro-F1 with a {b.get('confidence', 0.95):.0%} bootstrap interval ({b.get('resamples')} resamples "
            f"of the test rows, seed {b.get('seed')}); *vs best*: paired bootstrap difference and p-values "
            f"(paired bootstrap, exact McNemar) against **{summary['best']}** on the same rows.", "",
            "| approach | kind | macro-F1 [95% CI] | accuracy | labelled rows | vs best: ΔF1 [95% CI] | p (boot / McNemar) "
            "| unparseable | train s | s / 1k texts |" + (" LLM tokens | requests (this run) | est. cost $ |" if llm else ""),
            "|---|---|---|---|---|---|---|---|---|---|" + ("---|---|---|" if llm else "")]


def _row(ctx: Context, name: str, r: Mapping[str, Any], cost: Callable[[str], tuple], llm: bool) -> str:
    train_s, per_1k = cost(name)
    v = r.get("vs_best")
    versus = ("(best)", "") if v is None else (
        f"{-v['best_minus_this_macro_f1']:+.4f} [{-v['ci_high']:+.4f}, {-v['ci_low']:+.4f}]",
        f"{_p(v['p_bootstrap'])} / {_p(v['p_mcnemar'])}")
    lab = "unknown" if r["labelled_rows"] is None else f"{r['labelled_rows']:,} ({r['labelled_splits']})"
    line = (f"| {name} | {r['kind']} | {r['macro_f1']:.4f} [{r['macro_f1_ci_low']:.4f}, {r['macro_f1_ci_high']:.4f}] "
            f"| {r['accuracy']:.4f} | {lab} | {versus[0]} | {versus[1]} | {r['unparseable_rate']:.1%} "
            f"| {fmt(train_s, '.1f')} | {fmt(per_1k, '.2f')} |")
    if llm:
        tokens = [r[k] for k in ("llm_prompt_tokens", "llm_completion_tokens") if k in r]
        timing_details = timings(ctx.root, name).get("details") or {}
        requests = r.get("llm_requests", (timing_details.get("test") or {}).get("requests"))
        cost_usd = r.get("llm_estimated_cost_usd", r.get("llm_cost_usd"))
        line += f" {fmt(sum(tokens) if tokens else None, ',d')} | {fmt(requests, ',d')} | {fmt(cost_usd, '.4f')} |"
    return line


def _verdict_lines(summary: Mapping[str, Any]) -> list[str]:
    said = verdicts(summary)
    if not said:
        return []
    return ["", f"Is **{summary['best']}** significantly better than the others? Significant at "
            f"{compare.ALPHA:.0%} means both paired tests agree (paired bootstrap of the macro-F1 difference, "
            "exact McNemar on per-row correctness); ΔF1 is the best minus the other, with its 95% interval.", "",
            *[f"- {line}" for line in said]]


def _rare_lines(summary: Mapping[str, Any]) -> list[str]:
    rare = summary.get("rare_classes")
    if not rare:
        return []
    names = [n for n, _ in in_order(summary["approaches"])]
    lines = ["", f"Per-class F1 on test of the {rare['k']} classes with the fewest train rows "
             "(a macro average over many classes hides them):", "",
             "| class | train rows | test rows | " + " | ".join(names) + " |",
             "|---|---|---|" + "---|" * len(names)]
    for c in rare["classes"]:
        lines.append(f"| {c['label']} | {c['train_rows']:,} | {c['test_rows']:,} | "
                     + " | ".join(f"{c['f1'][n]:.4f}" for n in names) + " |")
    return lines


def baseline_lines(summary: Mapping[str, Any]) -> list[str]:
    """The trivial baselines, and in words which approaches do not beat the stronger one."""
    base = summary.get("baselines")
    if not base:
        return []
    scored = [n for n in base if isinstance(base[n], Mapping)]
    figures = "; ".join(f"{n} {fmt(base[n]['macro_f1'])} [{fmt(base[n]['macro_f1_ci_low'])}, "
                        f"{fmt(base[n]['macro_f1_ci_high'])}] (accuracy {fmt(base[n]['accuracy'])})" for n in scored)
    lines = ["", f"Trivial baselines (scikit-learn DummyClassifier fitted on the train labels, no text): {figures}. "
             f"Each approach is tested against the stronger, **{base['compared_with']}** (both paired tests at "
             f"{compare.ALPHA:.0%}).", ""]
    weak = base["not_significantly_better"]
    if not weak:
        lines.append(f"- Every approach is significantly better than both baselines (tested against the stronger, "
                     f"{base['compared_with']}).")
    for name in weak:
        v = summary["approaches"][name]["vs_baseline"]
        lines.append(f"- **{name} is not significantly better than the {base['compared_with']} baseline** "
                     f"(ΔF1 {v['this_minus_baseline_macro_f1']:+.4f} [{v['ci_low']:+.4f}, {v['ci_high']:+.4f}]; "
                     f"paired bootstrap p {_p(v['p_bootstrap'])}, McNemar p {_p(v['p_mcnemar'])}).")
    return lines


def overlap_lines(summary: Mapping[str, Any]) -> list[str]:
    """How alike the approaches err (summary["error_overlap"]) as one matrix in the table's order:
    correctness correlation / share of test rows both get wrong. None for fewer than 2 approaches."""
    ov = summary.get("error_overlap")
    names = [n for n, _ in in_order(summary["approaches"]) if ov and n in ov["both_wrong"]]
    if len(names) < 2:
        return []
    r, both = ov["correctness_correlation"], ov["both_wrong"]
    lines = ["", "Error overlap on test: each cell is the correlation (phi) of two approaches' per-row correctness "
             "(1 right, 0 wrong) / the share of test rows both get wrong; the diagonal gives the approach's own "
             "error rate. An ensemble only helps where its members err on different rows: a high correlation means "
             "a stack of them has little to gain.", "",
             "| | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for a in names:
        cells = [f"err {both[a][a]:.1%}" if a == b else f"{fmt(r[a][b], '.3f')} / {both[a][b]:.1%}" for b in names]
        lines.append(f"| {a} | " + " | ".join(cells) + " |")
    undefined = [f"{a} ({'right' if both[a][a] == 0 else 'wrong'} on every test row)" for a in names if r[a][a] is None]
    if undefined:
        lines += ["", f"Correlation undefined (–) for {', '.join(undefined)}: a correctness that never varies "
                  "has no correlation with any other (null in metrics/summary.json)."]
    return lines


def markdown(summary: Mapping[str, Any], ctx: Context) -> str:
    rows = summary["approaches"]
    cost = cost_columns(ctx.root, entries(ctx), rows)
    llm = any(k.startswith("llm_") for r in rows.values() for k in r)
    lines = _head(summary, ctx, llm) + [_row(ctx, name, r, cost, llm) for name, r in in_order(rows)]
    lines += ["", "Timings (train s, s / 1k texts) are from metrics/timings/ of this run and include the shared "
              "embedding stage for approaches on data/embeddings; an ensemble's include its bases'. "
              "ΔF1 is this approach minus the best."]
    return "\n".join(lines + _verdict_lines(summary) + baseline_lines(summary) + overlap_lines(summary)
                     + _rare_lines(summary)) + "\n"
