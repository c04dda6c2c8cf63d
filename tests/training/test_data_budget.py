"""Data at scale: split caches and shuffle buffers stay within the run's memory budget."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from tfmodels.config import ConfigError, TrainConfig, resolve
from tfmodels.training.data_budget import cache_split, example_bytes, shuffle_buffer


def _counting_source(n=8):
    """A dataset that counts how often its examples are produced (i.e. read from the source)."""
    reads = tf.Variable(0, dtype=tf.int64)

    def produce(x):
        reads.assign_add(1)
        return tf.fill([1024], tf.cast(x, tf.float32))  # 4 KiB per example

    return tf.data.Dataset.range(n).map(produce), reads


@pytest.mark.parametrize(
    "cache, budget_mb, expected_reads", [("auto", 1, 8), ("auto", 0, 16), ("memory", 0, 8), ("none", 64, 16)]
)
def test_a_split_is_cached_only_when_it_fits_its_share_of_the_budget(cache, budget_mb, expected_reads, tmp_path):
    cfg = resolve(TrainConfig, "default", {"cache": cache, "cache_budget_mb": budget_mb})
    split, reads = _counting_source()
    size = 8 * example_bytes(split)
    reads.assign(0)
    cached = cache_split(split, "train", size, cfg, tmp_path)
    for _ in range(2):  # two epochs
        list(cached.as_numpy_iterator())
    assert int(reads.numpy()) == expected_reads


def test_a_disk_cache_lives_in_the_given_folder(tmp_path):
    cfg = resolve(TrainConfig, "default", {"cache": "disk"})
    split, reads = _counting_source()
    cached = cache_split(split, "train", 1, cfg, tmp_path / "cache")
    for _ in range(2):
        list(cached.as_numpy_iterator())
    assert int(reads.numpy()) == 8 and any((tmp_path / "cache").iterdir())


def test_example_bytes_counts_tensors_and_string_lengths():
    ds = tf.data.Dataset.from_tensors(({"pixels": tf.zeros([4, 4, 3]), "text": tf.constant("abcde")}, tf.constant(1, tf.int64)))
    assert example_bytes(ds) == 4 * 4 * 3 * 4 + 5 + 8


@pytest.mark.parametrize(
    "overrides, n, per_example, expected",
    [
        ({}, 5_000, 3_072, 5_000),  # the embedded digits: the whole set
        ({"cache_budget_mb": 64}, 1_281_167, 224 * 224 * 3 * 4, 1_024),  # ImageNet floats: bounded, at least 1,024
        ({"cache_budget_mb": 8192}, 1_281_167, 224 * 224 * 3 * 4, 4 * 2**30 // (224 * 224 * 3 * 4)),  # 7,133
        ({"shuffle_buffer": 77}, 5_000, 3_072, 77),
    ],
)
def test_the_shuffle_buffer_is_bounded_by_half_the_budget(overrides, n, per_example, expected):
    assert shuffle_buffer(resolve(TrainConfig, "default", overrides), n, per_example) == expected


def test_bad_cache_settings_are_refused():
    with pytest.raises(ConfigError, match="bad value for 'cache'"):
        resolve(TrainConfig, "default", {"cache": "ram"})
    with pytest.raises(ConfigError, match="cache_budget_mb"):
        resolve(TrainConfig, "default", {"cache_budget_mb": -1})


STREAMED_RUN = textwrap.dedent(
    """
    import json, sys
    import keras, numpy as np, tensorflow as tf
    import tfmodels
    from pipelines.splits import Splits
    from tfmodels import registry
    from tfmodels.config import TrainConfig

    records, cache, train_files = sys.argv[1], sys.argv[2], sys.argv[4]

    def parse(record):
        example = tf.io.parse_single_example(record, {"x": tf.io.FixedLenFeature([], tf.string), "y": tf.io.FixedLenFeature([], tf.int64)})
        pixels = tf.cast(tf.reshape(tf.io.decode_raw(example["x"], tf.uint8), [32, 32, 3]), tf.float32)
        return pixels, example["y"]

    def datasets(cfg):
        files = tf.data.Dataset.list_files(records + "/" + train_files, shuffle=False)
        train = files.interleave(tf.data.TFRecordDataset, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).map(parse)
        small = tf.data.TFRecordDataset(records + "/eval.tfrecord").map(parse)
        return Splits(train, small, small, {"source": records})

    def model(cfg):
        inputs = keras.Input((32, 32, 3))
        x = keras.layers.Rescaling(1 / 255)(keras.layers.AveragePooling2D(8)(inputs))
        return keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Flatten()(x)))

    def compile_args(cfg):
        return {"loss": keras.losses.SparseCategoricalCrossentropy(from_logits=True), "metrics": ["accuracy"]}

    def peak_rss_kib():
        # VmHWM belongs to this process's memory map; getrusage's ru_maxrss survives the exec
        # from a large parent (a pytest worker) and would hide the growth.
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))

    registry.register(registry.Recipe("streamed", "test", TrainConfig, datasets, model, compile_args, None, None))
    before = peak_rss_kib()
    tfmodels.train("streamed", overrides={"epochs": 1, "batch_size": 256, "cache": cache, "cache_budget_mb": 32, "verbose": 0},
                   runs_root=sys.argv[3], export_root=None)
    after = peak_rss_kib()
    print(json.dumps({"growth_mib": (after - before) / 1024}))
    """
)


@pytest.fixture(scope="module")
def large_tfrecords(tmp_path_factory):
    """12,000 32x32x3 images in 4 TFRecord files: 141 MiB as the float32 pixels the pipeline yields."""
    root = tmp_path_factory.mktemp("records")
    rng = np.random.default_rng(0)

    def write(path, n):
        with tf.io.TFRecordWriter(str(path)) as writer:
            for _ in range(n):
                pixels = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8).tobytes()
                features = {
                    "x": tf.train.Feature(bytes_list=tf.train.BytesList(value=[pixels])),
                    "y": tf.train.Feature(int64_list=tf.train.Int64List(value=[int(rng.integers(2))])),
                }
                writer.write(tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString())

    for i in range(4):
        write(root / f"train-{i}.tfrecord", 3_000)
    write(root / "eval.tfrecord", 200)
    return root


def _peak_growth(records, cache, runs, train_files="train-*.tfrecord"):
    """How much a run's peak RSS grows while it trains one epoch (MiB)."""
    command = [sys.executable, "-c", STREAMED_RUN, str(records), cache, str(runs), train_files]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])["growth_mib"]


@pytest.mark.slow  # trains on ~1 GB of records in a subprocess
def test_a_training_set_larger_than_the_cache_budget_streams_within_it(large_tfrecords, tmp_path):
    data_mib = 12_000 * 32 * 32 * 3 * 4 / 2**20  # 141 MiB of float32 pixels
    # The run's fixed cost (tracing, the runtime's buffers): the same run on 200 examples.
    fixed = _peak_growth(large_tfrecords, "memory", tmp_path / "small", "eval.tfrecord")
    streamed = _peak_growth(large_tfrecords, "auto", tmp_path / "auto")
    in_memory = _peak_growth(large_tfrecords, "memory", tmp_path / "memory")
    assert in_memory > fixed + 0.75 * data_mib  # the check can fail: caching the split costs its size
    # Within the 32 MiB budget (the shuffle buffer takes half of it), plus 32 MiB for tf.data's
    # prefetch and interleave buffers; measured 18-39 MiB above the fixed cost on 2 cores.
    assert streamed < fixed + 32 + 32, f"peak RSS grew {streamed:.0f} MiB, {fixed:.0f} MiB without data, budget 32 MiB"
