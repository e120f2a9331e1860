import json

from textclf.metrics import classification_metrics, dump_json


def test_metrics_known_values(tmp_path):
    m = classification_metrics([0, 0, 1, 1], [0, 1, 1, 1], ["neg", "pos"])
    assert m["accuracy"] == 0.75 and m["rows"] == 4
    assert m["per_class"]["neg"] == {"precision": 1.0, "recall": 0.5, "f1": 0.666667, "support": 2}
    assert m["per_class"]["pos"]["precision"] == 0.666667
    assert m["macro"]["f1"] == round((2 / 3 + 0.8) / 2, 6)
    assert m["confusion_matrix"] == {"labels": ["neg", "pos"], "matrix": [[1, 1], [0, 2]]}
    dump_json(m, tmp_path / "a.json")
    dump_json(json.loads((tmp_path / "a.json").read_text()), tmp_path / "b.json")
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()


def test_unparseable_is_counted_and_never_a_class():
    m = classification_metrics([0, 1, 1], [0, -1, 1], ["neg", "pos"])
    assert m["unparseable"] == 1 and m["accuracy"] == round(2 / 3, 6)
    assert m["per_class"]["pos"]["recall"] == 0.5 and m["per_class"]["neg"]["precision"] == 1.0
    assert m["confusion_matrix"]["labels"] == ["neg", "pos", "unparseable"]
    assert m["confusion_matrix"]["matrix"] == [[1, 0, 0], [0, 1, 1]]
