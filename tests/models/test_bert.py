"""BERT (notes-002-part2 §54, notes-001 §25): keras-hub parity, parameter counts, tied MLM head, masks, export."""

import ast
import base64
import doctest
import json
import subprocess
import sys
from pathlib import Path

import keras
import keras_hub
import numpy as np
import pytest
import tensorflow as tf

import tfmodels
from tfmodels.export import stock_tf_check
from tfmodels.metrics.perplexity import Perplexity
from tfmodels.models import bert
from tfmodels.models.bert_keras_hub import copy_keras_hub_bert_masked_lm_weights, copy_keras_hub_bert_weights

V = 100
SMALL = {"num_layers": 2, "hidden_dim": 32, "num_heads": 2, "intermediate_dim": 64, "max_sequence_length": 16}
BERT_BASE_ENCODER = 109_482_240  # keras-hub BertBackbone (pooler included) at vocabulary 30522
BERT_BASE_PRETRAINING = BERT_BASE_ENCODER + (768 * 768 + 768) + 2 * 768 + 30522 + (2 * 768 + 2)


def _hub_backbone(**sizes):
    return keras_hub.models.BertBackbone(vocabulary_size=V, **{**SMALL, **sizes})


def _randomize(weights, rng):
    """Random values everywhere: with LayerNorm γ = 1 and zero biases a misplaced weight could hide."""
    for weight in weights:
        weight.assign(rng.normal(0.0, 0.5, weight.shape).astype("float32"))


def _batch(rng, batch=3, length=12, predictions=4, vocabulary=V):
    """Random ``[CLS] ... [SEP] ...`` inputs; rows 1 and 2 end in padding (token 0)."""
    token_ids = rng.integers(5, vocabulary, (batch, length)).astype("int32")
    padding_mask = np.ones((batch, length), "int32")
    padding_mask[1, 8:] = 0
    padding_mask[2, 3:] = 0
    token_ids[padding_mask == 0] = 0
    segment_ids = (np.arange(length)[None] >= length // 2).astype("int32") * padding_mask
    mask_positions = np.stack([rng.choice(int(m.sum()), predictions) for m in padding_mask]).astype("int32")
    return {"token_ids": token_ids, "segment_ids": segment_ids, "padding_mask": padding_mask, "mask_positions": mask_positions}


def _encoder_inputs(batch):
    return {name: batch[name] for name in ("token_ids", "segment_ids", "padding_mask")}


def _compile_for_pretraining(model, learning_rate=1e-3):
    """The compile call the module docstring documents for recipes."""
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss={
            "mlm_logits": keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction="mean_with_sample_weight"),
            "nsp_logits": keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        },
        weighted_metrics={"mlm_logits": [Perplexity()]},
        metrics={"nsp_logits": [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]},
    )


def _targets(rng, batch):
    size, predictions = batch["mask_positions"].shape
    labels = {"mlm_logits": rng.integers(5, V, (size, predictions)).astype("int32"), "nsp_logits": rng.integers(0, 2, size).astype("int32")}
    weights = {"mlm_logits": np.ones((size, predictions), "float32"), "nsp_logits": np.ones(size, "float32")}
    weights["mlm_logits"][2, 2:] = 0.0  # row 2 has only 3 real tokens: two padded prediction slots
    return labels, weights


def test_matches_keras_hub_bert_backbone_with_copied_weights():
    keras.utils.set_random_seed(0)
    hub = _hub_backbone()
    _randomize(hub.weights, np.random.default_rng(1))
    ours = bert.build_bert_encoder(V, **SMALL)
    copy_keras_hub_bert_weights(hub, ours)
    inputs = _encoder_inputs(_batch(np.random.default_rng(2)))
    expected, got = hub(inputs), ours(inputs)
    np.testing.assert_allclose(got["sequence_output"], expected["sequence_output"], atol=1e-5)
    np.testing.assert_allclose(got["pooled_output"], expected["pooled_output"], atol=1e-5)
    assert set(ours.output) == {"sequence_output", "pooled_output"} and set(ours.input) == set(hub.input)


def test_matches_keras_hub_bert_masked_lm_head():
    keras.utils.set_random_seed(0)
    hub = keras_hub.models.BertMaskedLM(_hub_backbone())
    _randomize(hub.weights, np.random.default_rng(3))
    ours = bert.build_bert_pretraining(V, **SMALL)
    copy_keras_hub_bert_masked_lm_weights(hub, ours)
    batch = _batch(np.random.default_rng(4))
    np.testing.assert_allclose(ours(batch)["mlm_logits"], hub(batch), atol=1e-4)


@pytest.mark.parametrize(
    ("ours", "message"),
    [
        ({"intermediate_dim": 48}, r"transformer_layer_0/feedforward_intermediate_dense: .* shape \(32, 64\), .* \(32, 48\)"),
        ({"max_sequence_length": 32}, r"position_embedding: .* shape \(16, 32\)"),
        ({"num_layers": 3}, "keras-hub BertBackbone has 2 transformer layers, our encoder has 3"),
    ],
)
def test_weight_copy_names_the_mismatch(ours, message):
    encoder = bert.build_bert_encoder(V, **{**SMALL, **ours})
    before = [w.numpy() for w in encoder.weights]
    with pytest.raises(ValueError, match=message):
        copy_keras_hub_bert_weights(_hub_backbone(), encoder)
    assert all(np.array_equal(b, w.numpy()) for b, w in zip(before, encoder.weights))  # nothing half-copied


def test_parameter_count_formulas():
    """Closed-form counts: BERT-base 109,482,240 (keras-hub's BertBackbone); built models agree."""
    assert bert.bert_encoder_params(bert.PAPER_VOCABULARY_SIZE, **bert.PRESETS["paper"]) == BERT_BASE_ENCODER
    assert bert.bert_pretraining_params(bert.PAPER_VOCABULARY_SIZE, **bert.PRESETS["paper"]) == BERT_BASE_PRETRAINING
    for preset in ("tiny", "default"):
        model = bert.build_bert_pretraining(V, **bert.PRESETS[preset])
        assert model.count_params() == bert.bert_pretraining_params(V, **bert.PRESETS[preset])
        assert model.encoder.count_params() == bert.bert_encoder_params(V, **bert.PRESETS[preset])
    assert _hub_backbone(num_segments=3).count_params() == bert.bert_encoder_params(V, **SMALL, num_segments=3)


@pytest.mark.slow
def test_bert_base_parameter_count_equals_keras_hub():
    """BERT-base at vocabulary 30522, both built (about 110M parameters each)."""
    ours = bert.build_bert_pretraining(bert.PAPER_VOCABULARY_SIZE, **bert.PRESETS["paper"])
    assert ours.encoder.count_params() == BERT_BASE_ENCODER
    assert ours.count_params() == BERT_BASE_PRETRAINING
    hub = keras_hub.models.BertBackbone(
        vocabulary_size=30522, num_layers=12, num_heads=12, hidden_dim=768, intermediate_dim=3072, max_sequence_length=512
    )
    assert hub.count_params() == BERT_BASE_ENCODER


def test_mlm_output_projection_is_the_token_embedding():
    model = bert.build_bert_pretraining(V, **SMALL)
    embedding = model.encoder.get_layer("token_embedding").embeddings
    matrices = [w for w in model.weights if sorted(w.shape) == sorted((V, SMALL["hidden_dim"]))]
    assert matrices == [embedding]  # no separate V×H (or H×V) output matrix
    batch = _batch(np.random.default_rng(5))
    before = model(batch)["mlm_logits"].numpy()
    embedding.assign(embedding.numpy() + np.random.default_rng(6).normal(0, 0.1, embedding.shape))
    assert np.abs(model(batch)["mlm_logits"].numpy() - before).max() > 1e-3
    # logits = head(h) · Eᵀ + b with E the embedding: check it by hand on the gathered outputs
    head = model.get_layer("mlm_head")
    sequence = model.encoder(_encoder_inputs(batch))["sequence_output"].numpy()
    gathered = np.take_along_axis(sequence, batch["mask_positions"][..., None], axis=1)
    expected = head.layer_norm(head.dense(gathered)).numpy() @ embedding.numpy().T + head.output_bias.numpy()
    np.testing.assert_allclose(model(batch)["mlm_logits"], expected, atol=1e-4)


def test_mlm_head_config_builds_a_standalone_head():
    """Alone, a head rebuilt from its config owns a new embedding of the same size (BertPretrainer re-ties it)."""
    head = bert.build_bert_pretraining(V, **SMALL, mlm_activation="relu", mlm_layer_norm_epsilon=1e-3).get_layer("mlm_head")
    clone = bert.BertMaskedLMHead.from_config(head.get_config())
    assert clone.token_embedding is not head.token_embedding
    assert (clone.token_embedding.input_dim, clone.token_embedding.output_dim) == (V, SMALL["hidden_dim"])
    assert clone.activation is keras.activations.relu and clone.layer_norm_epsilon == 1e-3
    sequence = np.random.default_rng(15).normal(size=(2, 5, SMALL["hidden_dim"])).astype("float32")
    assert clone(sequence, np.array([[0, 4], [2, 2]], "int32")).shape == (2, 2, V)


def test_mlm_loss_counts_only_weighted_prediction_slots():
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(7)
    model = bert.build_bert_pretraining(V, **SMALL)
    _compile_for_pretraining(model)
    batch = _batch(rng)
    labels, weights = _targets(rng, batch)
    result = model.evaluate(batch, labels, sample_weight=weights, return_dict=True, verbose=0)

    outputs = model(batch)
    log_p = np.log(keras.ops.softmax(outputs["mlm_logits"]).numpy())
    token_ce = -np.take_along_axis(log_p, labels["mlm_logits"][..., None], -1)[..., 0]
    w = weights["mlm_logits"]
    np.testing.assert_allclose(result["mlm_logits_loss"], (w * token_ce).sum() / w.sum(), rtol=1e-4)
    np.testing.assert_allclose(result["mlm_logits_perplexity"], np.exp(result["mlm_logits_loss"]), rtol=1e-4)

    # Changing what the padded slots point at or what they are labelled does not change anything.
    padded = w == 0
    moved = dict(batch, mask_positions=np.where(padded, 0, batch["mask_positions"]).astype("int32"))
    relabelled = dict(labels, mlm_logits=np.where(padded, 1, labels["mlm_logits"]).astype("int32"))
    again = model.evaluate(moved, relabelled, sample_weight=weights, return_dict=True, verbose=0)
    for name in ("loss", "mlm_logits_loss", "mlm_logits_perplexity"):
        np.testing.assert_allclose(again[name], result[name], rtol=1e-6)


def test_padding_is_never_attended_to():
    model = bert.build_bert_pretraining(V, **SMALL)
    batch = _batch(np.random.default_rng(8))
    changed = dict(batch)
    pad = batch["padding_mask"] == 0
    changed["token_ids"] = np.where(pad, np.random.default_rng(9).integers(5, V, pad.shape), batch["token_ids"]).astype("int32")
    changed["segment_ids"] = np.where(pad, 1, batch["segment_ids"]).astype("int32")
    first, second = model.encoder(_encoder_inputs(batch)), model.encoder(_encoder_inputs(changed))
    np.testing.assert_allclose(second["sequence_output"].numpy()[~pad], first["sequence_output"].numpy()[~pad], atol=1e-5)
    np.testing.assert_allclose(second["pooled_output"], first["pooled_output"], atol=1e-5)
    np.testing.assert_allclose(model(changed)["mlm_logits"], model(batch)["mlm_logits"], atol=1e-5)
    # ...while the encoder is bidirectional: a later real token changes the [CLS] output
    later = dict(batch, token_ids=batch["token_ids"].copy())
    later["token_ids"][0, 10] = 4
    moved = model.encoder(_encoder_inputs(later))["pooled_output"].numpy()
    assert np.abs(moved[0] - first["pooled_output"].numpy()[0]).max() > 1e-4


def test_tiny_batch_overfits():
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(10)
    model = bert.build_bert_pretraining(V, **bert.PRESETS["tiny"])
    _compile_for_pretraining(model, learning_rate=5e-3)
    batch = _batch(rng, batch=4)
    labels, weights = _targets(rng, batch)
    initial = model.evaluate(batch, labels, sample_weight=weights, return_dict=True, verbose=0)
    for _ in range(50):
        model.train_on_batch(batch, labels, sample_weight=weights)
    final = model.evaluate(batch, labels, sample_weight=weights, return_dict=True, verbose=0)
    # MLM starts near log(100) = 4.6 (+ NSP near log 2); 50 steps take it below a tenth of that.
    assert initial["loss"] > 4.0 and final["loss"] < 0.1 * initial["loss"], (initial, final)
    assert final["mlm_logits_perplexity"] < 2.0 and final["nsp_logits_accuracy"] == 1.0


def test_keras_file_round_trip_keeps_outputs_and_the_tie(keras_round_trip):
    model = bert.build_bert_pretraining(V, **SMALL)
    _randomize(model.weights, np.random.default_rng(11))
    batch = _batch(np.random.default_rng(12))
    loaded = keras_round_trip(model)
    assert isinstance(loaded, bert.BertPretrainer)
    for name, value in model(batch).items():
        np.testing.assert_array_equal(loaded(batch)[name], value)
    assert loaded.get_layer("mlm_head").token_embedding is loaded.encoder.get_layer("token_embedding")
    assert loaded.count_params() == model.count_params()
    encoder = keras_round_trip(model.encoder)
    np.testing.assert_array_equal(encoder(_encoder_inputs(batch))["pooled_output"], model.encoder(_encoder_inputs(batch))["pooled_output"])


def test_encoder_is_reachable_and_shared_for_a_classifier():
    model = bert.build_bert_pretraining(V, **SMALL)
    assert model.encoder is model.get_layer("bert_encoder")
    encoder_weights = {id(w) for w in model.encoder.weights}
    assert encoder_weights <= {id(w) for w in model.weights}
    # A classifier that starts from the pre-trained encoder: same weights, new head.
    classifier_encoder = bert.build_bert_encoder(V, **SMALL)
    classifier_encoder.set_weights(model.encoder.get_weights())
    batch = _encoder_inputs(_batch(np.random.default_rng(13)))
    np.testing.assert_array_equal(classifier_encoder(batch)["pooled_output"], model.encoder(batch)["pooled_output"])


def test_serving_graph_has_only_core_tensorflow_ops(tmp_path):
    """Encoder and MLM endpoints with [None, None] int32 inputs, checked in a process that imports only TF."""
    model = bert.build_bert_pretraining(V, **SMALL)
    encoder = model.encoder
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(
        "encode",
        lambda token_ids, segment_ids, padding_mask: encoder(
            {"token_ids": token_ids, "segment_ids": segment_ids, "padding_mask": padding_mask}
        ),
        [tf.TensorSpec([None, None], tf.int32, name=n) for n in ("token_ids", "segment_ids", "padding_mask")],
    )
    archive.add_endpoint(
        "mlm",
        lambda token_ids, segment_ids, padding_mask, mask_positions: model(
            {"token_ids": token_ids, "segment_ids": segment_ids, "padding_mask": padding_mask, "mask_positions": mask_positions}
        ),
        [tf.TensorSpec([None, None], tf.int32, name=n) for n in ("token_ids", "segment_ids", "padding_mask", "mask_positions")],
    )
    archive.write_out(str(tmp_path / "export"), verbose=False)

    batch = _batch(np.random.default_rng(14))
    requests = [
        {
            "signature_name": name,
            "inputs": {k: base64.b64encode(tf.make_tensor_proto(batch[k]).SerializeToString()).decode() for k in keys},
        }
        for name, keys in [("encode", ("token_ids", "segment_ids", "padding_mask")), ("mlm", tuple(batch))]
    ]
    (tmp_path / "requests.json").write_text(json.dumps(requests))
    subprocess.run(
        [sys.executable, stock_tf_check.__file__, str(tmp_path / "export"), str(tmp_path / "requests.json"), str(tmp_path / "result.json")],
        check=False,
        timeout=300,
    )
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["unknown_ops"] == [] and result["custom_modules_loaded"] == [] and "error" not in result, result
    expected = model.encoder(_encoder_inputs(batch))
    for loader in ("tf2", "session"):  # the TF2 loader and TF-Serving's TF1 Session path
        encoded, predicted = result["outputs"][loader]
        for name in ("sequence_output", "pooled_output"):
            got = np.asarray(encoded[name]["values"]).reshape(encoded[name]["shape"])
            np.testing.assert_allclose(got, expected[name], atol=1e-5)
        got = np.asarray(predicted["mlm_logits"]["values"]).reshape(predicted["mlm_logits"]["shape"])
        np.testing.assert_allclose(got, model(batch)["mlm_logits"], atol=1e-4)


def test_library_never_imports_keras_hub():
    root = Path(tfmodels.__file__).parent
    for relative in ("models/bert.py", "models/bert_keras_hub.py", "layers/transformer_encoder.py", "layers/position_embedding.py", "metrics/perplexity.py"):
        tree = ast.parse((root / relative).read_text())
        imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
        assert not any(name.split(".")[0] == "keras_hub" for name in imported), relative


def test_docstring_examples():
    result = doctest.testmod(bert)
    assert result.attempted == 11 and result.failed == 0, result
