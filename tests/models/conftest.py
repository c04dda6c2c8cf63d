"""Helpers shared by the image-classifier tests, as fixtures: parity set-up, training, .keras round trips."""

import keras
import pytest


@pytest.fixture
def randomize_batch_norm():
    """``randomize(model, rng)``: random statistics and affine terms in every BatchNormalization.

    With the defaults (γ = 1, β = 0, mean 0, variance 1) BN is nearly the identity, so a parity
    test with copied weights would not see a misplaced BN weight or a different epsilon.
    """

    def randomize(model: keras.Model, rng) -> None:
        draws = {
            "gamma": lambda shape: rng.uniform(0.5, 1.5, shape),
            "beta": lambda shape: rng.normal(0, 0.1, shape),
            "moving_mean": lambda shape: rng.normal(0, 0.1, shape),
            "moving_variance": lambda shape: rng.uniform(0.5, 1.5, shape),
        }
        for layer in model.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                for attribute, draw in draws.items():
                    variable = getattr(layer, attribute)
                    if variable is not None:  # gamma is None with scale=False, beta with center=False
                        variable.assign(draw(variable.shape))

    return randomize


@pytest.fixture
def keras_round_trip(tmp_path):
    """``round_trip(model)``: saves ``model`` to a ``.keras`` file and returns the model loaded from it."""

    def round_trip(model: keras.Model) -> keras.Model:
        path = tmp_path / f"{model.name}.keras"
        model.save(path)
        return keras.saving.load_model(path)

    return round_trip


@pytest.fixture
def train_on_one_batch():
    """``train(model, x, y, learning_rate, steps, training=False)`` → (initial loss, final loss).

    Compiles ``model`` with Adam and sparse cross-entropy on logits, takes ``steps`` Adam steps on
    the one batch ``(x, y)`` and returns the loss before and after, computed with ``training``.
    """

    def train(model: keras.Model, x, y, learning_rate: float, steps: int, training: bool = False):
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        model.compile(keras.optimizers.Adam(learning_rate), loss)
        initial = float(loss(y, model(x, training=training)))
        for _ in range(steps):
            model.train_on_batch(x, y)
        return initial, float(loss(y, model(x, training=training)))

    return train


@pytest.fixture
def greedy_translation_checked():
    """``translate(model, decoder_step, source, bos, eos, max_length)`` → greedy ``translate`` output, checked.

    Greedy decoding of an encoder–decoder must write, at every step, the argmax (never ``<pad>``
    id 0 or ``<bos>``) of one teacher-forced call on ``<bos>`` + its own output.
    """
    import numpy as np
    import tensorflow as tf

    from tfmodels.models import beam_search

    def translate(model, decoder_step, source, bos: int, eos: int, max_length: int):
        out = beam_search.translate(decoder_step, model, source, max_length=max_length, bos_id=bos, eos_id=eos)
        ids, lengths = out["ids"].numpy(), out["lengths"].numpy()
        decoder_input = tf.constant(np.concatenate([np.full([len(ids), 1], bos), ids[:, :-1]], axis=1))
        logits = model({"source_ids": source, "decoder_input_ids": decoder_input}).numpy()
        logits[:, :, [0, bos]] = -np.inf
        for row in range(len(ids)):
            assert np.argmax(logits[row], axis=-1)[: lengths[row]].tolist() == ids[row, : lengths[row]].tolist()
        return out

    return translate
