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
