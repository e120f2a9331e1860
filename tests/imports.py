"""Static import graph of the textclf package: which source files a stage runs.

Follows every `import`/`from ... import` of textclf modules, at module level and inside
functions (the lazy imports of heavy libraries' callers), so the closure of a stage's entry
module is every textclf file it may execute. `module_for(kind)` is dynamic: callers add the
module KINDS maps the approach's kind to."""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

PACKAGE = "textclf"


def module_file(src: Path, module: str) -> Path | None:
    base = src.joinpath(*module.split("."))
    for cand in (base.with_suffix(".py"), base / "__init__.py"):
        if cand.is_file():
            return cand
    return None


def _parents(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


@cache
def direct_imports(src: Path, module: str) -> frozenset[str]:
    path = module_file(src, module)
    tree = ast.parse(path.read_text(), str(path))
    is_pkg = path.name == "__init__.py"
    package = module if is_pkg else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == PACKAGE)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != PACKAGE:
                continue
            found.add(target)
            for alias in node.names:  # `from . import client` imports a submodule
                sub = f"{target}.{alias.name}"
                if module_file(src, sub):
                    found.add(sub)
    out = set()
    for m in found:
        if module_file(src, m):
            out.add(m)
            out.update(p for p in _parents(m))
    return frozenset(out)


def closure(src: Path, modules: list[str]) -> set[str]:
    """Every textclf module the given modules import, transitively, with their packages."""
    seen: set[str] = set()
    todo = [m for mod in modules for m in (*_parents(mod), mod)]
    while todo:
        m = todo.pop()
        if m in seen or not module_file(src, m):
            continue
        seen.add(m)
        todo.extend(direct_imports(src, m))
    return seen


def closure_files(root: Path, modules: list[str]) -> set[str]:
    """The closure as repository-relative paths (src/textclf/...)."""
    src = root / "src"
    return {module_file(src, m).relative_to(root).as_posix() for m in closure(src, modules)}
