"""Fixtures only; the helpers they use live in tests/helpers/."""

import pytest

from helpers import RT, SHARED, CiRun, copy_project, run, write_jsonl


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
