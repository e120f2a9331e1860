"""The benchmark runner (textclf.benchmark.run): its config, what it records of a run, when it
skips a finished run, and the memory wrapper. The runs themselves are DVC experiments of the
pipeline the other tests cover; conf/benchmark/smoke.yaml runs the runner end to end in minutes."""

from __future__ import annotations

import json
import sys

import pytest

from textclf.benchmark import measure
from textclf.benchmark import run as bench

REPO = bench.ROOT


def test_every_benchmark_entry_composes_and_validates():
    """A typo in an override fails before the first hour of compute, naming the run."""
    for config in sorted((REPO / "conf/benchmark").glob("*.yaml")):
        for entry in bench.load_config(config):
            params = bench.check_composes(REPO, entry)
            assert params["data"]["name"] == entry.dataset
            for split, cap in entry.limits.items():
                assert params["data"]["limits"][split] == cap
    bad = bench.Entry("trec", overrides=("task_specific.finetune.epoch=1",))
    with pytest.raises(Exception, match="epoch"):
        bench.check_composes(REPO, bad)


def test_config_errors_say_what_is_expected(tmp_path):
    cases = {"runs: []": "expected `runs:`",
             "runs: [{profile: ci}]": "needs `dataset`",
             "runs: [{dataset: trec, limits: {tests: 5}}]": "keys are",
             "runs: [{dataset: trec}, {dataset: trec}]": "appear once"}
    for text, match in cases.items():
        (tmp_path / "b.yaml").write_text(text)
        with pytest.raises(bench.BenchmarkError, match=match):
            bench.load_config(tmp_path / "b.yaml")


def test_entry_overrides_are_dvc_set_flags_in_a_fixed_order():
    e = bench.Entry("hwu64", "default", {"test": 500, "train": 1500}, ("llm.max_text_tokens=256",))
    assert e.sets() == ["data=hwu64", "profile=default", "data.limits.train=1500", "data.limits.test=500",
                        "llm.max_text_tokens=256"]
    assert e.key == "hwu64/default"


def _summary():
    def approach(f1, significant, kind="x"):
        return {"macro_f1": f1, "macro_f1_ci_low": f1 - 0.02, "macro_f1_ci_high": f1 + 0.02, "accuracy": f1,
                "kind": kind, "vs_best": None if significant is None else
                {"significant": significant, "p_bootstrap": 0.01, "p_mcnemar": 0.02}}
    return {"approaches": {"a": approach(0.9, None), "b": approach(0.8, True), "c": approach(0.85, False)},
            "best": "a"}


def test_record_names_the_winner_and_whether_it_is_significantly_ahead_of_the_runner_up():
    data = {"label_names": ["x", "y", "z"],
            "splits": {s: {"rows": n, "rows_read": m} for s, n, m in
                       (("train", 100, 400), ("validation", 50, 50), ("test", 60, 60))}}
    entry = bench.Entry("d", limits={"train": 100})
    rec = bench.record(entry, _summary(), data, {"stack": {"chosen": "best_base:a"}},
                       {"wall_seconds": 1.0, "peak_rss_mb": 2.0}, "fp")
    assert rec["best"] == "a" and rec["runner_up"] == "c" and rec["best_significant"] is False
    assert rec["rows"] == {"train": 100, "validation": 50, "test": 60}
    assert rec["rows_available"]["train"] == 400 and rec["limits"] == {"train": 100, "validation": None, "test": None}
    assert rec["ensemble_choice"] == {"stack": "best_base:a"} and rec["labels"] == 3
    summary = _summary()
    summary["approaches"]["c"]["vs_best"]["significant"] = True
    assert bench.record(entry, summary, data, {}, {}, "fp")["best_significant"] is True
    # an ensemble that chose the winner as its best base is the winner, not the runner-up
    summary["approaches"]["c"]["macro_f1"] = 0.9
    rec = bench.record(entry, summary, data, {"c": {"chosen": "best_base:a"}}, {}, "fp")
    assert rec["runner_up"] == "b" and rec["best_significant"] is True


def test_benchmark_json_holds_the_runs_in_order_and_a_dict_dvc_metrics_can_diff(tmp_path):
    runs = [{"dataset": "d", "profile": p, "approaches": {"a": {"macro_f1": f}}, "fingerprint": "x"}
            for p, f in (("default", 0.5), ("best", 0.6))]
    path = bench.write_benchmark(tmp_path, runs, {"cores": 2})
    out = json.loads(path.read_text())
    assert [r["profile"] for r in out["runs"]] == ["default", "best"]
    assert "fingerprint" not in out["runs"][0]
    assert out["macro_f1"] == {"d": {"default": {"a": 0.5}, "best": {"a": 0.6}}}
    assert path.read_bytes() == bench.write_benchmark(tmp_path, runs, {"cores": 2}).read_bytes()


def test_fingerprint_moves_with_code_params_and_data_but_not_with_the_runner(tmp_path):
    for rel in ("src/textclf/x.py", "src/textclf/benchmark/run.py", "conf/a.yaml", "conf/benchmark/b.yaml",
                "dvc.yaml", "pyproject.toml", "data/d/train.jsonl"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text({"dvc.yaml": "stages: {a: {cmd: x}}\n", "pyproject.toml": '[project]\nname = "p"\n'}
                                    .get(rel, rel))
    entry, params = bench.Entry("d"), {"data": {"local_dir": "data/d"}}
    first = bench.fingerprint(tmp_path, entry, params)
    assert bench.fingerprint(tmp_path, entry, params) == first
    (tmp_path / "src/textclf/benchmark/run.py").write_text("changed")
    (tmp_path / "conf/benchmark/b.yaml").write_text("changed")
    (tmp_path / "dvc.yaml").write_text("metrics: [results/benchmark.json]\nstages: {a: {cmd: x}}\n")
    assert bench.fingerprint(tmp_path, entry, params) == first
    (tmp_path / "dvc.yaml").write_text("stages: {a: {cmd: y}}\n")
    assert bench.fingerprint(tmp_path, entry, params) != first
    (tmp_path / "dvc.yaml").write_text("stages: {a: {cmd: x}}\n")
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "p"\n')
    first = bench.fingerprint(tmp_path, entry, params)
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "p"\n[tool.pytest.ini_options]\naddopts = "-q"\n')
    assert bench.fingerprint(tmp_path, entry, params) == first  # a tool's settings
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "p"\ndependencies = ["x"]\n')
    assert bench.fingerprint(tmp_path, entry, params) != first
    (tmp_path / "dvc.yaml").write_text("stages: {a: {cmd: x}}\n")
    assert bench.fingerprint(tmp_path, bench.Entry("d", limits={"test": 5}), params) != first
    for rel in ("src/textclf/x.py", "data/d/train.jsonl"):
        before = bench.fingerprint(tmp_path, entry, params)
        (tmp_path / rel).write_text("changed")
        assert bench.fingerprint(tmp_path, entry, params) != before, rel
    # conf/ reaches a run through its composed params: another profile's file changes nothing,
    # a changed value in this run's params does.
    before = bench.fingerprint(tmp_path, entry, params)
    (tmp_path / "conf/a.yaml").write_text("changed")
    assert bench.fingerprint(tmp_path, entry, params) == before
    assert bench.fingerprint(tmp_path, entry, {**params, "llm": {"mode": "label"}}) != before


def test_measure_passes_the_exit_code_on_and_reports_the_largest_process(tmp_path):
    out = tmp_path / "rss.json"
    grow = "x = bytearray(200 * 1024 * 1024); import sys; sys.exit(3)"
    assert measure.main([str(out), "--", sys.executable, "-c", grow]) == 3
    rec = json.loads(out.read_text())
    assert rec["returncode"] == 3 and rec["peak_rss_kb"] > 200 * 1024
    assert measure.main([str(out)]) == 2


def test_a_benchmark_with_entries_not_run_yet_says_so(tmp_path):
    from textclf.benchmark import leaderboard

    path = bench.write_benchmark(tmp_path, [], {"cores": 2}, not_run=["rotten_tomatoes/best"])
    out = json.loads(path.read_text())
    assert out["not_run"] == ["rotten_tomatoes/best"]
    assert "**Not run yet** (in the benchmark config, no recorded run): `rotten_tomatoes/best`" in leaderboard.render(out)
    assert "not_run" not in json.loads(bench.write_benchmark(tmp_path, [], {}).read_text())
