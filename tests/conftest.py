import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = (REPO.parent / "shared").resolve()
SHARED_DATA = SHARED / "data"
RT = SHARED_DATA / "rotten_tomatoes"


def write_jsonl(path: Path, rows) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def data_cfg():
    """A data config for small local datasets made by the tests."""
    return {
        "name": "tiny", "source": "local", "hub_id": None, "local_dir": None,
        "splits": {"train": "train", "validation": "validation", "test": "test"},
        "text_column": "text", "label_column": "label", "label_names": ["negative", "positive"],
        "limits": {}, "on_empty_text": "error", "on_null_label": "error", "on_unknown_label": "error",
        "on_cross_split_duplicate": "error",
    }


@pytest.fixture
def tiny_dataset(tmp_path):
    """train/validation/test JSONL with two balanced classes; returns the folder."""
    def rows(prefix, n):
        return [{"text": f"{prefix} review number {i} {'great' if i % 2 else 'awful'}", "label": i % 2} for i in range(n)]
    d = tmp_path / "ds"
    write_jsonl(d / "train.jsonl", rows("train", 20))
    write_jsonl(d / "validation.jsonl", rows("val", 6))
    write_jsonl(d / "test.jsonl", rows("test", 8))
    return d


def git_env():
    """The environment of commands run in temp repos: as on a user's machine, Python writes
    bytecode (these machines set PYTHONDONTWRITEBYTECODE=1; users' do not), and code is
    imported from the temp repo's own src/ (PYTHONPATH=src, as the stages set), never from
    this checkout's editable install."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.update(GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.invalid",
               GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@example.invalid",
               HF_HUB_OFFLINE="1", PYTHONPATH="src", PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    return env


def run(cmd, cwd, check=True):
    """Run a shell command; return combined output (raises with the output on failure)."""
    proc = subprocess.run(cmd, cwd=cwd, shell=True, env=git_env(), text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if check and proc.returncode != 0:
        raise AssertionError(f"`{cmd}` failed ({proc.returncode}):\n{proc.stdout[-6000:]}")
    return proc.stdout


def ran_stages(output: str) -> set[str]:
    """The stages `dvc repro` / `dvc exp run` reproduced: ran, or restored from DVC's run cache
    (clones of the session's run share one cache, so another test may have run the same
    stage with the same inputs already)."""
    return {a or b for a, b in re.findall(r"Running stage '([^']+)'|Stage '([^']+)' is cached - skipping run", output)}


def stale_stages(repo: Path) -> set[str]:
    """The stages `dvc status` lists (what the next `dvc repro` would run)."""
    return set(json.loads(run("dvc status --json", repo)))


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


@pytest.fixture(scope="session")
def ci_run(tmp_path_factory) -> CiRun:
    """The whole DAG on the CI profile, run once per session in a temp copy of the repo with
    the default (relative) data path: `../shared` beside it links to the mirror."""
    if not RT.is_dir():
        pytest.fail(f"the data mirror {RT} is missing: the tests need ../shared beside the repo")
    base = tmp_path_factory.mktemp("ci")
    (base / "shared").symlink_to(SHARED, target_is_directory=True)
    repo = copy_project(base / "main")
    run("python -m textclf.params profile=ci", repo)
    out = run("dvc repro", repo)
    run("git add -A && git commit -qm 'ci profile run'", repo)
    return CiRun(base, repo, out)
