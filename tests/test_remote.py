"""A fresh clone pulls (issue 8). The default remote (.dvc/config: `storage`, url
../../dvc-storage, relative to .dvc/, i.e. <repo>/../dvc-storage) is a folder beside the
repository, so every clone beside the session's CI-profile run (conftest.ci_run) shares
<base>/dvc-storage. Clone A pushes the run; fresh clones (empty cache) pull it and recompute
nothing, or change one param and rerun only that param's stages, pulling what they read.

`dvc repro --pull`, not `--pull --allow-missing`: with --allow-missing, DVC 3.67 skips an
unchanged stage with missing outputs without pulling them, and a stage that runs pulls only
deps that do not exist at all; ensemble@stack, summary and plots read the whole predictions/
folder (a foreach cannot list each base's), which exists once predict@embed_lr has rerun, so
the other bases' predictions would never arrive."""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import pytest
from configobj import ConfigObj

from helpers import REPO, SHARED, ran_stages, run, stale_stages

pytestmark = pytest.mark.slow

CHANGE_C = "python -m textclf.params profile=ci classifier.C=0.05"
C_STAGES = {"fit@embed_lr", "predict@embed_lr", "ensemble@stack", "summary", "plots"}


def pulled_stages(output: str) -> set[str]:
    """Stages `dvc repro --pull` restored from the remote instead of running them."""
    return set(re.findall(r"Pulling data for stage: '([^']+)'", output))


@pytest.fixture(scope="module")
def pushed(ci_run):
    """Clone A (outputs checked out from the run's cache) after `dvc push`; the remote folder."""
    a = ci_run.clone("remote_a")
    out = run("dvc push", a)
    return a, ci_run.base / "dvc-storage", out


def test_default_remote_is_the_folder_beside_the_repo(ci_run, pushed):
    a, storage, out = pushed
    # Committed as a relative url (no machine path in git), resolved against .dvc/.
    remote = ConfigObj(str(a / ".dvc" / "config"))
    assert remote["core"]["remote"] == "storage"
    url = remote['remote "storage"']["url"]
    assert url == "../../dvc-storage", url
    assert (a / ".dvc" / url).resolve() == storage.resolve() == (a.parent / "dvc-storage").resolve()
    listed = run("dvc remote list", a).split()  # storage <absolute path> (default)
    assert listed[0] == "storage" and Path(listed[1]).resolve() == storage.resolve(), listed
    assert listed[2:] == ["(default)"], listed
    assert "pushed" in out and any(p.is_file() for p in (storage / "files" / "md5").rglob("*")), out
    assert json.loads(run("dvc status --cloud --json", a)) == {}  # everything A uses is on the remote


def test_remote_holds_no_secret_or_machine_path(ci_run, pushed):
    _, storage, _ = pushed
    files = [p for p in storage.rglob("*") if p.is_file()]
    # Only content-addressed objects: no run cache (`runs/`, stage commands and params), no tmp.
    assert {p.relative_to(storage).parts[0] for p in files} == {"files"}, sorted(map(str, files))[:20]
    paths = {str(ci_run.base), str(ci_run.base.resolve()), str(ci_run.repo), str(REPO), str(SHARED),
             sys.prefix, os.environ.get("TEXTCLF_CACHE") or "", str(Path.home()) + os.sep}
    needles = {s: s.encode() for s in paths if len(s) >= 6}
    # Values of secret-looking variables (GROQ_API_KEY, HF_TOKEN, …) set here, named, never shown.
    needles |= {f"${k}": v.encode() for k, v in os.environ.items()
                if re.search(r"KEY|TOKEN|SECRET|PASSW|CREDENTIAL", k, re.I) and len(v) >= 8}
    for p in files:
        data = p.read_bytes()
        found = [label for label, n in needles.items() if n in data]
        assert not found, f"remote object {p.relative_to(storage)} holds {found}"
        if p.name.endswith(".dir"):  # directory manifests: relative paths inside the output only
            for entry in json.loads(data):
                rel = entry["relpath"]
                assert not os.path.isabs(rel) and ".." not in Path(rel).parts, (p, rel)


def test_fresh_clone_pulls_and_recomputes_nothing(ci_run, pushed):
    b = ci_run.clone("remote_b", share_cache=False)  # as after `git clone`: empty cache
    assert {"data", "embed", "fit@embed_lr", "predict@embed_lr"} <= stale_stages(b)
    run("dvc pull", b)
    assert stale_stages(b) == set()
    out = run("dvc repro", b)
    assert ran_stages(out) == set(), out
    for rel in ("predictions/embed_lr/test.jsonl", "ensembles/stack/test.jsonl", "data/embeddings/test.npy"):
        assert (b / rel).read_bytes() == (ci_run.repo / rel).read_bytes(), rel


def test_changed_param_in_fresh_clone_reruns_only_its_stages(ci_run, pushed):
    c = ci_run.clone("remote_c", share_cache=False)
    run(CHANGE_C, c)
    out = run("dvc repro --pull", c)
    assert ran_stages(out) == C_STAGES, out
    # The unchanged stages come from the remote (embed: MiniLM never loads), not from a rerun.
    assert {"data", "embed", "fit@centroid", "predict@centroid", "predict@label_desc"} <= pulled_stages(out), out
    assert not pulled_stages(out) & C_STAGES, out
    assert stale_stages(c) == set()
