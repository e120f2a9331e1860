"""results/README.md from results/benchmark.json (textclf.benchmark.leaderboard): deterministic,
the winner in bold with its significance mark, mean ranks with ties, `--check`."""

import copy
import json
from pathlib import Path

from textclf.benchmark import leaderboard
from textclf.benchmark.leaderboard import main, mean_ranks, ranks, render

ROOT = Path(__file__).resolve().parents[1]


def _a(f1, low, high, significant=None, p_boot=None, p_mcn=None, kind="x"):
    return {"macro_f1": f1, "ci_low": low, "ci_high": high, "accuracy": f1, "kind": kind,
            "significant_vs_best": significant, "p_bootstrap": p_boot, "p_mcnemar": p_mcn}


def benchmark():
    """Two runs. trec: stack wins, significantly ahead of embed_lr; centroid and label_desc tie;
    no llm. rotten_tomatoes: llm wins, not significantly ahead of stack."""
    trec = {
        "dataset": "trec", "profile": "default", "overrides": ["data.limits.train=1500", "llm.max_text_tokens=256"],
        "limits": {"train": 1500, "validation": None, "test": None},
        "rows": {"train": 1500, "validation": 500, "test": 500},
        "rows_available": {"train": 4952, "validation": 500, "test": 500},
        "test_rows": 500, "labels": 6, "wall_seconds": 754.4, "peak_rss_mb": 2311.6,
        "load_avg": {"before": [0.5, 0.61, 0.7], "after": [1.95, 1.8, 1.2]},
        "approaches": {
            "stack": _a(0.8996, 0.8811, 0.9172),
            "embed_lr": _a(0.8518, 0.8311, 0.8723, True, 0.001, 0.004),
            "centroid": _a(0.8, 0.78, 0.82, True, 0.0, 0.0),
            "label_desc": _a(0.8, 0.77, 0.83, True, 0.0, 0.0),
        },
        "baselines": {"majority": {"macro_f1": 0.0601, "ci_low": 0.05, "ci_high": 0.07},
                      "stratified": {"macro_f1": 0.1702, "ci_low": 0.14, "ci_high": 0.2}},
        "best": "stack", "best_significant": True, "runner_up": "embed_lr",
        "ensemble_choice": {"stack": "stack"},
    }
    rt = {
        "dataset": "rotten_tomatoes", "profile": "best", "overrides": [],
        "limits": {"train": None, "validation": None, "test": None},
        "rows": {"train": 8530, "validation": 1066, "test": 1066},
        "test_rows": 1066, "labels": 2, "wall_seconds": 3725.0, "peak_rss_mb": 4100.2,
        "load_avg": {"before": [2.0, 2.0, 2.0], "after": [2.1, 2.0, 1.9]},
        "approaches": {
            "llm": _a(0.9, 0.88, 0.92),
            "stack": _a(0.89, 0.87, 0.91, False, 0.3, 0.4),
            "embed_lr": _a(0.85, 0.83, 0.87, True, 0.01, 0.02),
            "centroid": _a(0.84, 0.82, 0.86, True, 0.0, 0.0),
            "label_desc": _a(0.82, 0.8, 0.84, True, 0.0, 0.0),
        },
        "best": "llm", "best_significant": False, "runner_up": "stack",
        "ensemble_choice": {"stack": "best_base:embed_lr"},
        "note": "the fine-tune on a 2,000-row sample",
    }
    return {"machine": {"cpu": "Test CPU", "cores": 2, "memory_gb": 7.75, "python": "3.11.2", "torch": "2.13.0",
                        "gpu": False, "torch_threads": 2},
            "macro_f1": {}, "runs": [trec, rt]}


def _row(text, first_cell):
    return next(line for line in text.splitlines() if line.startswith(f"| {first_cell} |"))


def test_render_is_deterministic():
    b = benchmark()
    first = render(b)
    assert render(copy.deepcopy(b)) == first
    # Key order in the JSON does not matter either (benchmark.json is written with sort_keys).
    shuffled = json.loads(json.dumps(b, sort_keys=True))
    assert render(shuffled).encode() == first.encode()
    assert first.endswith("\n") and not first.endswith("\n\n")


def test_header_and_machine():
    text = render(benchmark())
    head = "\n".join(text.splitlines()[:6])
    assert "python -m textclf.benchmark.leaderboard" in head and "benchmark.json" in head
    assert "do not edit by hand" in head
    assert "Machine: Test CPU, 2 cores, 7.8 GB memory, Python 3.11.2, torch 2.13.0, gpu no, torch_threads 2." in text


def test_winner_bold_with_significance_mark():
    text = render(benchmark())
    assert "| trec (default) | rotten_tomatoes (best) |" in text
    stack = _row(text, "`stack`")
    # The trec winner, significantly ahead; in rotten_tomatoes llm won, not significantly (*).
    assert "**0.8996** [0.8811, 0.9172] ✓" in stack
    assert "| 0.8900 [0.8700, 0.9100] |" in stack
    llm = _row(text, "`llm`")
    assert "**0.9000** [0.8800, 0.9200] *" in llm
    assert "✓ = significantly ahead" in text and "* = not significantly ahead" in text
    # Only the winners are bold.
    assert text.count("**0.") == 2


def test_missing_approach_is_a_dash():
    llm = _row(render(benchmark()), "`llm`")
    assert llm.split(" | ")[1] == "—"  # no llm in trec


def test_ranks_average_ties():
    r = ranks(benchmark()["runs"][0]["approaches"])
    assert r == {"stack": 1.0, "embed_lr": 2.0, "centroid": 3.5, "label_desc": 3.5}
    mr = mean_ranks(benchmark()["runs"])
    assert mr["centroid"] == ((3.5 + 4) / 2, 2, 0)
    assert mr["label_desc"] == ((3.5 + 5) / 2, 2, 0)
    assert mr["llm"] == (1.0, 1, 1)
    assert mr["stack"] == (1.5, 2, 1)
    text = render(benchmark())
    section = text.split("## Mean rank", 1)[1]
    assert "| `centroid` | 3.75 | 2 of 2 | 0 |" in section
    assert "| `llm` | 1.00 | 1 of 2 | 1 |" in section
    # Rows by mean rank: llm, stack, embed_lr, centroid, label_desc.
    order = [line.split(" | ")[0][2:] for line in section.splitlines() if line.startswith("| `")]
    assert order == ["`llm`", "`stack`", "`embed_lr`", "`centroid`", "`label_desc`"]


def test_runs_table():
    text = render(benchmark())
    trec = _row(text, "`trec`: train capped at 1,500 of 4,952 (seeded, stratified)")
    assert "| 1,500 / 500 / 500 |" in trec and "| 6 |" in trec
    assert "`llm.max_text_tokens=256`" in trec and "data.limits" not in trec
    assert "| 12m34s |" in trec and "| 2,312 MB |" in trec
    assert "0.50 / 0.61 / 0.70 → 1.95 / 1.80 / 1.20" in trec
    assert "`stack`: the stacked meta-learner" in trec
    assert "majority 0.0601 [0.0500, 0.0700]; stratified 0.1702 [0.1400, 0.2000]" in trec
    assert "significantly ahead of `embed_lr` (bootstrap p=0.001, McNemar p=0.004)" in trec
    rt = _row(text, "`rotten_tomatoes`")
    assert "| 1h02m05s |" in rt and "`stack`: its best base, `embed_lr`" in rt
    assert "not significantly ahead of `stack`" in rt
    assert rt.split(" | ")[-1] == "— |"  # no baselines recorded
    assert "- rotten_tomatoes (best): the fine-tune on a 2,000-row sample" in text


def test_cap_without_rows_available_or_not_reached():
    b = benchmark()
    del b["runs"][0]["rows_available"]
    assert "`trec`: train capped at 1,500 (seeded, stratified) |" in render(b)
    b["runs"][0]["rows_available"] = {"train": 1200, "validation": 500, "test": 500}
    b["runs"][0]["rows"]["train"] = 1200
    assert "`trec`: train cap 1,500 not reached (1,200 rows, all kept) |" in render(b)


def test_stack_left_out_and_average():
    b = benchmark()
    b["runs"][0]["ensemble_choice"] = {"stack": "average"}
    b["runs"][0]["stack_skipped"] = {"stack": "a class has under 3 validation rows"}
    assert "`stack`: the average of its bases (stack left out: a class has under 3 validation rows)" in render(b)


def test_no_runner_up_no_mark():
    b = {"machine": {}, "runs": [benchmark()["runs"][1]]}
    b["runs"][0]["approaches"] = {"llm": b["runs"][0]["approaches"]["llm"]}
    b["runs"][0].update(runner_up=None, best_significant=False)
    text = render(b)
    assert "| **0.9000** [0.8800, 0.9200] |" in text and "`llm` (no runner-up)" in text


def test_check_detects_a_hand_edit(tmp_path, capsys):
    (tmp_path / "benchmark.json").write_text(json.dumps(benchmark(), indent=2, sort_keys=True) + "\n")
    assert main(["--results", str(tmp_path), "--check"]) == 1  # no README yet
    assert "does not exist" in capsys.readouterr().err
    assert main(["--results", str(tmp_path)]) == 0
    readme = tmp_path / "README.md"
    written = readme.read_bytes()
    assert main(["--results", str(tmp_path)]) == 0
    assert readme.read_bytes() == written  # regenerating gives the same bytes
    assert main(["--results", str(tmp_path), "--check"]) == 0
    readme.write_text(readme.read_text().replace("0.8518", "0.8618"))
    capsys.readouterr()
    assert main(["--results", str(tmp_path), "--check"]) == 1
    err = capsys.readouterr().err
    assert "differs from what benchmark.json renders" in err and "python -m textclf.benchmark.leaderboard" in err
    assert "0.8618" in err  # the diff shows the edit


def test_committed_readme_matches_committed_json():
    """results/README.md is what results/benchmark.json renders; neither exists before the first benchmark."""
    source, readme = ROOT / "results" / "benchmark.json", ROOT / "results" / "README.md"
    if source.is_file():
        assert readme.is_file(), f"{readme} missing: run `python -m textclf.benchmark.leaderboard`"
        assert readme.read_bytes() == leaderboard.render(json.loads(source.read_text())).encode("utf-8"), (
            f"{readme} is not what {source} renders: run `python -m textclf.benchmark.leaderboard`")
    else:
        assert not readme.exists(), f"{readme} exists without {source}"
