import numpy as np
import pytest

from textclf.approaches.base import cosine_predict, module_for
from textclf.approaches.centroid.approach import class_means
from textclf.approaches.embed_lr.approach import build
from textclf.approaches.embed_lr.settings import Settings as Classifier
from textclf.approaches.label_desc.approach import descriptions_for
from textclf.core.settings import ParamsError, typed


def classifier(**settings) -> Classifier:
    """The `classifier` group as embed_lr reads it: typed by its settings module."""
    return typed(Classifier, settings, prefix="classifier")


def test_cosine_to_class_means():
    rng = np.random.default_rng(0)
    centers = np.array([[1.0, 0, 0], [0, 1.0, 0]])
    y = np.repeat([0, 1], 50)
    x = centers[y] + 0.1 * rng.standard_normal((100, 3))
    means = class_means(x, y, 2)
    pred = cosine_predict(x, means)
    assert (pred.pred == y).mean() > 0.95 and pred.scores.shape == (100, 2) and pred.score_kind == "similarity"
    with pytest.raises(ValueError, match=r"no training rows for class index\(es\) \[2\]"):
        class_means(x, y, 3)


def test_label_descriptions_are_checked_against_labels():
    assert descriptions_for(["neg", "pos"], {"neg": "bad", "pos": ["good", "great"]}) == [["bad"], ["good", "great"]]
    with pytest.raises(ValueError, match=r"labels without descriptions \['pos'\].*unknown labels \['positive'\]"):
        descriptions_for(["neg", "pos"], {"neg": ["bad"], "positive": ["good"]})
    with pytest.raises(ValueError, match="non-empty strings"):
        descriptions_for(["neg"], {"neg": ["  "]})


def test_label_descriptions_from_the_template():
    labels = ["alarm_query", "play_music"]
    assert descriptions_for(labels, None, "{label}") == [["alarm query"], ["play music"]]
    assert descriptions_for(labels, None, "A request: {label} {x}") == [["A request: alarm query {x}"],
                                                                        ["A request: play music {x}"]]
    # Given descriptions win over the template.
    assert descriptions_for(["neg"], {"neg": "bad"}, "{label}") == [["bad"]]
    with pytest.raises(ValueError, match=r"data.label_description_template must contain \{label\}, got 'A request'"):
        descriptions_for(labels, None, "A request")
    with pytest.raises(ValueError, match=r"data.label_description_template must contain \{label\}, got None"):
        descriptions_for(labels, None, None)
    with pytest.raises(ValueError, match=r"data.label_descriptions: labels without descriptions \['play_music'\].*"
                                         r"set data.label_descriptions to null"):
        descriptions_for(labels, {"alarm_query": ["alarm"]}, "{label}")


def test_label_words_feed_the_template_and_are_checked():
    from textclf.data.prepared import label_words

    labels = ["ham", "spam", "play_music"]
    words = {"ham": "a personal message", "spam": "an unsolicited advertisement"}
    assert label_words(labels, words) == ["a personal message", "an unsolicited advertisement", "play_music"]
    assert label_words(labels, None) == labels
    # The template takes the words; an unmapped label keeps its name, underscores as spaces.
    assert descriptions_for(labels, None, "This is {label}.", words) == [
        ["This is a personal message."], ["This is an unsolicited advertisement."], ["This is play music."]]
    with pytest.raises(ValueError, match=r"data.label_words: \['hamm'\] are not labels of this dataset"):
        label_words(labels, {"hamm": "x"})
    with pytest.raises(ValueError, match=r"data.label_words: \['play_music'\] would name two labels"):
        label_words(labels, {"ham": "play_music"})
    with pytest.raises(ValueError, match="need non-empty strings"):
        label_words(labels, {"ham": " "})


def test_logreg_params_and_registry():
    clf = build(classifier(C=0.5, max_iter=50, seed=1, class_weight=None))
    assert (clf.C, clf.max_iter, clf.random_state, clf.class_weight) == (0.5, 50, 1, None)
    assert build(classifier(seed=1, class_weight="balanced")).class_weight == "balanced"  # the value sklearn takes
    with pytest.raises(ParamsError, match=r"classifier.class_weight: Invalid value 'auto', expected one of \[balanced\]"):
        classifier(C=0.5, max_iter=50, seed=1, class_weight="auto")
    with pytest.raises(ParamsError, match="classifier.seed: .*missing mandatory value: seed"):  # conf/ holds it: ${seed}
        classifier(C=0.5, max_iter=50)
    assert hasattr(module_for("embed_lr"), "fit") and hasattr(module_for("label_desc"), "predict")
    with pytest.raises(KeyError, match="unknown approach kind 'nope'"):
        module_for("nope")


def test_balanced_class_weight_lifts_the_rare_class():
    # a rare class (20 of 1,020 rows) that overlaps a common one: unweighted LR mostly ignores it
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], [1000, 20])
    x = rng.standard_normal((1020, 2)) + np.array([[0.0, 0.0], [1.5, 0.0]])[y]
    recall = {}
    for cw in (None, "balanced"):
        clf = build(classifier(C=1.0, max_iter=1000, seed=0, class_weight=cw)).fit(x, y)
        recall[cw] = (clf.predict(x)[y == 1] == 1).mean()
    assert recall[None] < 0.3 and recall["balanced"] > 0.6


def test_a_damaged_saved_model_names_the_file_and_the_stage(tmp_path):
    """A damaged joblib file (garbage, or a real one cut short) fails with its path and the
    command that rebuilds it: embed_lr's classifier (fit@) and the stack's meta-model (ensemble@)."""
    import json
    from types import SimpleNamespace

    import joblib

    from textclf.approaches.embed_lr import approach as embed_lr
    from textclf.serving.inference import Classifier

    model_dir = tmp_path / "models" / "embed_lr"
    model_dir.mkdir(parents=True)
    saved = model_dir / "classifier.joblib"
    clf = build(classifier(C=1.0, max_iter=100, seed=0, class_weight=None)).fit(np.eye(4), [0, 1, 0, 1])
    joblib.dump(clf, saved)
    assert embed_lr.score(model_dir, np.eye(4)).pred.tolist() == [0, 1, 0, 1]
    whole = saved.read_bytes()
    for damaged in (whole[: len(whole) // 2], b"\x00garbage" * 100):
        saved.write_bytes(damaged)
        with pytest.raises(RuntimeError, match=rf"{saved} is damaged.*`dvc repro -f fit@embed_lr`"):
            embed_lr.score(model_dir, np.eye(4))

    stack_dir = tmp_path / "models" / "stack"
    stack_dir.mkdir()
    (stack_dir / "meta.json").write_text(json.dumps({"bases": [{"base": "embed_lr"}]}))
    (stack_dir / "meta.joblib").write_bytes(whole[:100])
    ctx = SimpleNamespace(params={"ensembles": {"stack": {}}}, label_names=["neg", "pos"], root=tmp_path,
                          model_dir=lambda name: tmp_path / "models" / name)
    with pytest.raises(RuntimeError, match=rf"{stack_dir / 'meta.joblib'} is damaged.*`dvc repro -f ensemble@stack`"):
        Classifier(ctx, "stack").predict(["a review"])
