"""A corpus of bad files and settings through the real entry points: the `data` stage
(`textclf.stages.data.main`, in a throwaway project folder) and `python -m textclf.params`.
Each case asserts its documented outcome: an error naming the file and row (or the key), or
a count in metrics/data.json. README's table "Bad inputs and what happens" lists exactly the
cases here (test_readme_table_lists_every_case)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import pandas as pd
import pytest
import yaml

from helpers import REPO, write_jsonl
from textclf.core.settings import ParamsError
from textclf.data.prepare import DataError

CASES = {}


def case(fn):
    CASES[fn.__name__.removeprefix("case_")] = fn
    return fn


def rows(prefix, n):
    return [{"text": f"{prefix} review number {i} {'great' if i % 2 else 'awful'}", "label": i % 2} for i in range(n)]


class Project:
    """A project folder (params.yaml + a dataset in d/) whose data stage runs for real."""

    def __init__(self, root, monkeypatch):
        self.root, self.d, self.mp = root, root / "d", monkeypatch
        self.data = {**yaml.safe_load((REPO / "params.yaml").read_text())["data"],
                     "local_dir": str(self.d), "label_descriptions": None, "on_cross_split_duplicate": "error"}
        write_jsonl(self.d / "train.jsonl", rows("train", 20))
        write_jsonl(self.d / "validation.jsonl", rows("val", 6))
        write_jsonl(self.d / "test.jsonl", rows("test", 8))

    def rows(self, split):
        return [json.loads(line) for line in (self.d / f"{split}.jsonl").read_text().splitlines()]

    def put(self, split, index, row):
        """Insert `row` before 0-based `index` of a JSONL split (it becomes row index + 1)."""
        r = self.rows(split)
        r.insert(index, row)
        write_jsonl(self.d / f"{split}.jsonl", r)

    def run(self, **data):
        """The data stage with data.<key>=value overrides; returns metrics/data.json."""
        from textclf.stages import data as stage

        params = yaml.safe_load((REPO / "params.yaml").read_text())
        params["data"] = {**self.data, **data}
        (self.root / "params.yaml").write_text(yaml.safe_dump(params))
        self.mp.chdir(self.root)
        stage.main()
        return json.loads((self.root / "metrics/data.json").read_text())

    def outputs(self):
        return {f: f.stat().st_mtime_ns for d in ("data/prepared", "metrics") for f in (self.root / d).glob("*")}

    def fails(self, match, **data):
        before = self.outputs()
        with pytest.raises(DataError, match=match):
            self.run(**data)
        assert self.outputs() == before  # nothing written, nothing half-replaced


def error_then_drop(p, problem, match, split="train", row=4, ext="jsonl"):
    p.fails(rf"{split}\.{ext}: row {row}: {match}.*on_{problem}=drop")
    counts = p.run(**{f"on_{problem}": "drop"})["splits"][split]
    assert counts[f"dropped_{problem}"] == 1 and counts["rows"] == counts["rows_read"] - 1


# ---------------------------------------------------------------- texts

@case
def case_empty_text(p):
    p.put("train", 3, {"text": "", "label": 1})
    error_then_drop(p, "empty_text", "empty or whitespace-only text ''")


@case
def case_whitespace_text(p):
    p.put("train", 3, {"text": " \t\n ", "label": 0})
    error_then_drop(p, "empty_text", "empty or whitespace-only")


@case
def case_non_string_text(p):
    p.put("train", 3, {"text": 123, "label": 0})
    error_then_drop(p, "empty_text", "text 123 is of type int, not a string")


@case
def case_1mb_text(p):
    p.put("test", 0, {"text": "long " * (1 << 18), "label": 1})
    assert p.run()["splits"]["test"]["rows"] == 9  # kept whole; models cut it (test_any_dataset.py)
    assert len(json.loads((p.root / "data/prepared/test.jsonl").read_text().splitlines()[0])["text"]) == 5 << 18


@case
def case_non_utf8_bytes(p):
    path = p.d / "validation.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    lines[2] = b'{"text": "caf\xe9 latin-1", "label": 0}\n'
    path.write_bytes(b"".join(lines))
    p.fails(r"validation\.jsonl:3: bytes that are not valid UTF-8.*Re-encode")


# ---------------------------------------------------------------- labels

@case
def case_null_label(p):
    p.put("train", 3, {"text": "fine", "label": None})
    error_then_drop(p, "null_label", "null label")


@case
def case_unknown_label(p):
    p.put("test", 1, {"text": "so-so", "label": "neutral"})
    p.fails(r"test\.jsonl: row 2: label 'neutral' is not in")
    # Splits are checked in the order train, validation, test: train's row is reported first.
    p.put("train", 3, {"text": "fine", "label": 7})
    error_then_drop(p, "unknown_label", "label 7 is not in data.label_names")


@case
def case_numeric_string_labels(p):
    """Names that are numbers: 1, 1.0 and "1" all mean the label "1" (matched by name)."""
    for split, n in (("train", 12), ("validation", 6), ("test", 6)):
        raw = [1, "2", 3.0, "1", 2, "3"]
        write_jsonl(p.d / f"{split}.jsonl", [{"text": f"{split} {i}", "label": raw[i % 6]} for i in range(n)])
    p.run(label_names=["1", "2", "3"])
    back = [json.loads(line)["label"] for line in (p.root / "data/prepared/test.jsonl").read_text().splitlines()]
    assert back == [0, 1, 2, 0, 1, 2]
    # YAML's [1, 2, 3] (ints) are the same names.
    p.run(label_names=[1, 2, 3])
    assert json.loads((p.root / "data/prepared/labels.json").read_text()) == {"label_names": ["1", "2", "3"]}


@case
def case_numeric_names_index_label(p):
    """With number names, 0 is not read as an index into them: an unknown label that says why."""
    write_jsonl(p.d / "train.jsonl", [{"text": f"t {i}", "label": i % 3} for i in range(9)])
    p.fails(r"\.jsonl: row 1: label 0 is not in .*matched by name, not read as indices", label_names=["1", "2", "3"])


# ---------------------------------------------------------------- files

@case
def case_invalid_json_line(p):
    (p.d / "train.jsonl").write_text('{"text": "a", "label": 0}\n{"text": "b", "label": \n')
    p.fails(r"train\.jsonl:2: could not be read as json")


@case
def case_empty_file(p):
    (p.d / "test.jsonl").write_text("")
    p.fails(r"test\.jsonl: the file is empty \(split 'test'\)")


@case
def case_missing_column(p):
    write_jsonl(p.d / "test.jsonl", [{"review": "x", "label": 0}])
    p.fails(r"test\.jsonl: missing column\(s\) \['text'\]; found .*Set data.text_column")


@case
def case_missing_split(p):
    (p.d / "validation.jsonl").unlink()
    p.fails(r"No file for split 'validation' in .*d \(looked for validation\{\.jsonl")


@case
def case_duplicate_within_split(p):
    p.put("train", 5, p.rows("train")[1])
    assert p.run()["splits"]["train"]["duplicates_within_split"] == 1


@case
def case_duplicate_across_splits(p):
    p.put("test", 5, p.rows("train")[2])
    p.fails(r"test\.jsonl: row 6: exact duplicate of .*train\.jsonl row 3")
    assert p.run(on_cross_split_duplicate="drop")["splits"]["test"]["cross_split_duplicates_dropped"] == 1
    assert p.run(on_cross_split_duplicate="keep")["splits"]["test"]["cross_split_duplicates_kept"] == 1


def csv_dataset(p, train_bytes):
    for f in p.d.iterdir():
        f.unlink()
    (p.d / "train.csv").write_bytes(train_bytes)
    (p.d / "test.csv").write_text("text,label\nfine film,1\nbad film,0\n", encoding="utf-8")
    (p.d / "validation.csv").write_text("text,label\nok film,1\nmeh film,0\n", encoding="utf-8")


def prepared_texts(p, split):
    return [json.loads(line)["text"] for line in (p.root / f"data/prepared/{split}.jsonl").read_text().splitlines()]


@case
def case_csv_na_like_strings(p):
    csv_dataset(p, b'text,label\n"NA",0\nnull,1\nNone,0\nnan,1\nN/A,0\n')
    p.run()
    assert prepared_texts(p, "train") == ["NA", "null", "None", "nan", "N/A"]


@case
def case_csv_quotes_newlines_bom_crlf(p):
    body = 'text,label\r\n"a ""quoted"", multi\nline review",1\r\n"plain, with comma",0\r\n'
    csv_dataset(p, "\ufeff".encode() + body.encode())
    p.run()
    assert prepared_texts(p, "train") == ['a "quoted", multi\nline review', "plain, with comma"]


@case
def case_csv_empty_cells(p):
    csv_dataset(p, b"text,label\nfine film,\nbad film,0\ngood film,1\n")
    p.fails(r"train\.csv: row 1: null label")
    (p.d / "train.csv").write_text("text,label\n,1\nbad film,0\ngood film,1\n")
    p.fails(r"train\.csv: row 1: empty or whitespace-only text None")


def parquet_dataset(p, train: pd.DataFrame):
    for f in p.d.iterdir():
        f.unlink()
    train.to_parquet(p.d / "train.parquet")
    pd.DataFrame(rows("val", 6)).to_parquet(p.d / "validation.parquet")
    pd.DataFrame(rows("test", 8)).to_parquet(p.d / "test.parquet")


@case
def case_parquet(p):
    parquet_dataset(p, pd.DataFrame(rows("train", 20)))
    assert p.run()["splits"]["train"]["rows"] == 20


@case
def case_parquet_null_text(p):
    df = pd.DataFrame(rows("train", 20))
    df.loc[2, "text"] = None
    parquet_dataset(p, df)
    error_then_drop(p, "empty_text", "empty or whitespace-only text None", row=3, ext="parquet")


@case
def case_parquet_corrupt(p):
    parquet_dataset(p, pd.DataFrame(rows("train", 20)))
    (p.d / "train.parquet").write_bytes(b"not parquet at all")
    p.fails(r"train\.parquet: could not be read as parquet")


# ---------------------------------------------------------------- params

def params_cli(p, *overrides):
    """`python -m textclf.params OVERRIDES` in a copy of conf/; (exit code, output)."""
    shutil.copytree(REPO / "conf", p.root / "conf", dirs_exist_ok=True)
    (p.root / ".dvc").mkdir(exist_ok=True)
    (p.root / "params.yaml").write_text("before: 1\n")
    proc = subprocess.run([sys.executable, "-m", "textclf.params", *overrides], cwd=p.root, text=True,
                          capture_output=True, env={**__import__("os").environ, "PYTHONPATH": str(REPO / "src")})
    assert (p.root / "params.yaml").read_text() == "before: 1\n"  # not replaced by a bad composition
    assert not (p.root / ".params.tmp.yaml").exists()
    return proc.returncode, proc.stdout + proc.stderr


@case
def case_params_wrong_type(p):
    code, out = params_cli(p, "classifier.C=abc")
    assert code == 1 and "classifier.C: Value 'abc' of type 'str' could not be converted to Float" in out


@case
def case_params_unknown_policy(p):
    from textclf.params import compose_checked

    shutil.copytree(REPO / "conf", p.root / "conf")
    with pytest.raises(ParamsError, match=r"data\.on_empty_text: Invalid value 'dorp', expected one of \[error, drop\]"):
        compose_checked(p.root, ["data.on_empty_text=dorp"])
    with pytest.raises(ParamsError,
                       match=r"data\.on_cross_split_duplicate: Invalid value 'skip', expected one of \[error, drop, keep\]"):
        compose_checked(p.root, ["data.on_cross_split_duplicate=skip"])


@case
def case_params_misspelt_key(p):
    code, out = params_cli(p, "data.on_emty_text=error")  # Hydra refuses a key conf/ lacks
    assert code == 1 and "Could not override 'data.on_emty_text'" in out
    code, out = params_cli(p, "+classifier.CC=1")  # added on purpose: the schema refuses it
    assert code == 1 and "unknown key 'classifier.CC'. Did you mean 'classifier.C'?" in out


@case
def case_params_yaml_edited(p):
    """`dvc exp run -S` and hand edits skip Hydra: the stage checks params.yaml before any work."""
    with pytest.raises(ParamsError, match=r"params\.yaml: unknown key 'data\.on_emty_text'\. Did you mean 'data\.on_empty_text'"):
        p.run(on_emty_text="drop")
    with pytest.raises(ParamsError, match=r"params\.yaml: data\.limits\.train: Value 'all' of type 'str'"):
        p.run(limits={"train": "all", "validation": None, "test": None})
    assert not (p.root / "data/prepared").exists() and not (p.root / "metrics").exists()


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input(name, tmp_path, monkeypatch):
    CASES[name](Project(tmp_path, monkeypatch))


def test_readme_table_lists_every_case():
    text = (REPO / "README.md").read_text()
    section = text.split("### Bad inputs and what happens", 1)[1].split("\n#", 1)[0]
    listed = re.findall(r"^\| `([a-z0-9_]+)` \|", section, flags=re.M)
    assert sorted(listed) == sorted(CASES), "README's table and tests/test_bad_inputs.py list different cases"


def test_every_conf_option_composes_valid_params(tmp_path):
    """Each option of each config group composes into params that pass the schema."""
    from textclf.params import compose, validate

    for group in ("data", "embedder", "llm", "task_specific", "profile", "device"):
        for f in sorted((REPO / "conf" / group).glob("*.yaml")):
            if f.stem == "defaults":
                continue
            extra = ["task_specific.model.path=/x"] if f.stem == "local" else []
            out = compose(REPO, [f"{group}={f.stem}", *extra], tmp_path / "params.yaml")
            validate(yaml.safe_load(out.read_text()), f"{group}={f.stem}")


def test_corrupt_embeddings_name_the_file_and_the_stage_to_rerun(tmp_path):
    from textclf.core.context import EMBEDDINGS, Context

    (tmp_path / EMBEDDINGS).mkdir(parents=True)
    (tmp_path / EMBEDDINGS / "test.npy").write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(ValueError, match=r"data/embeddings/test\.npy is not a readable \.npy file .*dvc repro -f embed"):
        Context(tmp_path, {}).embeddings("test")
