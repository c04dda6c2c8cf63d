"""tfmodels: the notes' models as Keras 3 models with tf.data pipelines and TF-Serving exports.

Example:
    >>> import tfmodels
    >>> "mnist_cnn" in tfmodels.list_models()
    True
    >>> model = tfmodels.build("mnist_cnn")          # a keras.Model
    >>> result = tfmodels.train("mnist_cnn", preset="tiny")   # doctest: +SKIP
    >>> tfmodels.verify_export(result.export_path)            # doctest: +SKIP
"""

from __future__ import annotations

from tfmodels.quiet_import import quiet_tensorflow_start

with quiet_tensorflow_start():  # TensorFlow's C++ start-up INFO lines stay hidden
    # Import the ``export`` subpackage before defining the ``export`` function below: importing a
    # submodule sets the package attribute of the same name, so a later first import of
    # ``tfmodels.export`` would otherwise replace the function with the module.
    import tfmodels.export as _export_package  # noqa: F401


def _register_keras_objects() -> None:
    """Imports every layer, model and metric module, so their registered classes are known to Keras.

    ``keras.saving.load_model("model.keras")`` after a plain ``import tfmodels`` then finds every
    custom class (``OneHot``, ``TiedEmbedding``, ``BertPretrainer``, a detector's ``Detector`` and
    box coder, ...), whichever recipe saved it.
    """
    import importlib
    import pkgutil

    for package_name in ("tfmodels.layers", "tfmodels.models", "tfmodels.metrics", "tfmodels.recipes"):
        package = importlib.import_module(package_name)
        for module in pkgutil.iter_modules(package.__path__):
            importlib.import_module(f"{package_name}.{module.name}")


_register_keras_objects()

__version__ = "0.1.0"


def list_models() -> list[str]:
    """All registered MODEL names."""
    from tfmodels import registry

    return registry.names()


def build(name: str, preset: str = "default", **overrides):
    """Builds MODEL ``name`` as an untrained ``keras.Model`` (config from ``preset`` + overrides)."""
    from tfmodels import registry
    from tfmodels.config import resolve

    recipe = registry.get(name)
    return recipe.model(resolve(recipe.config, preset, overrides))


def train(name: str, preset: str = "default", data=None, strategy=None, overrides=None, **kwargs):
    """Trains, evaluates and exports MODEL ``name``; see :func:`tfmodels.training.trainer.train`."""
    from tfmodels.training.trainer import train as _train

    return _train(name, preset, data, strategy, overrides, **kwargs)


def export(run_dir, export_root="saved_models"):
    """Exports a finished run as a new version ``export_root/<model>/<version>``, from the run folder alone."""
    from tfmodels.training.trainer import export_run

    return export_run(run_dir, export_root)


def verify_export(path):
    """Checks an export with stock TensorFlow only; see :func:`tfmodels.export.verify_export`."""
    from tfmodels.export import verify_export as _verify

    return _verify(path)
