import subprocess
import sys
import textwrap

import pytest

import tfmodels
from tfmodels import registry


def test_every_first_model_is_registered():
    names = tfmodels.list_models()
    for name in ("mnist_mlp", "mnist_cnn", "lenet5"):
        assert name in names
    assert all(description for _, description in registry.describe())


def test_unknown_model_names_close_matches():
    with pytest.raises(registry.UnknownModelError, match="unknown MODEL 'mnist_cnnn'.*Did you mean: mnist_cnn"):
        registry.get("mnist_cnnn")


def test_build_returns_an_untrained_keras_model_with_overrides():
    model = tfmodels.build("lenet5", activation="relu")
    assert model.count_params() == 61_706
    assert model.get_layer("c1").activation.__name__ == "relu"


def test_import_tfmodels_registers_every_custom_keras_class_for_load_model():
    # A fresh process: `import tfmodels` alone must make every registered class loadable.
    code = textwrap.dedent("""
        import importlib, pkgutil, keras, tfmodels
        def ours():
            return {k for k in keras.saving.get_custom_objects() if k.startswith("tfmodels>")}
        after_import = ours()
        for name in ("tfmodels.layers", "tfmodels.models", "tfmodels.metrics"):
            for m in pkgutil.iter_modules(importlib.import_module(name).__path__):
                importlib.import_module(f"{name}.{m.name}")
        print(sorted(ours() - after_import), len(after_import))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out[0] == "[]" and int(out[-1]) > 10  # nothing registered late; OneHot, BertPretrainer, ... known
