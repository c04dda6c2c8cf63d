"""``fixmatch`` through the trainer: data from the run's labelled subset, history, export, baseline."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfmodels
from pipelines import digits, semi_supervised
from pipelines.sources import DataSourceError
from tfmodels import registry
from tfmodels.config import resolve


def _cfg(run_dir="", **overrides):
    cfg = resolve(registry.get("fixmatch").config, "tiny", overrides)
    cfg.run_dir = str(run_dir)
    return cfg


def test_training_data_come_from_the_labelled_subset_saved_in_the_run(tmp_path):
    cfg = _cfg(tmp_path, data="sklearn:digits")
    labels = semi_supervised.as_arrays(digits.load(cfg.data, seed=cfg.data_seed).train)[1]
    saved = semi_supervised.subset_record(labels, 1, 10, seed=123, num_unlabelled=12)  # not what the config would draw
    (tmp_path / "assets").mkdir()
    (tmp_path / "assets" / "labelled_subset.json").write_text(json.dumps(saved))
    splits = registry.get("fixmatch").datasets(cfg)
    assert (splits.info["sizes"]["labelled"], splits.info["sizes"]["unlabelled"]) == (10, 12)
    seen = {int(y["label"]) for _, y in splits.train.as_numpy_iterator()}
    assert seen == set(range(10))
    saved["labels"] = [(c + 1) % 10 for c in saved["labels"]]
    (tmp_path / "assets" / "labelled_subset.json").write_text(json.dumps(saved))
    with pytest.raises(DataSourceError, match="no longer holds"):
        registry.get("fixmatch").datasets(cfg)


def test_unlabelled_weight_zero_is_the_supervised_only_baseline():
    model = registry.get("fixmatch").model(_cfg(unlabelled_weight=0.0, threshold=0.0))
    rng = np.random.default_rng(0)
    x = {"labelled": rng.uniform(0, 255, (2, 28, 28, 1)), "teacher_view": rng.uniform(0, 255, (2, 2, 28, 28, 1)),
         "student_view": rng.uniform(0, 255, (2, 2, 28, 28, 1))}
    y = {"label": tf.constant([3, 7]), "hidden_labels": tf.zeros([2, 2], tf.int32)}
    model.compile(optimizer="sgd")
    losses = model.losses_of(({k: tf.constant(v, tf.float32) for k, v in x.items()}, y))
    assert float(losses["unlabelled"]) > 0  # τ = 0: every pseudo-label is used ...
    assert float(losses["total"]) == float(losses["supervised"])  # ... and weighs nothing


@pytest.mark.slow  # a tiny run, export and verification: about 40 s on 2 cores
def test_tiny_fixmatch_trains_logs_mask_rate_and_exports_the_ema_network(tmp_path):
    result = tfmodels.train("fixmatch", preset="tiny", runs_root=tmp_path / "runs", export_root=tmp_path / "saved_models")
    history = np.genfromtxt(result.run_dir / "history.csv", delimiter=",", names=True)
    for column in ("mask_rate", "pseudo_label_accuracy", "unlabelled_loss", "val_accuracy", "val_student_accuracy"):
        assert np.isfinite(history[column]).all(), column
    assert 0.0 <= float(history["mask_rate"]) <= 1.0
    subset = json.loads((result.run_dir / "assets" / "labelled_subset.json").read_text())
    assert np.bincount(subset["labels"], minlength=10).tolist() == [2] * 10
    assert result.metrics["report"]["labelled"] == 20 and result.metrics["report"]["method"] == "fixmatch"
    assert (result.run_dir / "views.png").stat().st_size > 0 and (result.run_dir / "curves.png").stat().st_size > 0
    assert tfmodels.verify_export(result.export_path)["requests_replayed"] == 2
    pixels = tf.constant(np.round(np.random.default_rng(0).uniform(0, 255, (3, 28, 28, 1))).astype("float32"))
    served = tf.saved_model.load(str(result.export_path)).signatures["predict_pixels"](pixels=pixels)
    loaded = keras.saving.load_model(result.run_dir / "model.keras")
    expected = tf.nn.softmax(loaded.ema_network(pixels)).numpy()
    np.testing.assert_allclose(served["probabilities"].numpy(), expected, rtol=1e-4, atol=1e-5)
