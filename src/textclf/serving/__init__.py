"""Serving: classify new texts with a trained approach (Python API and the `textclf` CLI)."""
