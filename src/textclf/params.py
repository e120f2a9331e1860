"""Compose conf/ into params.yaml with Hydra, exactly as `dvc exp run -S ...` does
(it calls the same DVC function), for a plain `dvc repro`:

    python -m textclf.params                 # the default profile
    python -m textclf.params profile=ci embedder=minilm classifier.C=0.5
"""

from __future__ import annotations

import sys
from dataclasses import fields
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]  # the repository: conf/ and src/ side by side


def compose(root: Path, overrides: list[str], output: Path | None = None) -> Path:
    from dvc.utils.hydra import compose_and_dump

    output = output or root / "params.yaml"
    compose_and_dump(output, str((root / "conf").resolve()), None, "config", str(root / ".dvc" / "hydra_plugins"), overrides)
    return output


def conf_groups(root: Path) -> dict[str, str]:
    """{settings key: kind} of every approach in conf/approach/ that names a group of its own."""
    import yaml

    from textclf.core.settings import approach_groups

    entries = {f.stem: yaml.safe_load(f.read_text()) for f in sorted((root / "conf/approach").glob("*.yaml"))}
    return {key: kind for key, kind in approach_groups({"approaches": entries}).values()}


def validate(params: Any, source: str = "params.yaml", root: Path = ROOT) -> None:
    """Raise ParamsError naming the first key of `params` (a dict) that breaks the schema: the shared
    groups (core/settings.py), every other top-level key as the group of an approach (configured, or
    in conf/approach/), each against its kind's settings class. Here, not in core/settings.py: every
    stage depends on that module, and none should depend on every approach's settings."""
    import difflib

    from textclf.approaches.base import settings_class
    from textclf.core.settings import Params, ParamsError, approach_groups, lookup, shared, typed

    shared(params, source)
    configured = {key: kind for key, kind in approach_groups(params).values()}
    groups = {**{k: v for k, v in conf_groups(root).items() if k.split(".")[0] in params}, **configured}
    known = [f.name for f in fields(Params)] + sorted({k.split(".")[0] for k in groups})
    for top in params:
        if top not in known:
            close = difflib.get_close_matches(top, known, n=1)
            raise ParamsError(f"{source}: unknown key {top!r}.{f' Did you mean {close[0]!r}?' if close else ''} "
                              f"Known keys there: {known}. Fix the spelling in conf/ or in the -S override.")
    for key, kind in groups.items():
        schema = settings_class(kind)
        if schema is not None:  # a custom kind without a settings module: its own business
            try:
                node = lookup(params, key)
            except KeyError:
                raise ParamsError(f"{source}: an approach names {key!r} as its settings, which is not there") from None
            typed(schema, node, source, key)


def check(params: dict) -> None:
    """What dvc.yaml needs of the params before DVC can even render it."""
    from textclf.core.settings import shared

    if not shared(params).data.local_dir:
        raise SystemExit("data.local_dir is null: the data stage depends on that folder (dvc.yaml), so it must "
                         "name one. For data read only from the hub, point it at an empty folder in the repo.")


def compose_checked(root: Path, overrides: list[str]) -> Path:
    """compose, then validate and check; params.yaml is replaced only when both
    pass, so a bad override leaves the previous params.yaml as it was."""
    import yaml

    out = root / "params.yaml"
    tmp = compose(root, overrides, out.with_name(".params.tmp.yaml"))  # the suffix picks DVC's dumper
    try:
        params = yaml.safe_load(tmp.read_text())
        validate(params, f"conf/ composed with {overrides or 'no overrides'}", root)
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
