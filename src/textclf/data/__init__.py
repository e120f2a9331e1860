"""Data: loading a labelled dataset (hub or local mirror), checking it, and the prepared splits on disk."""
