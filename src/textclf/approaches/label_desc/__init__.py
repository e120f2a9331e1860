"""The label_desc approach: `approach.py` (fit, predict, predict_texts, labelled)."""
