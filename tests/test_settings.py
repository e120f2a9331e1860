"""One source of truth for every setting (issue 19): conf/ and the schema agree on every
default, code reads no setting with a fallback of its own, and settings are read typed."""

from __future__ import annotations

import ast
import dataclasses
import importlib
import importlib.util
from enum import Enum
from pathlib import Path
from typing import Any

import pytest
import yaml
from omegaconf import OmegaConf

from helpers import REPO
from imports import closure_files
from textclf.approaches.base import KINDS, settings_class
from textclf.core import settings as schema
from textclf.core.context import Context

SRC = REPO / "src/textclf"


@pytest.fixture(scope="module")
def composed(tmp_path_factory) -> dict[str, Any]:
    """conf/ composed with no overrides, exactly as `python -m textclf.params` composes it."""
    from textclf.params import compose

    out = compose(REPO, [], tmp_path_factory.mktemp("conf") / "params.yaml")
    return yaml.safe_load(out.read_text())


def schema_defaults(cls: type) -> dict[str, Any]:
    """The defaults a settings dataclass gives each key (nested groups as dicts, enums as their
    values, MISSING as '???')."""
    node = OmegaConf.to_container(OmegaConf.structured(cls), throw_on_missing=False)
    return _values(node)


def _values(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _values(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_values(v) for v in node]
    return node.value if isinstance(node, Enum) else node


def disagreements(defaults: dict[str, Any], conf: Any, prefix: str) -> list[str]:
    """Keys whose schema default differs from conf/'s value. The rule: a key is compared when the
    schema gives it a default and conf/ sets it. Not compared: a MISSING default (conf/ holds the
    value), a None default (optional: unset unless conf/ sets it, e.g. a model's max_seq_length),
    and the entries of a Dict field (`approaches.<name>`, `ensembles.<name>`: named instances the
    user writes, not defaults; the field's own default is an empty dict, so there is nothing to walk)."""
    out = []
    for key, default in defaults.items():
        if not isinstance(conf, dict) or key not in conf or default in ("???", None):
            continue
        if isinstance(default, dict):
            out += disagreements(default, conf[key], f"{prefix}{key}.")
        elif default != conf[key]:
            out.append(f"{prefix}{key}: schema {default!r}, conf/ {conf[key]!r}")
    return out


def approach_groups_in_conf(composed: dict[str, Any]) -> dict[str, str]:
    """{settings key: kind} for every approach in conf/approach/ with a group of its own (t5 is not in
    the default composition, its `text2text` group is)."""
    groups = {}
    for f in sorted((REPO / "conf/approach").glob("*.yaml")):
        entry = yaml.safe_load(f.read_text())
        params = {"approaches": {f.stem: entry}}
        groups.update({key: kind for key, kind in schema.approach_groups(params).values()})
    return {key: kind for key, kind in groups.items() if key.split(".")[0] in composed}


def group_defaults(composed: dict[str, Any], key: str) -> Any:
    """What conf/ gives a group by default: its base file when it has one (conf/data/defaults.yaml,
    conf/llm/common.yaml: what every option is merged over; an option's own values, such as the
    default dataset's labels or qwen's logprob mode, are choices, not defaults), else the default
    composition's values."""
    for name in ("defaults.yaml", "common.yaml"):
        base = REPO / "conf" / key / name
        if base.is_file():
            return yaml.safe_load(base.read_text())
    return schema.lookup(composed, key)


def test_every_shared_default_agrees_between_conf_and_the_schema(composed):
    """The shared groups against the default composition, each group with a base file against it."""
    conf = {key: group_defaults(composed, key) for key in composed}
    wrong = disagreements(schema_defaults(schema.Params), conf, "")
    assert not wrong, "conf/ and core/settings.py disagree (keep the default in one of them):\n" + "\n".join(wrong)


def test_every_approach_default_agrees_between_conf_and_its_settings_module(composed):
    wrong = []
    groups = approach_groups_in_conf(composed)
    assert {"classifier", "task_specific", "text2text", "llm"} <= set(groups), groups
    for key, kind in groups.items():
        cls = settings_class(kind)
        if cls is not None:
            wrong += disagreements(schema_defaults(cls), group_defaults(composed, key), f"{key}.")
    assert not wrong, "conf/ and an approach's settings.py disagree:\n" + "\n".join(wrong)


# ---------------------------------------------------------------- no fallbacks in code

def settings_keys() -> set[str]:
    """Every field name of every settings dataclass: the shared schema and each kind's settings module."""
    modules = [schema] + [importlib.import_module(f"{p}.settings") for p in KINDS.values()
                          if importlib.util.find_spec(f"{p}.settings")]
    return {f.name for m in modules for obj in vars(m).values()
            if isinstance(obj, type) and dataclasses.is_dataclass(obj) for f in dataclasses.fields(obj)}


# Mappings that are records, not settings, whose `.get` may carry a default. Kept short: each is
# read back from a file the pipeline or a tool wrote, where an absent key means something.
NOT_SETTINGS = {
    "lock": "dvc.lock's stage records (a stage without params has no `params`)",
    "json.loads": "a JSON document read back (a reply, metrics/*.json), not params",
    "lab": "report/collect.py: the `labelled` record of metrics/<name>.json (splits, rows)",
    "embed_timings": "report/costs.py: metrics/timings/embed.json, seconds per split (`test`: none timed)",
    "timings": "report/costs.timings: metrics/timings/fit_ and predict_<name>.json (`details` optional)",
    "timing_details": "report/markdown.py: the `details` of those timings records, per split",
}


def _receiver_root(node: ast.AST) -> str:
    """`lock` for lock[stage].get, `json.loads` for json.loads(x).get, `cfg` for cfg.get."""
    while isinstance(node, (ast.Subscript, ast.Call, ast.Attribute)):
        if isinstance(node, ast.Call) and ast.unparse(node.func) in NOT_SETTINGS:
            return ast.unparse(node.func)
        node = node.value if not isinstance(node, ast.Call) else node.func
    return node.id if isinstance(node, ast.Name) else ""


def fallback_reads(path: Path, keys: set[str]) -> list[tuple[int, str]]:
    """`X.get("<key>", <default>)` and `X.get("<key>") or ...` where <key> names a setting."""
    tree = ast.parse(path.read_text(), str(path))

    def setting_get(node: ast.AST) -> bool:
        return (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get"
                and bool(node.args) and isinstance(node.args[0], ast.Constant) and node.args[0].value in keys
                and _receiver_root(node.func.value) not in NOT_SETTINGS)

    ored = {id(n.values[0]) for n in ast.walk(tree) if isinstance(n, ast.BoolOp) and isinstance(n.op, ast.Or)}
    return [(n.lineno, ast.unparse(n)) for n in ast.walk(tree)
            if setting_get(n) and (len(n.args) > 1 or n.keywords or id(n) in ored)]


def test_code_reads_no_setting_with_a_fallback():
    """A default lives in conf/ or in the schema: code reads settings typed (ctx.settings.<group>.<key>,
    ctx.approach_settings), never `.get(key, default)`, which would hide a third default."""
    keys = settings_keys()
    assert {"patience", "timeout", "on_empty_text", "batch_size"} <= keys
    found = [f"{f.relative_to(REPO)}:{line}: {code}" for f in sorted(SRC.rglob("*.py"))
             for line, code in fallback_reads(f, keys)]
    assert not found, "settings read with a fallback default:\n" + "\n".join(found)


def test_the_scan_finds_a_fallback(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f(cfg, lock):\n    a = cfg.get('patience', 1)\n    b = cfg.get('timeout') or 60\n"
                   "    c = lock['fit'].get('params', {})\n    d = cfg.get('mode')\n    return a, b, c, d\n")
    assert [code for _, code in fallback_reads(bad, {"patience", "timeout", "params", "mode"})] == [
        "cfg.get('patience', 1)", "cfg.get('timeout')"]


# ---------------------------------------------------------------- typed access

def test_context_gives_dataclass_instances(composed, tmp_path):
    ctx = Context(tmp_path, composed)
    assert isinstance(ctx.settings, schema.Params)
    assert isinstance(ctx.settings.data, schema.Data) and isinstance(ctx.settings.data.on_empty_text, schema.Policy)
    assert isinstance(ctx.settings.approaches["embed_lr"], schema.Approach)
    assert ctx.settings.compare.seed == ctx.seed == composed["seed"]  # conf/compare: seed: ${seed}
    own = schema.approach_groups(composed)
    assert own, composed["approaches"]
    for name, (_, kind) in own.items():
        cls = settings_class(kind)
        got = ctx.approach_settings(name, cls)
        assert dataclasses.is_dataclass(got) and isinstance(got, cls), (name, type(got))


def test_no_stage_depends_on_an_approach_through_the_schema():
    """Every stage imports core/settings.py: it must import no approach code (the full check of
    every group lives in textclf.params), so editing one approach's settings reruns that approach alone."""
    assert not {f for f in closure_files(REPO, ["textclf.core.context"]) if "/approaches/" in f}
