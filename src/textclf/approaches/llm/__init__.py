"""The llm approach: `approach.py` is its entry (fit, predict, predict_texts, labelled)."""
