"""Temp copies of this project: a fresh git repo of the working tree, and the CI profile's
run with its clones."""

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .commands import run
from .paths import REPO


def copy_project(dest: Path) -> Path:
    """A fresh git repo (branch main) holding this working tree's files, tracked and untracked
    but not ignored: no DVC outputs, no bytecode."""
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                           capture_output=True, check=True).stdout.decode().split("\0")
    for f in filter(None, files):
        src = REPO / f
        if src.is_file():
            (dest / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / f)
    run("git init -q -b main && git add -A && git commit -qm init", dest)
    return dest


@dataclass
class CiRun:
    base: Path  # holds shared/ (a link to the data mirror), main/ and the clones
    repo: Path  # base/main: the CI profile run by `dvc repro`, committed
    output: str  # what that `dvc repro` printed

    def clone(self, name: str, share_cache: bool = True) -> Path:
        """A git clone of the run, beside it (so `../shared` resolves); with share_cache its
        DVC outputs are checked out from the run's cache: `dvc status` is clean, nothing is
        recomputed. Without, it is a fresh clone with an empty cache (as after `git clone`)."""
        dest = self.base / name
        run(f"git clone -q {self.repo} {dest}", self.base)
        if share_cache:
            run(f"dvc cache dir --local {self.repo / '.dvc' / 'cache'} && dvc checkout -q", dest)
        return dest
