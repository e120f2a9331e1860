"""Compose conf/ into params.yaml with Hydra, exactly as `dvc exp run -S ...` does
(it calls the same DVC function), for a plain `dvc repro`:

    python -m textclf.params                 # the default profile
    python -m textclf.params profile=ci embedder=minilm classifier.C=0.5
"""

from __future__ import annotations

import sys
from pathlib import Path


def compose(root: Path, overrides: list[str], output: Path | None = None) -> Path:
    from dvc.utils.hydra import compose_and_dump

    output = output or root / "params.yaml"
    compose_and_dump(output, str((root / "conf").resolve()), None, "config", str(root / ".dvc" / "hydra_plugins"), overrides)
    return output


def check(params: dict) -> None:
    """What dvc.yaml needs of the params before DVC can even render it."""
    if not (params.get("data") or {}).get("local_dir"):
        raise SystemExit("data.local_dir is null: the data stage depends on that folder (dvc.yaml), so it must "
                         "name one. For data read only from the hub, point it at an empty folder in the repo.")


def main() -> None:
    import yaml

    from .context import link_from_params

    root = Path.cwd()
    out = compose(root, sys.argv[1:])
    check(yaml.safe_load(out.read_text()))
    link_from_params(root)  # queued experiments resolve ../shared like the workspace
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
