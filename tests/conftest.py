import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = (REPO.parent / "shared" / "data").resolve()
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
    env = dict(os.environ)
    env.update(GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.invalid",
               GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@example.invalid",
               HF_HUB_OFFLINE="1", PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    return env


def run(cmd, cwd, check=True):
    """Run a shell command; return combined output (raises with the output on failure)."""
    proc = subprocess.run(cmd, cwd=cwd, shell=True, env=git_env(), text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if check and proc.returncode != 0:
        raise AssertionError(f"`{cmd}` failed ({proc.returncode}):\n{proc.stdout[-6000:]}")
    return proc.stdout


@pytest.fixture(scope="session")
def repo_copy(tmp_path_factory):
    """A fresh git repo holding the project's tracked files (no DVC outputs), data read
    from the shared mirror by absolute path."""
    if not RT.is_dir():
        pytest.fail(f"the data mirror {RT} is missing: the tests need ../shared beside the repo")
    dest = tmp_path_factory.mktemp("repo") / "project"
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                           capture_output=True, check=True).stdout.decode().split("\0")
    for f in filter(None, files):
        src = REPO / f
        if src.is_file():
            (dest / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / f)
    run("git init -q && git add -A && git commit -qm init", dest)
    return dest
