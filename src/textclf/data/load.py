"""Loading a dataset's raw splits: from the Hugging Face hub, or from a local mirror of one file
per split (JSONL/JSON/CSV/Parquet). Errors name the file and, where the format allows, the line;
what the rows may hold is validate.py's business."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path

import datasets

from textclf.core.settings import Data, DataSource
from textclf.data.validate import DataError
from textclf.runtime.hub import hub_reachable

log = logging.getLogger(__name__)

EXTENSIONS = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet"}


def find_split_file(local_dir: Path, name: str) -> Path:
    hits = [local_dir / f"{name}{ext}" for ext in EXTENSIONS if (local_dir / f"{name}{ext}").is_file()]
    if not hits:
        raise DataError(
            f"No file for split '{name}' in {local_dir} (looked for {name}"
            f"{{{','.join(EXTENSIONS)}}}). Set data.local_dir or data.splits."
        )
    if len(hits) > 1:
        raise DataError(f"Several files for split '{name}' in {local_dir}: {[h.name for h in hits]}")
    return hits[0]


def check_utf8(path: Path) -> None:
    """Raise naming the line when a text file holds bytes that are not UTF-8
    (pyarrow's own error names neither file nor row)."""
    if EXTENSIONS[path.suffix] == "parquet":
        return
    with path.open("rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise DataError(
                    f"{path}:{lineno}: bytes that are not valid UTF-8 ({exc.reason} at byte "
                    f"{exc.start}: {raw[max(0, exc.start - 10):exc.start + 10]!r}). Re-encode the file as UTF-8."
                ) from None


def first_bad_json_line(path: Path) -> str:
    """':<line>' of the first JSON Lines record that does not parse (pyarrow names a byte
    position only), or '' when every line parses."""
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if line.strip():
                try:
                    json.loads(line)
                except json.JSONDecodeError:
                    return f":{lineno}"
    return ""


def read_file(path: Path) -> datasets.Dataset:
    """One JSONL/JSON/CSV/Parquet file as a Dataset; errors name the file (and line)."""
    if path.suffix not in EXTENSIONS:
        raise DataError(f"{path}: unknown file type {path.suffix!r}; use one of {sorted(EXTENSIONS)}")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: the file is empty")
    check_utf8(path)
    kind = EXTENSIONS[path.suffix]
    try:
        # pandas reads the cells "NA", "null", "None", "nan"... as missing: a review saying
        # "None" would become an empty text. Only an empty cell is missing.
        csv = {"keep_default_na": False, "na_values": [""]} if kind == "csv" else {}
        return datasets.load_dataset(kind, data_files=str(path), split="train", **csv)
    except Exception as exc:  # pyarrow / json errors: add the file name (and the line)
        where = first_bad_json_line(path) if kind == "json" else ""
        raise DataError(f"{path}{where}: could not be read as {kind}: {exc}") from exc


def load_local(local_dir: Path, split_files: Mapping[str, str]) -> dict[str, tuple[datasets.Dataset, str]]:
    out = {}
    for split, name in split_files.items():
        path = find_split_file(local_dir, name)
        if path.stat().st_size == 0:
            raise DataError(f"{path}: the file is empty (split '{split}'). Put its rows there or fix data.splits.")
        out[split] = (read_file(path), str(path))
    return out


def load_hub(hub_id: str, revision: str | None, split_files: Mapping[str, str]) -> dict[str, tuple[datasets.Dataset, str]]:
    return {
        split: (datasets.load_dataset(hub_id, split=name, revision=revision), f"hub:{hub_id}[{name}]")
        for split, name in split_files.items()
    }


def hub_commit(hub_id: str, revision: str | None) -> str:
    """The commit a hub revision (a branch such as main, a tag, or None) points at now. The
    data stage records it in metrics/data.json: the hub is not a file DVC can hash, so a
    moved revision shows up as a changed `source` in `dvc metrics diff` / git diff."""
    from huggingface_hub import HfApi

    return HfApi().dataset_info(hub_id, revision=revision).sha


def load_raw(cfg: Data, root: Path) -> tuple[dict[str, tuple[datasets.Dataset, str]], str]:
    """The configured splits as `datasets.Dataset`s, and which source was used."""
    split_files = {s: n for s, n in vars(cfg.splits).items() if n}
    if "train" not in split_files or "test" not in split_files:
        raise DataError("data.splits must name at least a train and a test split")
    local = (root / cfg.local_dir).resolve() if cfg.local_dir else None
    if cfg.source is DataSource.hub or (cfg.source is DataSource.auto and cfg.hub_id and hub_reachable()):
        try:
            loaded = load_hub(cfg.hub_id, cfg.hub_revision, split_files)
            return loaded, f"hub:{cfg.hub_id}@{hub_commit(cfg.hub_id, cfg.hub_revision)}"
        except Exception as exc:
            if cfg.source is DataSource.hub or not local:
                raise
            log.warning("Loading %s from the hub failed (%s); using %s", cfg.hub_id, exc, local)
    if not local:
        raise DataError("The hub is not reachable and data.local_dir is not set: set it to a local mirror.")
    if not local.is_dir():
        raise DataError(f"data.local_dir {local} does not exist (and the hub was not used).")
    return load_local(local, split_files), "local"
