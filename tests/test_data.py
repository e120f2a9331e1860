"""The data module's own behaviour; bad files and settings through the real stage:
tests/test_bad_inputs.py."""

import json

import pytest

from helpers import RT, write_jsonl
from textclf.data.prepare import DataError, Split, prepare, stratified_take
from textclf.data.prepared import read_split, write_prepared


def cfg_for(data_cfg, folder, **kw):
    return {**data_cfg, "local_dir": str(folder), **kw}


def test_prepares_valid_data(data_cfg, tiny_dataset, tmp_path):
    splits, report = prepare(cfg_for(data_cfg, tiny_dataset), tmp_path, seed=0)
    assert [len(splits[s].texts) for s in ("train", "validation", "test")] == [20, 6, 8]
    assert report.source == "local"
    assert report.counts["train"] == {"rows_read": 20, "duplicates_within_split": 0, "rows": 20}
    write_prepared(splits, data_cfg["label_names"], tmp_path / "out")
    back = read_split(tmp_path / "out", "test")
    assert back.texts == splits["test"].texts and back.labels.tolist() == splits["test"].labels
    assert json.loads((tmp_path / "out/labels.json").read_text()) == {"label_names": ["negative", "positive"]}


def test_named_labels_and_carved_validation(data_cfg, tmp_path):
    names = ["business", "sport", "tech"]
    rows = [{"text": f"article {i}", "label": names[i % 3]} for i in range(60)]
    write_jsonl(tmp_path / "d/train.jsonl", rows[:45])
    write_jsonl(tmp_path / "d/test.jsonl", rows[45:])
    cfg = cfg_for(data_cfg, tmp_path / "d", label_names=names, splits={"train": "train", "validation": None, "test": "test"},
                  validation_fraction=0.2)
    splits, _ = prepare(cfg, tmp_path, 0)
    assert len(splits["validation"].texts) == 9 and len(splits["train"].texts) == 36
    assert sorted(set(splits["validation"].labels)) == [0, 1, 2]
    assert splits["test"].labels == [i % 3 for i in range(45, 60)]


def test_stratified_limits_are_balanced_and_seeded():
    sp = Split([f"t{i}" for i in range(100)], [0] * 50 + [1] * 50, "x", list(range(1, 101)))
    a, b = stratified_take(sp, 20, seed=3), stratified_take(sp, 20, seed=3)
    assert a.texts == b.texts and sorted(a.labels).count(0) == 10
    assert stratified_take(sp, 20, seed=4).texts != a.texts


def test_stratified_limits_keep_every_class_rare_and_single_ones_too():
    # TREC's shape: a proportional share of 3 rows in a sample of 1/10 is none, and a class
    # with one row cannot be stratified; both keep a row, and the sample keeps its size.
    labels = [0] * 300 + [1] * 150 + [2] * 3 + [3] * 1 + [4] * 46
    sp = Split([f"t{i}" for i in range(500)], labels, "x", list(range(1, 501)))
    a = stratified_take(sp, 50, seed=0)
    assert len(a.texts) == 50 and sorted(set(a.labels)) == [0, 1, 2, 3, 4]
    assert a.texts == stratified_take(sp, 50, seed=0).texts
    assert 25 <= a.labels.count(0) <= 30  # still proportional where it can be


def test_real_rotten_tomatoes_mirror(data_cfg, tmp_path):
    cfg = cfg_for(data_cfg, RT, name="rotten_tomatoes", source="auto", hub_id="cornell-movie-review-data/rotten_tomatoes")
    splits, report = prepare(cfg, tmp_path, 42)  # HF_HUB_OFFLINE or no network: the mirror
    assert {s: len(v.texts) for s, v in splits.items()} == {"train": 8530, "validation": 1066, "test": 1066}
    assert sum(splits["test"].labels) == 533


def test_hub_source_without_network_fails_clearly(data_cfg, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DataError, match="hub is not reachable and data.local_dir is not set"):
        prepare({**data_cfg, "source": "auto", "hub_id": "cornell-movie-review-data/rotten_tomatoes"}, tmp_path, 0)


# ---------------------------------------------------------------- label names inferred (data.label_names null)

def test_label_names_from_a_classlabel_feature(data_cfg, tmp_path):
    import datasets

    features = datasets.Features({"text": datasets.Value("string"),
                                  "label": datasets.ClassLabel(names=["sad", "happy", "angry"])})
    for split, n in (("train", 12), ("validation", 6), ("test", 6)):
        rows = {"text": [f"{split} text {i}" for i in range(n)], "label": [i % 3 for i in range(n)]}
        (tmp_path / "d").mkdir(exist_ok=True)
        datasets.Dataset.from_dict(rows, features=features).to_parquet(str(tmp_path / "d" / f"{split}.parquet"))
    splits, report = prepare(cfg_for(data_cfg, tmp_path / "d", label_names=None), tmp_path, 0)
    # The feature's order, not sorted: indices keep their meaning.
    assert (report.label_names, report.label_names_from) == (["sad", "happy", "angry"], "ClassLabel")
    assert splits["test"].labels == [0, 1, 2, 0, 1, 2]
    # Declared names must still agree with the feature.
    with pytest.raises(DataError, match=r"label names \['sad', 'happy', 'angry'\] differ from data.label_names"):
        prepare(cfg_for(data_cfg, tmp_path / "d", label_names=["angry", "happy", "sad"]), tmp_path, 0)


def test_label_names_from_distinct_strings(data_cfg, tmp_path):
    names = ["weather_query", "alarm_set", "play_music"]
    rows = [{"text": f"utterance {i}", "label": names[i % 3]} for i in range(45)]
    write_jsonl(tmp_path / "d/train.jsonl", rows[:30])
    write_jsonl(tmp_path / "d/validation.jsonl", rows[30:36])
    write_jsonl(tmp_path / "d/test.jsonl", rows[36:])
    splits, report = prepare(cfg_for(data_cfg, tmp_path / "d", label_names=None), tmp_path, 0)
    assert (report.label_names, report.label_names_from) == (["alarm_set", "play_music", "weather_query"], "distinct strings")
    assert splits["train"].labels[:3] == [2, 0, 1]
    write_prepared(splits, report.label_names, tmp_path / "out")
    assert json.loads((tmp_path / "out/labels.json").read_text()) == {"label_names": ["alarm_set", "play_music", "weather_query"]}
    # Declared names are used as given, and say so.
    _, report = prepare(cfg_for(data_cfg, tmp_path / "d", label_names=names), tmp_path, 0)
    assert (report.label_names, report.label_names_from) == (names, "config")


def test_integer_labels_without_names_say_what_to_add(data_cfg, tiny_dataset, tmp_path):
    with pytest.raises(DataError, match=r"'label' holds integer labels \(0, 1\) and no label names: set data.label_names"):
        prepare(cfg_for(data_cfg, tiny_dataset, label_names=None), tmp_path, 0)


def test_real_hwu64_mirror_with_its_one_file_config(tmp_path):
    """conf/data/hwu64.yaml (source, path, columns) over the defaults: 64 intents inferred."""
    import yaml

    from helpers import REPO, SHARED_DATA
    from textclf.params import compose

    if not (SHARED_DATA / "hwu64").is_dir():  # the mirror is part of the test set-up, as for CI
        pytest.fail(f"the data mirror {SHARED_DATA / 'hwu64'} is missing: the tests need ../shared beside the repo")
    cfg = yaml.safe_load(compose(REPO, ["data=hwu64"], tmp_path / "params.yaml").read_text())["data"]
    splits, report = prepare(cfg, REPO, 42)
    assert report.label_names_from == "distinct strings" and len(report.label_names) == 64
    assert report.label_names[:2] == ["alarm_query", "alarm_remove"]
    assert {s: len(v.texts) for s, v in splits.items()} == {"train": 7712, "validation": 933, "test": 1032}


def test_duplicates_within_a_split_are_counted_and_never_straddle_a_carved_validation(data_cfg, tmp_path):
    names = ["business", "sport", "tech"]
    rows = [{"text": f"article {i}", "label": names[i % 3]} for i in range(60)]
    rows += [dict(rows[i]) for i in range(0, 30, 2)]  # 15 texts twice
    write_jsonl(tmp_path / "d/train.jsonl", rows)
    write_jsonl(tmp_path / "d/test.jsonl", [{"text": f"held out {i}", "label": names[i % 3]} for i in range(9)])
    cfg = cfg_for(data_cfg, tmp_path / "d", label_names=names, splits={"train": "train", "validation": None, "test": "test"},
                  validation_fraction=0.25)
    for seed in range(5):
        splits, report = prepare(cfg, tmp_path, seed)
        assert report.counts["train"]["duplicates_within_split"] == 15
        assert report.counts["test"]["duplicates_within_split"] == 0
        tr, va = splits["train"].texts, splits["validation"].texts
        assert len(tr) + len(va) == 75 and not set(tr) & set(va)
        assert sorted(set(splits["validation"].labels)) == [0, 1, 2]

