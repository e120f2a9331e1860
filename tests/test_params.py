import yaml

from helpers import REPO
from textclf.params import compose


def composed(tmp_path, *overrides):
    out = compose(REPO, list(overrides), tmp_path / "params.yaml")
    return yaml.safe_load(out.read_text())


def test_committed_params_are_the_default_composition(tmp_path):
    """params.yaml (what `dvc repro` reads) must equal conf/ composed with no overrides."""
    assert composed(tmp_path) == yaml.safe_load((REPO / "params.yaml").read_text())


def test_default_profile_is_the_seed_setup(tmp_path):
    p = composed(tmp_path)
    assert p["embedder"]["name"] == "all-mpnet-base-v2" and p["device"]["name"] == "cpu"
    assert set(p["data"]["limits"].values()) == {None}
    assert {"embed_lr", "centroid", "label_desc"} <= set(p["approaches"])


def test_groups_overrides_and_profiles(tmp_path):
    p = composed(tmp_path, "profile=ci", "classifier.C=0.5", "device=auto")
    assert p["embedder"]["name"] == "all-MiniLM-L6-v2"
    assert p["data"]["limits"] == {"train": 400, "validation": 100, "test": 200}
    assert p["classifier"]["C"] == 0.5 and p["device"]["name"] == "auto"
    p = composed(tmp_path, "data=bbc_news", "~approach@approaches.label_desc")
    assert p["data"]["label_names"] is None and p["data"]["name"] == "bbc_news" and "label_desc" not in p["approaches"]


def test_a_null_data_path_is_refused_before_dvc_renders_dvc_yaml(tmp_path):
    import pytest

    from textclf.params import check

    check(composed(tmp_path))
    with pytest.raises(SystemExit, match="data.local_dir is null: the data stage depends on that folder"):
        check(composed(tmp_path, "data.local_dir=null"))


def test_a_dataset_config_gets_every_data_default(tmp_path):
    """conf/data/hwu64.yaml gives only source, path and columns: every other data key comes
    from conf/data/defaults.yaml, and the LLM prompts get the generic task wording."""
    defaults = yaml.safe_load((REPO / "conf/data/defaults.yaml").read_text())
    p = composed(tmp_path, "data=hwu64")
    assert set(p["data"]) == set(defaults)
    assert p["data"]["label_names"] is None and p["data"]["label_descriptions"] is None
    assert p["data"]["label_description_template"] == "{label}" and p["data"]["name"] == "hwu64"
    assert p["data"]["task"] == {"instruction": "You classify texts into categories.", "item": "text", "item_label": "Text"}
    assert p["llm"]["prompts"] == {
        "label_system": "You classify texts into categories. Answer with exactly one word, one of: {labels}.",
        "score_system": "You rate how {positive} a text is. Answer with only a number between 0 and 1 "
                        "(0 = not {positive} at all, 1 = clearly {positive}).",
        "user": "Text: {text}",
    }
    # Every dataset config names only keys the defaults know (a typo would add a new one).
    for path in (REPO / "conf/data").glob("*.yaml"):
        assert set(yaml.safe_load(path.read_text())) <= set(defaults), path.name


def test_rotten_tomatoes_prompts_are_the_seed_wording(tmp_path):
    """Byte-identical to the prompts before they came from data.task: the LLM reply cache and
    its metrics stay valid."""
    for llm in ("qwen", "smollm2", "groq"):
        assert composed(tmp_path, f"llm={llm}")["llm"]["prompts"] == {
            "label_system": "You classify movie reviews by sentiment. Answer with exactly one word, one of: {labels}.",
            "score_system": "You rate how {positive} a movie review is. Answer with only a number between 0 and 1 "
                            "(0 = not {positive} at all, 1 = clearly {positive}).",
            "user": "Review: {text}",
        }


def test_label_words_reach_the_llm_group(tmp_path):
    """data.label_words is set once, in the data config: the llm group (whose params the llm
    stages depend on) gets the same mapping, so editing it reruns the LLM."""
    assert composed(tmp_path)["llm"]["label_words"] is None
    p = composed(tmp_path, "data.label_words={negative:'a pan',positive:'a rave'}")
    assert p["data"]["label_words"] == p["llm"]["label_words"] == {"negative": "a pan", "positive": "a rave"}
