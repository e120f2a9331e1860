"""textclf: a reproducible DVC + Hydra pipeline comparing text-classification approaches."""

__version__ = "0.1.0"


def load(name: str, repo=None):
    """The approach or ensemble `name` as the run in `repo` (default: around the current folder)
    trained it: `textclf.load("stack").predict(["a witty, moving film"])` (see textclf.inference)."""
    from .inference import load as _load  # lazy: `import textclf` stays light for every stage

    return _load(name, repo)
