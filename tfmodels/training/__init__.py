"""The one trainer: Keras ``fit`` under a distribution strategy, with checkpoints and logs."""
