"""Shared test helpers (conftest.py keeps the fixtures): `from helpers import REPO, run, ...`.

paths     REPO, SHARED, SHARED_DATA, RT (the rotten_tomatoes mirror)
commands  git_env, run (a shell command in a temp repo), ran_stages, stale_stages
project   copy_project (the working tree as a fresh git repo), CiRun (the CI profile's run)
files     write_jsonl, read_jsonl, write_predictions (through textclf.evaluation.predictions)
"""

from .commands import git_env, ran_stages, run, stale_stages
from .files import read_jsonl, write_jsonl, write_predictions
from .paths import REPO, RT, SHARED, SHARED_DATA
from .project import CiRun, copy_project

__all__ = ["REPO", "RT", "SHARED", "SHARED_DATA", "CiRun", "copy_project", "git_env", "ran_stages", "read_jsonl",
           "run", "stale_stages", "write_jsonl", "write_predictions"]
