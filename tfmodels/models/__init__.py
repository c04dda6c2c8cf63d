"""Architectures: pure builders returning ``keras.Model`` (no data, no training, no export)."""
