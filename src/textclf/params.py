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


def compose_checked(root: Path, overrides: list[str]) -> Path:
    """compose, then validate (schema.py) and check; params.yaml is replaced only when both
    pass, so a bad override leaves the previous params.yaml as it was."""
    import yaml

    from textclf.core.settings import validate

    out = root / "params.yaml"
    tmp = compose(root, overrides, out.with_name(".params.tmp.yaml"))  # the suffix picks DVC's dumper
    try:
        params = yaml.safe_load(tmp.read_text())
        validate(params, f"conf/ composed with {overrides or 'no overrides'}")
        check(params)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(out)
    return out


def main() -> None:
    from hydra.errors import HydraException

    from textclf.core.context import link_from_params
    from textclf.core.settings import ParamsError

    root = Path.cwd()
    try:
        out = compose_checked(root, sys.argv[1:])
    except (ParamsError, HydraException) as exc:  # Hydra's own: an override of a key conf/ lacks
        raise SystemExit(f"params.yaml not written: {exc}") from None
    link_from_params(root)  # queued experiments resolve ../shared like the workspace
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
