import json

from textclf.core.io import dump_json
from textclf.evaluation.metrics import classification_metrics


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


def test_outputs_are_replaced_whole_never_truncated(tmp_path, monkeypatch):
    """A write that fails midway (disk full) leaves the previous file intact and no temp file."""
    import json
    from pathlib import Path

    import pytest

    from textclf.core.io import dump_json

    out = tmp_path / "metrics" / "m.json"
    dump_json({"f1": 0.5}, out)
    real_write = Path.write_text

    def disk_full(self, text, *a, **kw):
        real_write(self, text[: len(text) // 2], *a, **kw)  # half written, then the disk is full
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "write_text", disk_full)
    with pytest.raises(OSError, match="No space left"):
        dump_json({"f1": 0.75, "rows": list(range(100))}, out)
    monkeypatch.undo()
    assert json.loads(out.read_text()) == {"f1": 0.5}
    assert sorted(p.name for p in out.parent.iterdir()) == ["m.json"]
    dump_json({"f1": 0.75}, out)
    assert json.loads(out.read_text()) == {"f1": 0.75}
