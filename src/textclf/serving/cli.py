"""`textclf predict`: label new texts with any approach the pipeline ran (textclf.serving.inference).

    textclf predict --approach stack "a witty, moving film" "a dull mess"
    textclf predict --approach embed_lr --input reviews.csv --text-column review --output preds.jsonl
    cat reviews.txt | textclf predict --approach llm --input -      # stdin: one text per line

Input: texts as arguments, or a JSONL/JSON/CSV/Parquet file (read as the data stage reads its
splits), or stdin. Output (stdout, or --output by its extension: .jsonl, .csv, .parquet): one row
per input row, in order: its 1-based input row, label, label_name and one score per label. Empty
texts follow data.on_empty_text as in the data stage (or --on-empty-text): `error` stops naming
the row, `drop` keeps the row in the output unlabelled, with `skipped`, and counts it on stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from textclf.core.context import load_params
from textclf.core.settings import Policy, shared
from textclf.data.load import read_file
from textclf.data.validate import DataError, is_empty_text
from textclf.serving.inference import InferenceError, find_root, load

OUTPUT_FORMATS = (".jsonl", ".csv", ".parquet")
PROGRESS_FROM = 100  # texts: a progress bar from this many on


def read_texts(args: argparse.Namespace, text_column: str) -> tuple[list[Any], str]:
    """The raw text cells (unchecked) and where they came from, for messages."""
    if args.input is None:
        if not args.texts:
            raise DataError("nothing to classify: give texts as arguments, or --input FILE (or - for stdin)")
        return list(args.texts), "arguments"
    if args.texts:
        raise DataError("give texts as arguments or --input, not both")
    if args.input == "-":
        return [line.rstrip("\r\n") for line in sys.stdin], "stdin"
    path = Path(args.input)
    if not path.is_file():
        raise DataError(f"--input {path}: no such file")
    ds = read_file(path)
    if text_column not in ds.column_names:
        raise DataError(f"{path}: no column {text_column!r}; found {ds.column_names}. "
                        f"Name the text column with --text-column")
    return list(ds[text_column]), str(path)


def output_rows(raw: Sequence[Any], keep: list[int], result, skipped_reason: str) -> list[dict[str, Any]]:
    """Every input row, in order: classified ones with label and scores, skipped ones marked."""
    classified = dict(zip(keep, result.rows()))
    out = []
    for i in range(len(raw)):
        row = {"row": i + 1}
        row.update(classified.get(i) or {"label": None, "label_name": None, "skipped": skipped_reason})
        out.append(row)
    return out


def write_rows(rows: list[dict[str, Any]], label_names: list[str], output: str | None) -> None:
    if output is None or Path(output).suffix == ".jsonl":
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
        if output is None:
            sys.stdout.write(text)
        else:
            Path(output).write_text(text, encoding="utf-8")
        return
    import pandas as pd

    flat = [{"row": r["row"], "label": r["label"], "label_name": r["label_name"],
             **{f"score_{n}": (r.get("scores") or {}).get(n) for n in label_names},
             "skipped": r.get("skipped")} for r in rows]
    frame = pd.DataFrame(flat).astype({"label": "Int64"})
    if Path(output).suffix == ".csv":
        frame.to_csv(output, index=False)
    else:
        frame.to_parquet(output, index=False)


def predict_command(args: argparse.Namespace) -> int:
    if args.output and Path(args.output).suffix not in OUTPUT_FORMATS:
        raise DataError(f"--output {args.output}: use one of {list(OUTPUT_FORMATS)}")
    root = find_root(Path(args.repo) if args.repo else None)
    data_cfg = shared(load_params(root)).data
    policy = Policy(args.on_empty_text) if args.on_empty_text else data_cfg.on_empty_text
    raw, origin = read_texts(args, args.text_column or data_cfg.text_column)
    bad = [i for i, t in enumerate(raw) if is_empty_text(t)]
    if bad and policy is Policy.error:
        raise DataError(f"{origin}: row {bad[0] + 1}: empty or whitespace-only text {raw[bad[0]]!r} "
                        f"({len(bad)} such rows). Fix the input or pass --on-empty-text drop to skip them "
                        "(kept in the output, unlabelled, and counted)")
    keep = [i for i in range(len(raw)) if i not in set(bad)]
    clf = load(args.approach, root)
    texts = [raw[i] for i in keep]
    progress = not args.no_progress and len(texts) >= PROGRESS_FROM
    result = clf.predict(texts, progress=progress) if texts else None
    rows = output_rows(raw, keep, result, "empty_text") if result else output_rows(raw, [], None, "empty_text")
    write_rows(rows, clf.label_names, args.output)
    unlabelled = sum(1 for r in rows if r["label"] is None and "skipped" not in r)
    print(f"textclf predict: {len(texts)} of {len(raw)} rows classified with {args.approach} ({origin}); "
          f"{len(bad)} skipped (empty text){f', rows {[i + 1 for i in bad[:10]]}' if bad else ''}; "
          f"{unlabelled} unparseable" + (f"; written to {args.output}" if args.output else ""), file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="textclf", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("predict", help="label texts with an approach the pipeline ran")
    p.add_argument("texts", nargs="*", help="texts to classify (or use --input)")
    p.add_argument("--approach", "-a", required=True, help="an approach or ensemble of the run, e.g. stack, embed_lr")
    p.add_argument("--input", "-i", help="a .jsonl/.json/.csv/.parquet file, or - for stdin (one text per line)")
    p.add_argument("--text-column", help="the input file's text column (default: params.yaml's data.text_column)")
    p.add_argument("--output", "-o", help="write .jsonl, .csv or .parquet here (default: JSONL on stdout)")
    p.add_argument("--repo", help="the repository whose run to use (default: the one around the current folder)")
    p.add_argument("--on-empty-text", choices=[m.value for m in Policy],
                   help="empty texts: stop, or skip and count them (default: params.yaml's data.on_empty_text)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    try:
        return predict_command(args)
    except (InferenceError, DataError, FileNotFoundError) as exc:
        print(f"textclf predict: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
