"""Evaluation metrics shared by recipes: BLEU, perplexity, ..."""
from tfmodels.metrics.bleu import bleu, corpus_bleu
from tfmodels.metrics.perplexity import Perplexity
