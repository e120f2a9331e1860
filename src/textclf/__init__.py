"""textclf: a reproducible DVC + Hydra pipeline comparing text-classification approaches."""

__version__ = "0.1.0"
