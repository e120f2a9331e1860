"""profile=best composes: mpnet fine-tune, the 1.5B LLM (8 examples, two system prompts chosen between on
validation) on validation too, the stack over all five."""

import yaml

from helpers import REPO
from textclf.core.settings import shared
from textclf.evaluation.ensemble_inputs import check_bases
from textclf.params import check, compose, validate


def _compose(tmp_path, *overrides):
    return yaml.safe_load(compose(REPO, list(overrides), tmp_path / "params.yaml").read_text())


def test_best_profile_composes_with_the_expected_approaches(tmp_path):
    default, best = _compose(tmp_path), _compose(tmp_path, "profile=best")
    validate(best, "profile=best")  # what `python -m textclf.params profile=best` checks
    check(best)
    assert set(best["approaches"]) == set(default["approaches"]) == {"embed_lr", "centroid", "label_desc", "task_specific", "llm"}
    assert best["task_specific"]["mode"] == "finetune"
    assert best["task_specific"]["base"] == default["embedder"]  # the packaged mpnet, resolved offline like the embedder
    assert best["task_specific"]["finetune"]["batch_size"] == 16 and best["task_specific"]["finetune"]["epochs"] == 2
    assert best["approaches"]["llm"]["splits"] == ["validation", "test"]
    assert best["llm"]["model"]["name"] == "qwen2.5-coder-1.5b-instruct-q4_k_m"  # conf/llm/qwen_1_5b.yaml
    # 8 examples, and a second system prompt chosen between at fit; the rest (seed prompt, mode, client) as default
    assert best["llm"]["few_shot"] == {**default["llm"]["few_shot"], "k": 8}
    assert best["llm"]["prompts"] == default["llm"]["prompts"]
    second = best["llm"]["select"]["label_system"]
    assert len(second) == 1 and second[0] != best["llm"]["prompts"]["label_system"] and "{labels}" in second[0]
    assert default["data"]["task"]["item"] in second[0]  # interpolated from the data config, nothing movie-specific
    assert best["llm"]["select"]["few_shot_k"] is None and best["llm"]["select"]["max_rows"] == 300
    same = ("model", "api_model", "few_shot", "select")
    assert {k: v for k, v in best["llm"].items() if k not in same} == {
        k: v for k, v in default["llm"].items() if k not in same}
    typed = shared(best)
    assert check_bases("stack", typed.ensembles["stack"], typed.approaches) == list(best["approaches"])
    # everything else is the default run's
    for key in ("data", "embedder", "classifier", "compare", "seed"):
        assert best[key] == default[key], key
    assert ({k: v for k, v in best["approaches"].items() if k != "llm"}
            == {k: v for k, v in default["approaches"].items() if k != "llm"})
