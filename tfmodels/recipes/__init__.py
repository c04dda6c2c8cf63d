"""One module per model family; each registers its MODEL names with :mod:`tfmodels.registry`."""
