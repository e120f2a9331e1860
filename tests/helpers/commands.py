"""Running commands (the CLI, dvc, git) in temp repos as a user would, and reading what
`dvc` says it ran."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path


def git_env() -> dict[str, str]:
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


def run(cmd: str, cwd: Path, check: bool = True) -> str:
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
