"""Evaluation metrics shared by recipes: BLEU, perplexity, ..."""
