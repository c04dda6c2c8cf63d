"""tf.data pipelines: data sources (embedded, TFDS, synthetic), preprocessing and splits."""
