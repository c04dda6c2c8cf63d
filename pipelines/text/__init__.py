"""Text pipelines: corpora, normalisation, vocabularies, tokenisers, masking, n-gram statistics."""
