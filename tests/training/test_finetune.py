"""Transfer learning in the trainer: a frozen backbone under a new head, then fine-tuning (notes-002 S22-S23)."""

import json
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

import tfmodels
from tfmodels.config import ConfigError
from tfmodels.models import resnet, vgg
from tfmodels.models.backbone import (
    backbone_layers,
    copy_backbone_weights,
    head_layers,
    set_backbone_trainable,
)
from tfmodels.models.mlp import build_mlp


def _tiny_vgg16(num_classes=4, size=32):
    return vgg.build_vgg16(num_classes=num_classes, input_shape=(size, size, 3), width_divisor=16, fc_units=16)


def _values(layers):
    return [w.numpy().copy() for layer in layers for w in layer.weights]


def _one_step(model, num_classes=4, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 255, (8, *model.input_shape[1:])).astype("float32")
    y = rng.integers(0, num_classes, 8)
    model.compile(keras.optimizers.Adam(1e-2), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.train_on_batch(x, y)


def test_vgg16_backbone_is_the_notes_features_and_head_the_classifier():
    model = _tiny_vgg16()
    assert [layer.name for layer in backbone_layers(model)] == [
        f"block{b}_conv{c}" for b, n in enumerate((2, 2, 3, 3, 3), start=1) for c in range(1, n + 1)
    ]
    assert [layer.name for layer in head_layers(model)] == ["fc1", "fc2", "predictions"]


def test_frozen_phase_trains_only_the_head():
    model = _tiny_vgg16()
    set_backbone_trainable(model, False)
    assert {id(w) for w in model.trainable_weights} == {id(w) for layer in head_layers(model) for w in layer.weights}
    base, head = _values(backbone_layers(model)), _values(head_layers(model))
    _one_step(model)
    for before, after in zip(base, _values(backbone_layers(model))):
        np.testing.assert_array_equal(before, after)
    assert any(not np.array_equal(b, a) for b, a in zip(head, _values(head_layers(model))))


def test_unfrozen_backbone_trains_but_batch_norm_keeps_its_statistics():
    model = resnet.build_resnet18(num_classes=4, input_shape=(32, 32, 3), width=4)
    set_backbone_trainable(model, False)
    set_backbone_trainable(model, True)
    norms = [layer for layer in backbone_layers(model) if isinstance(layer, keras.layers.BatchNormalization)]
    convs = [layer for layer in backbone_layers(model) if isinstance(layer, keras.layers.Conv2D)]
    assert norms and not any(layer.trainable for layer in norms)
    statistics, kernels = _values(norms), _values(convs)
    _one_step(model)
    for before, after in zip(statistics, _values(norms)):  # BN in inference mode: moving stats untouched
        np.testing.assert_array_equal(before, after)
    assert all(not np.array_equal(b, a) for b, a in zip(kernels, _values(convs)))


def test_backbone_transfers_across_class_count_and_input_size():
    source, target = _tiny_vgg16(num_classes=10, size=32), _tiny_vgg16(num_classes=4, size=48)
    head = _values(head_layers(target))
    assert copy_backbone_weights(source, target) == 13
    for a, b in zip(_values(backbone_layers(source)), _values(backbone_layers(target))):
        np.testing.assert_array_equal(a, b)
    for before, after in zip(head, _values(head_layers(target))):  # the head stays new
        np.testing.assert_array_equal(before, after)


def test_backbones_of_different_architectures_do_not_mix():
    with pytest.raises(ValueError, match="backbones have"):
        copy_backbone_weights(resnet.build_resnet18(num_classes=4, input_shape=(32, 32, 3), width=4), _tiny_vgg16())
    with pytest.raises(ValueError, match="has no backbone"):
        backbone_layers(build_mlp(input_shape=(4,), hidden_units=(8,), outputs=2))


def test_two_phase_run_from_an_earlier_run(tmp_path):
    """Phase 1 keeps the source backbone exactly (only the new head learns), phase 2 moves it at lr/10."""
    common = dict(preset="tiny", data="sklearn:digits", runs_root=tmp_path / "runs", export_root=None)
    source = tfmodels.train("vgg16", overrides={"epochs": 1}, **common)
    run = tfmodels.train("vgg16_transfer", overrides={"init_from": str(source.run_dir)}, **common)

    assert run.metrics["transfer"] == {"init_from": str(source.run_dir), "backbone_layers_copied": 13, "frozen_epochs": 1}
    history = (run.run_dir / "history.csv").read_text().splitlines()
    rates = [float(row.split(",")[history[0].split(",").index("learning_rate")]) for row in history[1:]]
    assert rates == pytest.approx([1e-3, 1e-4])
    after_frozen = keras.saving.load_model(source.run_dir / "model.keras")
    after_frozen.load_weights(run.run_dir / "frozen_phase.weights.h5")
    source_backbone = _values(backbone_layers(source.model))
    for a, b in zip(source_backbone, _values(backbone_layers(after_frozen))):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(source_backbone, _values(backbone_layers(run.model))))
    assert all(layer.trainable for layer in run.model.layers)  # saved as built, not frozen


def test_bad_transfer_settings_fail_before_training(tmp_path):
    common = dict(preset="tiny", runs_root=tmp_path / "runs", export_root=None)
    with pytest.raises(ConfigError, match="freeze_epochs must be between 0 and epochs"):
        tfmodels.train("vgg16_transfer", overrides={"freeze_epochs": 5}, **common)
    with pytest.raises(ConfigError, match="expected a finished run directory"):
        tfmodels.train("vgg16_transfer", overrides={"init_from": str(tmp_path / "nowhere")}, **common)
    with pytest.raises(ConfigError, match="freeze_epochs: .* has no backbone"):
        tfmodels.train("mnist_mlp", overrides={"freeze_epochs": 1}, **common)


KILLED_RUN = textwrap.dedent(
    """
    import os, signal, sys
    import keras, tfmodels

    class Kill(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == int(sys.argv[2]):
                os.kill(os.getpid(), signal.SIGKILL)

    tfmodels.train("vgg16_transfer", preset="tiny", data="sklearn:digits", overrides={"epochs": 4, "freeze_epochs": 2},
                   runs_root=sys.argv[1], export_root=None, callbacks=[Kill()])
    """
)
FULL_RUN = (
    "import sys, tfmodels; tfmodels.train('vgg16_transfer', preset='tiny', data='sklearn:digits', "
    "overrides={'epochs': 4, 'freeze_epochs': 2}, runs_root=sys.argv[1], export_root=None)"
)


def _python(code, *args):
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True, timeout=300)


@pytest.mark.slow  # two subprocess runs of two phases each; the fast suite resumes single-phase runs (test_run_stages)
@pytest.mark.parametrize("killed_after_epoch", [2, 1])
def test_run_killed_in_either_phase_resumes_to_the_uninterrupted_result(killed_after_epoch, tmp_path):
    """Epoch 2 (0-based 1) is the last frozen epoch: killed before the phase marker is written."""
    killed = _python(KILLED_RUN, tmp_path / "killed", killed_after_epoch)
    assert killed.returncode == -9, killed.stderr[-2000:]
    (run_dir,) = (tmp_path / "killed" / "vgg16_transfer").iterdir()
    resumed = _python("import sys, tfmodels; tfmodels.train('vgg16_transfer', resume=sys.argv[1], export_root=None)", run_dir)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    full = _python(FULL_RUN, tmp_path / "full")
    assert full.returncode == 0, full.stderr[-2000:]
    (full_dir,) = (tmp_path / "full" / "vgg16_transfer").iterdir()

    resumed_model = keras.saving.load_model(run_dir / "model.keras")
    full_model = keras.saving.load_model(full_dir / "model.keras")
    for a, b in zip(resumed_model.get_weights(), full_model.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert len((run_dir / "history.csv").read_text().splitlines()) == 5
    assert json.loads((run_dir / "metrics.json").read_text())["test"] == json.loads((full_dir / "metrics.json").read_text())["test"]


@pytest.mark.parametrize("build", ["vit", "swin"])
def test_transformer_backbones_move_and_freeze_by_whole_blocks(build):
    """A ViT's patch embedding, class token and encoder blocks (a Swin's blocks) are its backbone,
    each block one unit; a copy between two class counts keeps the new head, and freezing leaves only it."""
    from tfmodels.models import swin, vit

    make = {"vit": vit.vit_tiny, "swin": swin.swin_tiny_cpu}[build]
    source, target = make(num_classes=5, input_shape=(32, 32, 3)), make(num_classes=3, input_shape=(32, 32, 3))
    names = [layer.name for layer in backbone_layers(target)]
    assert [layer.name for layer in head_layers(target)] == ["head" if build == "vit" else "logits"]
    blocks = [n for n in names if "block" in n]
    assert len(blocks) == 4 and len(names) == len(set(names))  # vit_tiny: 4 layers; swin_tiny_cpu: depths (2, 2)
    head = _values(head_layers(target))
    assert copy_backbone_weights(source, target) == len(names)
    for a, b in zip(_values(backbone_layers(source)), _values(backbone_layers(target))):
        np.testing.assert_array_equal(a, b)
    for before, after in zip(head, _values(head_layers(target))):
        np.testing.assert_array_equal(before, after)
    set_backbone_trainable(target, False)
    assert {id(w) for w in target.trainable_weights} == {id(w) for layer in head_layers(target) for w in layer.weights}
