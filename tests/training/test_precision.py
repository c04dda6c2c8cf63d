"""``mixed_precision=none|float16|bfloat16|auto``: the policy a run trains under, and what it keeps float32."""

import json
import math

import keras
import pytest
import tensorflow as tf

import tfmodels
from tfmodels.config import ConfigError, TrainConfig, resolve
from tfmodels.training import precision
from tfmodels.training.run_folder import RunFolder
from tfmodels.training.trainer import resolve_config, run_config


@pytest.mark.parametrize(
    "given, expected",
    [(True, "float16"), (False, "none"), ("true", "float16"), ("false", "none"), ("bfloat16", "bfloat16"), ("auto", "auto")],
)
def test_old_booleans_and_new_names_parse(given, expected):
    assert resolve(TrainConfig, "default", {"mixed_precision": given}).mixed_precision == expected
    assert resolve(TrainConfig, "default", [f"mixed_precision={given}"]).mixed_precision == expected


def test_default_is_float32_and_unknown_names_are_refused():
    assert TrainConfig().mixed_precision == "none"
    assert precision.resolve_policy("none") == ("float32", "mixed_precision=none")
    with pytest.raises(ConfigError, match="bad value for 'mixed_precision'.*none, float16, bfloat16, auto"):
        resolve(TrainConfig, "default", ["mixed_precision=bf16"])


def test_an_old_run_folder_with_a_boolean_resumes_as_float16(tmp_path):
    saved = resolve_config("mnist_cnn", "tiny").to_dict()
    saved["mixed_precision"] = True  # what config.json held before bfloat16
    (tmp_path / "config.json").write_text(json.dumps(saved))
    cfg = run_config(RunFolder.create(tmp_path, "mnist_cnn", "tiny"))
    assert cfg.mixed_precision == "float16"
    assert precision.resolve_policy(cfg.mixed_precision)[0] == "mixed_float16"


@pytest.mark.parametrize(
    "flags, expected",
    [
        ("fpu sse2 avx512f avx512_bf16 avx512_vnni", ["avx512_bf16"]),  # AMD Zen 4, Intel Cooper Lake
        ("fpu avx512_bf16 amx_bf16 amx_tile amx_int8", ["amx_bf16", "avx512_bf16"]),  # Intel Sapphire Rapids
        ("fpu sse2 avx2 fma avx512f", []),  # Skylake-SP: no bfloat16 arithmetic
    ],
)
def test_cpu_flags_are_read_from_cpuinfo(tmp_path, flags, expected):
    cpuinfo = tmp_path / "cpuinfo"
    processor = f"processor\t: {{}}\nmodel name\t: test cpu\nflags\t\t: {flags}\n\n"
    cpuinfo.write_text(processor.format(0) + processor.format(1))
    assert precision.cpu_bf16_flags(cpuinfo) == expected


def test_no_cpuinfo_means_no_claim_of_bfloat16(tmp_path):
    assert precision.cpu_bf16_flags(tmp_path / "missing") == []


@pytest.mark.parametrize(
    "gpus, cpu_flags, expected",
    [
        ([], ["amx_bf16"], "mixed_bfloat16"),
        ([], ["avx512_bf16"], "mixed_bfloat16"),
        ([], [], "float32"),
        ([(8, 0)], [], "mixed_bfloat16"),  # A100
        ([(9, 0), (8, 6)], [], "mixed_bfloat16"),  # H100 + RTX 3090
        ([(7, 0)], ["amx_bf16"], "float32"),  # V100 trains the model, however fast the CPU
        ([(8, 0), (7, 5)], [], "float32"),  # one Turing card slows every replica
    ],
)
def test_auto_follows_the_hardware_that_trains(monkeypatch, gpus, cpu_flags, expected):
    monkeypatch.setattr(precision, "gpu_compute_capabilities", lambda: gpus)
    monkeypatch.setattr(precision, "cpu_bf16_flags", lambda: cpu_flags)
    policy, reason = precision.resolve_policy("auto")
    assert policy == expected
    assert ("GPU" in reason) == bool(gpus)


def test_gpu_compute_capability_comes_from_device_details(monkeypatch):
    gpus = [tf.config.PhysicalDevice("/physical_device:GPU:0", "GPU"), tf.config.PhysicalDevice("/physical_device:GPU:1", "GPU")]
    details = {gpus[0].name: {"compute_capability": (8, 0)}, gpus[1].name: {}}
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: gpus if kind == "GPU" else [])
    monkeypatch.setattr(tf.config.experimental, "get_device_details", lambda device: details[device.name])
    assert precision.gpu_compute_capabilities() == [(8, 0), (0, 0)]


def test_tiny_bfloat16_run_trains_records_its_policy_and_exports_float32(tmp_path):
    result = tfmodels.train(
        "mnist_cnn", preset="tiny", data="sklearn:digits", overrides={"mixed_precision": "bfloat16"},
        runs_root=tmp_path / "runs", export_root=tmp_path / "saved_models",
    )
    assert keras.mixed_precision.global_policy().name == "float32"  # restored for later builds
    assert result.metrics["precision"] == {"setting": "bfloat16", "policy": "mixed_bfloat16", "reason": "mixed_precision=bfloat16"}
    assert result.model.get_layer("conv1").dtype_policy.name == "mixed_bfloat16"
    assert result.model.get_layer("conv1").kernel.dtype == "float32"  # variables stay float32
    assert result.model.output.dtype == "float32"  # logits for the float32 loss and softmax
    assert math.isfinite(result.metrics["test"]["loss"])
    assert result.metrics["test"]["accuracy"] > 0.3  # 10 classes: chance is 0.1

    report = tfmodels.verify_export(result.export_path)
    assert report["requests_replayed"] >= 1
    assert report["compute_dtype"] == "bfloat16" and report["tolerance"]["atol"] == 8 * 2.0**-7
    served = tf.saved_model.load(str(result.export_path)).signatures
    for name, signature in served.items():
        tensors = [*signature.structured_input_signature[1].values(), *signature.structured_outputs.values()]
        floating = [t.dtype for t in tensors if t.dtype.is_floating]
        assert floating and set(floating) == {tf.float32}, name


@pytest.mark.parametrize(
    "name",
    ["alexnet", "resnet18", "densenet121", "lenet5", "mnist_mlp", "lstm_lm", "bert_mlm", "birnn_tagger",
     "fcn", "unet", "deeplab_v1", "deeplab_v2", "deeplab_v3", "deeplab_v3_plus", "erfnet"],
)
def test_classifier_and_language_model_logits_are_float32_under_bfloat16(name):
    """Keras' mixed-precision rule: the last layer computes in float32, whatever the policy."""
    from tfmodels import registry
    from tfmodels.config import resolve

    recipe = registry.get(name)
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        net = recipe.model(resolve(recipe.config, "tiny"))
    finally:
        keras.mixed_precision.set_global_policy(previous)
    hidden = [layer for layer in net.layers if layer.dtype_policy.compute_dtype == "bfloat16"]
    assert hidden, "the body still computes in bfloat16"
    assert {o.dtype for o in net.outputs} == {"float32"}
