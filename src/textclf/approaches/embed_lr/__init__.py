"""The embed_lr approach: `approach.py` (fit, predict, predict_texts, labelled)."""
