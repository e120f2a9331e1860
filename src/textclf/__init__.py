"""textclf: a reproducible DVC + Hydra pipeline comparing text-classification approaches."""

__version__ = "0.1.0"



def __getattr__(name: str):
    """`textclf.load(name, repo=None)`: an approach or ensemble as its run trained it, e.g.
    `textclf.load("stack").predict(["a witty, moving film"])` (textclf.serving.inference). Looked up on
    first use (PEP 562): every stage imports this package, and none of them runs inference, so
    neither its import cost nor an edit to inference.py reaches them."""
    if name in ("load", "Classifier", "Result"):
        import importlib

        return getattr(importlib.import_module("textclf.serving.inference"), name)
    raise AttributeError(f"module 'textclf' has no attribute {name!r}")
