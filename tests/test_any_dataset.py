"""A dataset the pipeline has never seen, through the whole DAG (CI profile) with a data
config that gives only source, paths and columns: string intent labels that share their
first word (the LLM's logprob mode must fall back to constrained label mode), label names
inferred, descriptions from the template, and a 1 MB text in the test split that every
approach must classify (cut to each model's limit, counted)."""

import json

import pytest

from helpers import SHARED, copy_project, run, write_jsonl

pytestmark = pytest.mark.slow

LABELS = ["alarm_query", "alarm_set", "weather_query"]
TEMPLATES = {
    "alarm_query": ["what alarms do i have for {d}", "list my alarms {d}", "is there an alarm set for {d}"],
    "alarm_set": ["wake me up at {n} am {d}", "set an alarm for {n} {d}", "alarm at {n} o'clock {d} please"],
    "weather_query": ["will it rain {d}", "what is the weather like {d}", "how cold is it going to be {d}"],
}
DAYS = ["today", "tomorrow", "on monday", "on tuesday", "on friday", "this weekend", "next week", "tonight",
        "on sunday", "in the morning", "on wednesday", "on thursday"]


def rows(split: int, per_label: int) -> list[dict]:
    out = []
    for label, templates in TEMPLATES.items():
        for i in range(per_label):
            t = templates[i % len(templates)].format(n=(i * 7 + split) % 12 + 1, d=DAYS[(i + 5 * split) % len(DAYS)])
            out.append({"text": f"{t} ({split}-{i})", "label": label})
    return out


@pytest.fixture(scope="module")
def run_repo(tmp_path_factory):
    base = tmp_path_factory.mktemp("anyds")
    (base / "shared").symlink_to(SHARED, target_is_directory=True)
    data = base / "intents"
    write_jsonl(data / "train.jsonl", rows(0, 30))
    write_jsonl(data / "validation.jsonl", rows(1, 8))
    test = rows(2, 8)
    test[4]["text"] = "what is the weather like " * 40_000  # 1 MB
    write_jsonl(data / "test.jsonl", test)
    repo = copy_project(base / "main")
    # The whole data config a new user writes: name, source, paths, columns.
    (repo / "conf/data/intents.yaml").write_text(
        "name: intents\nsource: local\nlocal_dir: ../intents\nsplits: {train: train, validation: validation, test: test}\n"
        "text_column: text\nlabel_column: label\n")
    # logprob mode, as the default profile: it must fall back (the labels share a first token).
    run("python -m textclf.params profile=ci data=intents llm.mode=logprob", repo)
    run("dvc repro", repo)
    return repo


def metrics(repo, name):
    return json.loads((repo / "metrics" / f"{name}.json").read_text())


def test_labels_inferred_and_descriptions_from_the_template(run_repo):
    data = metrics(run_repo, "data")
    assert data["label_names"] == LABELS and data["label_names_from"] == "distinct strings"
    descriptions = json.loads((run_repo / "models/label_desc/descriptions.json").read_text())
    assert descriptions == {"alarm_query": ["alarm query"], "alarm_set": ["alarm set"], "weather_query": ["weather query"]}


def test_every_approach_classifies_every_row_and_the_long_text_is_cut_and_counted(run_repo):
    summary = json.loads((run_repo / "metrics/summary.json").read_text())
    assert set(summary["approaches"]) == {"embed_lr", "centroid", "label_desc", "task_specific", "llm", "stack"}
    for name, row in summary["approaches"].items():
        assert row["rows"] == 24 and row["unparseable"] == 0, (name, row)
    assert metrics(run_repo, "embed")["splits"]["test"]["truncated"] == 1
    assert metrics(run_repo, "task_specific")["details"]["test"]["truncated_rows"] == 1
    llm = metrics(run_repo, "llm")["details"]["test"]
    assert llm["truncated_rows"] == 1 and llm["unparseable"] == 0
    # alarm_query / alarm_set start with the same token: logprob mode fell back, on the record.
    assert llm["mode_used"] == "label" and "start with the same token" in llm["mode_reason"]
    # Three classes: the summary's rarest-classes table, and the stack's recorded choice.
    assert "rare_classes" in summary
    stack = metrics(run_repo, "stack")
    assert stack["chosen"] and stack["folds"]["outer"] >= 2
