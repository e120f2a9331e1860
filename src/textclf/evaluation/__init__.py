"""Evaluation: metrics, prediction files, paired comparisons and ensembles over approaches' scores."""
