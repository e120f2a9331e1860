"""reports/cards/<name>.md: a short model card per approach and ensemble (data, settings as
written in params.yaml, test macro-F1 with its interval, labelled rows used, cost, how to use it)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml

from textclf.core.context import MODELS, Context, metrics_path
from textclf.core.settings import Approach
from textclf.report.collect import entries
from textclf.report.costs import cost_columns, reads_embeddings
from textclf.report.markdown import fmt


def settings_record(ctx: Context, name: str, spec: Any) -> tuple[str, dict[str, Any]]:
    """(its key in params.yaml, its settings as the user wrote them): raw, not typed."""
    if isinstance(spec, Approach):
        return spec.params, ctx.group(name)
    return f"ensembles.{name}", {**ctx.params["ensembles"][name], "kind": "ensemble"}


def card(ctx: Context, name: str, r: Mapping[str, Any], specs: Mapping[str, Any], cost: Any) -> str:
    spec = specs[name]
    kind = spec.kind if isinstance(spec, Approach) else "ensemble"
    settings_key, settings = settings_record(ctx, name, spec)
    data, embedder = ctx.settings.data, ctx.settings.embedder
    train_s, per_1k = cost(name)
    lab = "unknown" if r["labelled_rows"] is None else f"{r['labelled_rows']:,} ({r['labelled_splits']})"
    embeds = reads_embeddings(spec) or (kind == "ensemble" and any(reads_embeddings(specs[b]) for b in spec.bases))
    lines = [f"# Model card: `{name}` ({kind})", "",
             f"- **Data**: `{data.name}` ({data.hub_id or data.local_dir}), labels "
             f"{', '.join(f'`{n}`' for n in data.label_names or [])}; test split, {r['rows']:,} rows.",
             f"- **Test macro-F1**: {r['macro_f1']:.4f} [{r['macro_f1_ci_low']:.4f}, {r['macro_f1_ci_high']:.4f}] "
             f"(95% bootstrap interval); accuracy {r['accuracy']:.4f}; unparseable {r['unparseable_rate']:.1%}.",
             f"- **Labelled rows used**: {lab}.",
             f"- **Inference cost**: {fmt(per_1k, '.2f')} s per 1,000 texts on this run's machine "
             f"(metrics/timings/{', embedding included' if embeds else ''}); training {fmt(train_s, '.1f')} s.",
             *([f"- **Embedder**: `{embedder.name}` (backend `{embedder.backend.value}`)"] if embeds else []),
             f"- **Model**: `{MODELS / name}/` (DVC artifact); metrics `{metrics_path(name)}`.", "",
             f"## Settings (`{settings_key}` in params.yaml)", "", "```yaml",
             yaml.safe_dump(settings, sort_keys=True).rstrip(), "```", "",
             "## Use it", "", "```bash", f'textclf predict --approach {name} "a witty, moving film"', "```", "",
             "```python", "import textclf", f'textclf.load("{name}").predict(["a witty, moving film"])', "```", ""]
    return "\n".join(lines)


def model_cards(summary: Mapping[str, Any], ctx: Context) -> dict[str, str]:
    """A card per approach and ensemble in the summary (reports/cards/<name>.md)."""
    specs = entries(ctx)
    rows = summary["approaches"]
    cost = cost_columns(ctx.root, specs, rows)
    return {name: card(ctx, name, r, specs, cost) for name, r in sorted(rows.items())}
