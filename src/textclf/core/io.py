"""Writing results: atomic text/JSON files and the one rounding every written figure uses, so the
same predictions give the same bytes. Only I/O lives here: every stage that writes JSON depends on
this file, and on nothing about how a metric is defined."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

DIGITS = 6  # decimals of every score and metric written to disk


def rounded(x: float) -> float:
    return round(float(x), DIGITS)


def write_text_atomic(path: Path, text: str) -> None:
    """Write through a temp file in the same folder, then rename: an interrupted or disk-full
    run leaves the old file or the new one, never a truncated one that git would track."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def dump_json(obj: Any, path: Path) -> None:
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")
