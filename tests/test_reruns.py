"""Only what changed reruns (issue 8), checked in clones of the session's CI-profile run
(conftest.ci_run) with bytecode writing on, as on a user's machine. Which stages an edit must
dirty is derived from dvc.yaml as DVC renders it, then compared with `dvc status`."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
import yaml

from helpers import RT, ran_stages, run, stale_stages

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def repo(ci_run):
    return ci_run.clone("reruns")


def stages_depending_on(repo: Path, path: str) -> set[str]:
    """The stages whose declared deps cover `path` (a file, or a folder above it)."""
    from dvc.repo import Repo

    with Repo(str(repo)) as r:
        return {s.name for s in r.index.stages
                if any(path == d.def_path or path.startswith(d.def_path.rstrip("/") + "/") for d in s.deps)}


def code_file(repo: Path, code: str) -> str:
    return f"{code}/__init__.py" if (repo / code).is_dir() else code


def edited(repo: Path, rel: str):
    """Append a comment to a source file; returns a function that restores it."""
    path = repo / rel
    original = path.read_bytes()
    path.write_bytes(original + b"\n# an edit that changes no behaviour\n")
    return lambda: path.write_bytes(original)


def test_importing_everything_with_bytecode_on_dirties_nothing(repo):
    run("python -m compileall -q src && python -c \"import importlib, pkgutil, textclf\n"
        "for m in pkgutil.walk_packages(textclf.__path__, 'textclf.'): importlib.import_module(m.name)\"", repo)
    assert list((repo / "src/textclf/approaches/llm").glob("__pycache__/*.pyc"))
    assert stale_stages(repo) == set()


def test_an_edit_to_an_approach_dirties_only_that_approach(repo):
    approaches = yaml.safe_load((repo / "params.yaml").read_text())["approaches"]
    assert len(approaches) >= 5
    for name, spec in approaches.items():
        rel = code_file(repo, spec["code"][0])
        expected = stages_depending_on(repo, rel)
        assert expected == {f"fit@{name}", f"predict@{name}"}, (name, rel, expected)
        restore = edited(repo, rel)
        try:
            assert stale_stages(repo) == expected, name
        finally:
            restore()
        assert stale_stages(repo) == set(), name


@pytest.mark.parametrize("rel", ["src/textclf/approaches/base.py", "src/textclf/stages/predict.py",
                                 "src/textclf/core/io.py", "src/textclf/data/prepared.py"])
def test_an_edit_to_shared_code_dirties_what_uses_it(repo, rel):
    expected = stages_depending_on(repo, rel)
    assert expected, rel
    restore = edited(repo, rel)
    try:
        assert stale_stages(repo) == expected
    finally:
        restore()
    if rel.endswith("stages/predict.py"):  # every approach's predict@, no fit@
        assert {s.split("@")[0] for s in expected} == {"predict"}


# Issue 19: a helper's place decides what reruns. Each edit must dirty exactly the stages listed
# (checked twice: against dvc.yaml's declared deps, and against `dvc status` after the edit).
@pytest.mark.parametrize("rel, what", [
    # The summary's Markdown table: the summary alone (not the plots).
    ("src/textclf/report/markdown.py", {"summary"}),
    # A metric definition: what computes metrics (predict@, ensemble@; fit@ only where fit scores).
    ("src/textclf/evaluation/metrics.py", None),
    # One approach's settings schema: that approach alone.
    ("src/textclf/approaches/llm/settings.py", {"fit@llm", "predict@llm"}),
])
def test_an_edit_reruns_only_what_uses_it(repo, rel, what):
    names = set(yaml.safe_load((repo / "params.yaml").read_text())["approaches"])
    expected = stages_depending_on(repo, rel)
    if what is not None:
        assert expected == what, (rel, expected)
    else:
        assert {f"predict@{n}" for n in names} <= expected, expected
        # fit@ only where fit computes a metric: label_desc picks its descriptions and the llm its
        # prompt and k by validation macro-F1; and the summary, which scores the trivial baselines.
        assert {s for s in expected if not s.startswith(("predict@", "ensemble@"))} <= \
            {"fit@label_desc", "fit@llm", "summary"}, expected
    restore = edited(repo, rel)
    try:
        assert stale_stages(repo) == expected, rel
    finally:
        restore()
    assert stale_stages(repo) == set(), rel


def test_an_edited_row_of_the_local_mirror_makes_data_stale(ci_run, tmp_path):
    """A writable copy of the mirror beside a clone: same bytes, nothing stale; one changed
    row, `data` stale (and only it, until it reruns)."""
    mirror = tmp_path / "shared" / "data" / RT.name
    shutil.copytree(RT, mirror)
    clone = tmp_path / "repo"
    run(f"git clone -q {ci_run.repo} {clone}", tmp_path)
    run(f"dvc cache dir --local {ci_run.repo / '.dvc' / 'cache'} && dvc checkout -q", clone)
    assert stale_stages(clone) == set()
    rows = (mirror / "train.jsonl").read_text().splitlines(keepends=True)
    rows[5] = rows[5].replace('"text": "', '"text": "edited ', 1)
    (mirror / "train.jsonl").write_text("".join(rows))
    assert stale_stages(clone) == {"data"}


def test_repro_after_an_approach_edit_reruns_no_other_approach(repo):
    edited(repo, "src/textclf/approaches/centroid/approach.py")
    out = run("dvc repro", repo)
    ran = ran_stages(out)
    assert {"fit@centroid", "predict@centroid"} <= ran, out
    # Same outputs: the ensemble (predictions/ unchanged) and plots do not rerun; the summary
    # does, as it reads the new wall times in metrics/timings/.
    assert ran <= {"fit@centroid", "predict@centroid", "summary"}, out
    assert run("git status --porcelain metrics/centroid.json", repo) == ""  # same code behaviour, same bytes


def experiments(repo: Path) -> tuple[float, list[dict]]:
    """The baseline's centroid macro-F1, and each experiment's C, train limit and centroid
    macro-F1, from `dvc exp show --json`."""
    base, exps = None, []
    for commit in json.loads(run("dvc exp show --no-pager --json", repo)):
        if commit["name"] == "main":
            base = commit["data"]["metrics"]["metrics/centroid.json"]["data"]["macro"]["f1"]
        for exp in commit.get("experiments") or []:
            for rev in exp["revs"]:
                p = rev["data"]["params"]["params.yaml"]["data"]
                exps.append({"name": rev["name"], "C": p["classifier"]["C"], "train": p["data"]["limits"]["train"],
                             "centroid": rev["data"]["metrics"]["metrics/centroid.json"]["data"]["macro"]["f1"]})
    return base, exps


def test_queued_experiments_run_from_a_default_clone_with_their_own_code(ci_run):
    """`dvc exp run --queue` runs each experiment in a copy under .dvc/tmp/exps/: the relative
    mirror path must resolve there, and the stages must run that copy's code. The queued code
    change flips the centroid approach's similarities, which shows in its macro-F1."""
    repo = ci_run.clone("queue")
    # What `make setup` does in a fresh clone (and any stage or `python -m textclf.params`):
    run("python -c 'from pathlib import Path; "
        "from textclf.core.context import link_from_params; link_from_params(Path.cwd())'", repo)
    assert (repo / ".dvc/tmp/exps/shared").resolve() == (ci_run.base / "shared").resolve()
    path = repo / "src/textclf/approaches/centroid/approach.py"
    src = path.read_text()
    assert 'np.load(model_dir / "centroids.npy"))' in src
    path.write_text(src.replace('np.load(model_dir / "centroids.npy"))', '-np.load(model_dir / "centroids.npy"))'))
    run("dvc exp run --queue -S profile=ci -S data.limits.train=300 -S classifier.C=0.1,1", repo)
    run("git checkout -- src", repo)
    run("dvc queue start", repo)
    deadline = time.time() + 1800
    while True:
        status = run("dvc queue status", repo)
        if not any(s in status for s in ("Queued", "Running")):
            break
        assert time.time() < deadline, status
        time.sleep(10)
    assert status.count("Success") == 2 and "Failed" not in status, status + run(
        "dvc queue logs $(dvc queue status | awk '/Failed/{print $1; exit}') 2>&1 || true", repo)
    base, exps = experiments(repo)
    assert sorted(e["C"] for e in exps) == [0.1, 1.0] and {e["train"] for e in exps} == {300}, exps
    # The queued code (flipped similarities) ran, not the workspace's: centroid falls below chance.
    for e in exps:
        assert e["centroid"] < 0.5 < base, (e, base)
