"""The text2text approach: `approach.py` (fit, predict, predict_texts, labelled)."""
