import pytest

from tfmodels.config import ConfigError, TrainConfig, parse_overrides, resolve
from tfmodels.recipes.mnist import DigitsConfig


def test_preset_then_overrides_with_types():
    cfg = resolve(DigitsConfig, "paper", ["epochs=3", "learning_rate=0.5", "deterministic=false", "lr_milestones=2, 5"])
    assert cfg.optimizer == "sgd" and cfg.momentum == 0.5  # from the paper preset (notes S17)
    assert cfg.epochs == 3 and isinstance(cfg.epochs, int)
    assert cfg.learning_rate == 0.5 and cfg.deterministic is False
    assert cfg.lr_milestones == (2, 5)


def test_mapping_overrides_keep_python_types():
    cfg = resolve(TrainConfig, "default", {"epochs": 2, "clip_global_norm": 1})
    assert cfg.epochs == 2 and cfg.clip_global_norm == 1.0


@pytest.mark.parametrize(
    "override, message",
    [
        ("epochz=3", "unknown config key 'epochz'.*did you mean epochs"),
        ("epochs=three", "bad value for 'epochs'"),
        ("epochs=1.5", "bad value for 'epochs'"),
        ("deterministic=maybe", "bad value for 'deterministic'"),
        ("optimizer=adagrad", "bad value for 'optimizer'.*sgd, momentum, adam, adamw"),
        ("epochs", "expected key=value"),
        ("PRESETS=1", "unknown config key 'PRESETS'"),
        ("run_dir=/tmp/x", "run_dir is not a setting"),
        ("data_seed=-1", "data_seed >= 0"),
    ],
)
def test_bad_overrides_are_rejected_by_name(override, message):
    with pytest.raises(ConfigError, match=message):
        resolve(DigitsConfig, "default", [override])


def test_unknown_preset():
    with pytest.raises(ConfigError, match="unknown preset 'huge'.*tiny, default, paper"):
        resolve(TrainConfig, "huge")


def test_warmup_needs_a_compatible_schedule():
    with pytest.raises(ConfigError, match="warmup_epochs"):
        resolve(TrainConfig, "default", {"warmup_epochs": 2, "lr_schedule": "step"})


def test_json_round_trip():
    cfg = resolve(DigitsConfig, "tiny", ["lr_milestones=1,2"])
    again = resolve(DigitsConfig, "default", __import__("json").loads(cfg.to_json()))
    assert again == cfg


def test_parse_overrides_keeps_equals_in_values():
    assert parse_overrides(["data=file:/a=b"]) == {"data": "file:/a=b"}


def test_data_seed_is_its_own_field_and_run_dir_is_never_saved():
    import dataclasses
    import json

    cfg = dataclasses.replace(resolve(DigitsConfig, "tiny", ["seed=7"]), run_dir="/somewhere/run")
    assert (cfg.seed, cfg.data_seed) == (7, 42)  # a seed sweep keeps the split
    assert "run_dir" not in json.loads(cfg.to_json()) and json.loads(cfg.to_json())["data_seed"] == 42
