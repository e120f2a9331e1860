"""Every stage depends on exactly the code it runs: the textclf modules its entry point
imports (statically, lazy imports included), and for fit@/predict@ the approach module its
kind selects, whose paths the approach declares in conf/approach/<name>.yaml (`code`).

dvc.yaml names a folder where a stage runs all of it (src/textclf/core, src/textclf/data for the
data stage, src/textclf/runtime for embed), else files. Two kinds of slack are accepted, each
listed below with its reason: package `__init__.py` files that hold only a docstring (they run
no code, so need not be declared; a test keeps them so), and OVER_DECLARED."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from helpers import REPO
from imports import closure_files
from textclf.approaches.base import KINDS, Approach, module_for

RUNTIME = {f"src/textclf/runtime/{f.name}" for f in (REPO / "src/textclf/runtime").glob("*.py")}
# Declared but not run, on purpose: {stage name prefix ("" = every stage): files}.
OVER_DECLARED = {
    # core/ is one unit (context, settings schema, JSON writing, device) that every stage loads
    # with; the only file of it a stage may not run is io.py (`models` writes no JSON of its own).
    "": {"src/textclf/core/io.py"},
    # The model runtime (resolve/hub: weights, tokens: truncation counts, engine: batch inference,
    # embed: sentence embedders) is one unit every fit@/predict@ depends on: each approach loads a
    # model or embeds texts through part of it, and the ones that use little of it (embed_lr,
    # centroid) rerun in seconds.
    "fit@": RUNTIME,
    "predict@": RUNTIME,
}


def docstring_only(path: Path) -> bool:
    body = ast.parse(path.read_text()).body
    return all(isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant) for n in body)


def runs_code(rel: str) -> bool:
    """False for a package __init__.py holding only its docstring (importing it runs nothing)."""
    return not (rel.endswith("/__init__.py") and docstring_only(REPO / rel))


@pytest.fixture(scope="module")
def stages(tmp_path_factory):
    """dvc.yaml's stages as DVC renders them, with every approach in conf/approach/ added
    (t5 is not in the default params), as {name: (cmd, [dep paths])}."""
    from dvc.repo import Repo

    tmp = tmp_path_factory.mktemp("deps")
    shutil.copy(REPO / "dvc.yaml", tmp / "dvc.yaml")
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    for f in sorted((REPO / "conf/approach").glob("*.yaml")):
        params["approaches"].setdefault(f.stem, yaml.safe_load(f.read_text()))
    (tmp / "params.yaml").write_text(yaml.safe_dump(params))
    subprocess.run(["dvc", "init", "--no-scm", "-q"], cwd=tmp, check=True,
                   env={**__import__("os").environ, "PATH": f"{Path(sys.executable).parent}:" + __import__("os").environ["PATH"]})
    with Repo(str(tmp)) as repo:
        out = {s.name: (s.cmd, [d.def_path for d in s.deps]) for s in repo.index.stages}
    return out, params


def declared_code(deps: list[str]) -> set[str]:
    """The .py files the deps cover (a folder covers every file under it)."""
    files = set()
    for d in deps:
        p = REPO / d
        if d.startswith("src/") and p.is_dir():
            files.update(f.relative_to(REPO).as_posix() for f in p.rglob("*.py"))
        elif d.startswith("src/"):
            files.add(d)
    return files


def test_every_stage_depends_on_exactly_the_code_it_runs(stages):
    rendered, params = stages
    assert {"data", "models", "embed", "summary", "plots", "fit@t5", "predict@llm", "ensemble@stack"} <= set(rendered)
    for name, (cmd, deps) in rendered.items():
        entry = re.search(r"python -m (\S+)", cmd).group(1)
        modules = [entry]
        own: set[str] = set()
        if name.startswith(("fit@", "predict@")):
            key = name.split("@", 1)[1]
            modules.append(KINDS[params["approaches"][key]["kind"]] + ".approach")
            own = declared_code(params["approaches"][key]["code"])
        needed = {f for f in closure_files(REPO, modules) if runs_code(f)}
        declared = {f for f in declared_code(deps) if runs_code(f)}
        assert not needed - declared, f"{name} runs code it does not depend on: {sorted(needed - declared)}"
        accepted = set().union(*(files for prefix, files in OVER_DECLARED.items() if name.startswith(prefix)))
        extra = declared - needed - own - accepted
        assert not extra, f"{name} depends on code it never runs (edits there rerun it for nothing): {sorted(extra)}"


def test_package_inits_hold_only_a_docstring():
    """What lets the stage-deps check leave them out (the lazy `textclf.load` of the top package aside)."""
    inits = [p for p in (REPO / "src/textclf").rglob("__init__.py") if p.parent.name != "textclf"]
    assert len(inits) >= 8
    assert [p for p in inits if not docstring_only(p)] == []


def test_an_approach_owns_its_code(stages):
    """Its first `code` path (its own module or package) is in no other stage's deps."""
    rendered, params = stages
    for key, spec in params["approaches"].items():
        code = spec["code"]
        assert 1 <= len(code) <= 2, f"conf/approach/{key}.yaml: `code` lists 1 or 2 paths (dvc.yaml reads [0] and [-1])"
        assert all((REPO / c).exists() for c in code), code
        assert code[0].startswith("src/textclf/approaches/"), code
        own = declared_code([code[0]])
        for name, (_, deps) in rendered.items():
            if name not in (f"fit@{key}", f"predict@{key}"):
                assert not own & declared_code(deps), f"{name} depends on {key}'s code {sorted(own & declared_code(deps))}"


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_kind_implements_the_approach_interface(kind):
    assert isinstance(module_for(kind), Approach), f"{KINDS[kind]} lacks fit, predict or labelled"
