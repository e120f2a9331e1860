"""The centroid approach: `approach.py` (fit, predict, predict_texts, labelled)."""
