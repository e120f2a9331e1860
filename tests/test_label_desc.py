"""label_desc chooses among candidate description sets on validation only."""

import json

import numpy as np
import pytest
import yaml

from helpers import REPO, write_jsonl
from textclf.approaches.label_desc import approach as label_desc
from textclf.core.context import Context

LABELS = ["negative", "positive"]
# Set 0 points the wrong way on validation, set 1 the right way (vectors from FakeEmbedder).
VECTORS = {"n0": [0.0, 1.0], "p0": [1.0, 0.0], "n1": [1.0, 0.0], "p1": [0.0, 1.0]}


class FakeEmbedder:
    def encode(self, texts, progress=True):
        return np.array([VECTORS[t] for t in texts], dtype=np.float32)


def _split(root, name, labels, flip=False):
    """Rows near their class's axis (class 0: x, class 1: y), or the other one's when flip."""
    rng = np.random.default_rng(len(labels))
    emb = np.eye(2)[(labels + int(flip)) % 2] + 0.1 * rng.random((len(labels), 2))
    np.save(root / "data/embeddings" / f"{name}.npy", emb)
    write_jsonl(root / "data/prepared" / f"{name}.jsonl",
                [{"text": f"{name} {i}", "label": int(y)} for i, y in enumerate(labels)])


@pytest.fixture
def repo(tmp_path, monkeypatch):
    monkeypatch.setattr(label_desc.Embedder, "from_spec", classmethod(lambda cls, spec, device="cpu": FakeEmbedder()))
    (tmp_path / "data/embeddings").mkdir(parents=True)
    write_jsonl(tmp_path / "data/prepared/train.jsonl", [])
    (tmp_path / "data/prepared/labels.json").write_text(json.dumps({"label_names": LABELS}))
    y = np.tile([0, 1], 20)
    _split(tmp_path, "validation", y)
    _split(tmp_path, "test", y, flip=True)  # on test, set 0 would win: a rule that peeked would take it
    return tmp_path


def _ctx(root, select="forward", descriptions=None):
    return Context(root, {
        "approaches": {"ld": {"kind": "label_desc", "params": "data", "select": select}},
        "data": {"label_descriptions": descriptions or {"negative": ["n0", "n1"], "positive": ["p0", "p1"]},
                 "label_description_template": "{label}"},
        "embedder": {}, "device": {"name": "cpu", "threads": None}})


def _fit(ctx, out):
    label_desc.fit(ctx, "ld", out)
    return {f.name: f.read_bytes() for f in sorted(out.iterdir())}


def test_the_choice_reads_validation_only(repo):
    first = _fit(_ctx(repo), repo / "m1")
    sel = json.loads(first["selection.json"])
    assert sel["chosen"] == [1] and sel["validation_macro_f1"] == 1.0
    assert json.loads(first["descriptions.json"]) == {"negative": ["n1"], "positive": ["p1"]}
    # Test labels permuted, test texts and vectors replaced: every file the fit writes is the same.
    rng = np.random.default_rng(0)
    test_y = rng.permutation(np.tile([0, 1], 20))
    write_jsonl(repo / "data/prepared/test.jsonl", [{"text": f"other {i}", "label": int(y)} for i, y in enumerate(test_y)])
    np.save(repo / "data/embeddings/test.npy", rng.random((40, 2)))
    assert _fit(_ctx(repo), repo / "m2") == first
    # ... and with no test split at all.
    (repo / "data/prepared/test.jsonl").unlink()
    (repo / "data/embeddings/test.npy").unlink()
    assert _fit(_ctx(repo), repo / "m3") == first
    # The control: the validation labels do decide.
    _split(repo, "validation", np.tile([0, 1], 20), flip=True)
    assert json.loads(_fit(_ctx(repo), repo / "m4")["selection.json"])["chosen"] == [0]


def test_the_choice_is_recorded_in_the_metrics(repo):
    ctx = _ctx(repo)
    label_desc.fit(ctx, "ld", repo / "m")
    info = label_desc.predict(ctx, "ld", repo / "m", "test").info
    sel = info["selection"]
    assert sel["rule"] == "forward" and sel["metric"] == "validation macro-F1"
    assert [c["descriptions"] for c in sel["candidates"]] == [{"negative": "n0", "positive": "p0"},
                                                              {"negative": "n1", "positive": "p1"}]
    assert [c["validation_macro_f1_alone"] for c in sel["candidates"]] == [0.0, 1.0]
    # adding set 0 to set 1 makes both labels' vectors equal: worse, so the search stops
    assert sel["steps"] == [{"added": 1, "validation_macro_f1": 1.0}]
    assert label_desc.predict(ctx, "ld", repo / "m", "validation").info is None


def test_forward_selection_adds_sets_while_they_help_ties_to_the_earlier():
    # validation: class 0 along x, class 1 along y, plus rows on the diagonal
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 50)
    x = np.eye(2)[y] + 0.05 * rng.standard_normal((100, 2))
    good, bad = [[1.0, 0.0], [0.0, 1.0]], [[0.0, 1.0], [1.0, 0.0]]
    sel = label_desc.forward_select(np.array([bad, good, good]), x, y)
    assert sel.chosen == [1] and sel.alone == [0.0, 1.0, 1.0]  # set 2 ties set 1: the earlier wins, adding it gains nothing
    assert label_desc.forward_select(np.array([good]), x, y).rule == "none: one candidate set"
    # two tilted sets that err in opposite directions: together they beat either alone
    def tilt(a):
        return [[np.cos(a), np.sin(a)], [np.cos(a + np.pi / 2), np.sin(a + np.pi / 2)]]

    x = np.array([[np.cos(a), np.sin(a)] for a in np.linspace(-0.6, 0.6, 40)] +
                 [[np.cos(a), np.sin(a)] for a in np.linspace(np.pi / 2 - 0.6, np.pi / 2 + 0.6, 40)])
    y = np.repeat([0, 1], 40)
    sel = label_desc.forward_select(unit_sets([tilt(0.5), tilt(-0.5)]), x, y)
    assert sel.chosen == [0, 1] and sel.validation_macro_f1 == 1.0 > max(sel.alone)


def unit_sets(sets):
    return np.array(sets) / np.linalg.norm(np.array(sets), axis=-1, keepdims=True)


def test_select_all_averages_every_description_and_chooses_nothing(repo):
    out = _fit(_ctx(repo, "all", {"negative": ["n0", "n1"], "positive": ["p1"]}), repo / "m")
    assert json.loads(out["selection.json"])["rule"].startswith("all")
    assert np.allclose(np.load(repo / "m/label_embeddings.npy"), [[0.5, 0.5], [0.0, 1.0]])


def test_unequal_candidate_lists_and_unknown_rules_are_refused(repo):
    with pytest.raises(ValueError, match=r"same number of descriptions.*'negative': 2, 'positive': 1.*select=all"):
        _fit(_ctx(repo, "forward", {"negative": ["n0", "n1"], "positive": ["p1"]}), repo / "m")
    with pytest.raises(ValueError, match=r"select must be one of \('forward', 'all'\), got 'best'"):
        _fit(_ctx(repo, "best"), repo / "m")


def test_labelled_rows_count_validation_only_when_there_is_a_choice():
    def params(select, descriptions):
        return {"approaches": {"ld": {"params": "data", "select": select}}, "data": {"label_descriptions": descriptions}}
    two = {"negative": ["a", "b"], "positive": ["c", "d"]}
    assert label_desc.labelled(params("forward", two), "ld").splits == ("validation",)
    assert label_desc.labelled(params("all", two), "ld").splits == ()
    assert label_desc.labelled(params("forward", {"negative": ["a"], "positive": ["c"]}), "ld").splits == ()
    assert label_desc.labelled(params("forward", None), "ld").splits == ()  # from the template: one each


def test_rotten_tomatoes_candidates_pair_up_and_start_with_the_seed_wording():
    d = yaml.safe_load((REPO / "conf/data/rotten_tomatoes.yaml").read_text())["label_descriptions"]
    per_label = label_desc.descriptions_for(LABELS, d)
    assert label_desc.candidate_sets(LABELS, per_label) == len(d["negative"]) > 1
    assert (d["negative"][0], d["positive"][0]) == ("A negative review", "A positive review")


def test_descriptions_from_the_template_leave_nothing_to_choose(repo, monkeypatch):
    monkeypatch.setitem(VECTORS, "negative", [1.0, 0.0])
    monkeypatch.setitem(VECTORS, "positive", [0.0, 1.0])
    ctx = _ctx(repo)
    ctx.params["data"]["label_descriptions"] = None
    out = _fit(ctx, repo / "m")
    assert json.loads(out["descriptions.json"]) == {"negative": ["negative"], "positive": ["positive"]}
    sel = json.loads(out["selection.json"])
    assert sel["rule"] == "none: one candidate set" and sel["chosen"] == [0] and sel["steps"] == []
    assert label_desc.labelled(ctx.params, "ld").splits == ()
