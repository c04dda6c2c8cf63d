"""pipelines.text.translation: the embedded number task, file / TFDS pairs, normalisation, splits, teacher forcing."""

import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from pipelines.sources import DataSourceError
from pipelines.text import translation
from pipelines.text.vocabulary import BOS_ID, EOS_ID, PAD_ID


@pytest.mark.parametrize(
    "n, words",
    [
        (0, "zero"),
        (13, "thirteen"),
        (40, "forty"),
        (42, "forty-two"),
        (100, "one hundred"),
        (305, "three hundred and five"),
        (1000, "one thousand"),
        (1010, "one thousand and ten"),
        (1100, "one thousand one hundred"),
        (3005, "three thousand and five"),
        (21_000, "twenty-one thousand"),
        (100_001, "one hundred thousand and one"),
        (300_005, "three hundred thousand and five"),
        (999_999, "nine hundred and ninety-nine thousand nine hundred and ninety-nine"),
    ],
)
def test_number_words_are_british_english(n, words):
    assert translation.number_words(n) == words


def test_number_words_rejects_numbers_outside_the_range():
    with pytest.raises(ValueError, match="0..999999"):
        translation.number_words(1_000_000)


def test_embedded_pairs_are_deterministic_distinct_and_digits_match_the_words():
    pairs = translation.number_pairs()
    assert pairs == translation.number_pairs() and len(pairs) == 12_101
    assert len({s for s, _ in pairs}) == len(pairs)
    # every target reads back as the number its words name (checked against an independent parse)
    units = {w: i for i, w in enumerate(translation._UNITS)}
    tens = {w: 10 * i for i, w in enumerate(translation._TENS) if i >= 2}

    def parse(words):
        total = current = 0
        for word in words.split():
            if word == "thousand":
                total, current = (total + current) * 1000, 0
            elif word == "hundred":
                current *= 100
            elif word != "and":
                head, _, unit = word.partition("-")
                current += tens.get(head, units.get(head, 0)) + (units[unit] if unit else 0)
        return total + current

    assert all(parse(s) == int(t.replace(" ", "")) for s, t in pairs)
    lengths = {len(t.split()) for _, t in pairs}
    assert lengths == {1, 2, 3, 4, 5, 6} and max(len(s.split()) for s, _ in pairs) == 9


def test_normalize_is_d2ls_preprocess_nmt():
    texts = tf.constant(["Go.", "J'ai PERDU\u202f!", "Élan,  vite?", "  deux\u00a0mots  "])
    assert [t.decode() for t in translation.normalize(texts).numpy()] == ["go .", "j'ai perdu !", "élan , vite ?", "deux mots"]
    assert translation.tokenize(tf.constant(["Hi, you."])).to_list() == [[b"hi", b",", b"you", b"."]]


def test_teacher_forcing_appends_eos_then_shifts_with_bos_and_truncates():
    inputs, labels = translation.teacher_forcing(tf.ragged.constant([[7, 8, 9], [5], []]), 3)
    assert labels.numpy().tolist() == [[7, 8, 9], [5, EOS_ID, PAD_ID], [EOS_ID, PAD_ID, PAD_ID]]
    assert inputs.numpy().tolist() == [[BOS_ID, 7, 8], [BOS_ID, 5, EOS_ID], [BOS_ID, EOS_ID, PAD_ID]]


def test_splits_keep_every_source_in_one_split_and_vocabularies_come_from_training_pairs(tmp_path):
    lines = ["Go.\tVa !\tCC-BY", "Go.\tBouge !\tCC-BY", "go .\tEn route !\tCC-BY", "Hi.\tSalut !\tCC-BY",
             "Run!\tCours !\tCC-BY", "Who?\tQui ?\tCC-BY", "Wow!\tÇa alors !\tCC-BY", "Fire!\tAu feu !\tCC-BY",
             "", "Help!\tÀ l'aide !\tCC-BY", "Jump.\tSaute.\tCC-BY"]
    path = tmp_path / "fra.txt"
    path.write_text("\n".join(lines), encoding="utf-8")
    pairs = translation.load_pairs(f"file:{path}")
    assert len(pairs) == 10 and pairs[1] == ("Go.", "Bouge !")
    data = translation.load(f"file:{path}", fractions=(0.25, 0.25))
    where = {split: {translation.normalize(tf.constant(s)).numpy().decode() for s, _ in part} for split, part in data.pairs.items()}
    assert not (where["train"] & where["test"]) and not (where["train"] & where["validation"])
    go = [split for split, sources in where.items() if "go ." in sources]
    assert len(go) == 1 and sum(s.lower().startswith("go") for s, _ in data.pairs[go[0]]) == 3
    train_target_words = {w.decode() for t in data.pairs["train"] for w in translation.tokenize(tf.constant([t[1]])).flat_values.numpy()}
    assert set(data.target_vocabulary.tokens[4:]) == train_target_words
    features, label = next(iter(data.examples("train", 5).batch(100)))
    assert features["source_ids"].shape[1] == features["decoder_input_ids"].shape[1] == label.shape[1] == 5
    assert (features["decoder_input_ids"][:, 0].numpy() == BOS_ID).all()


def test_embedded_task_splits_by_number_with_unseen_test_numbers():
    data = translation.load("embedded")
    train = {s for s, _ in data.pairs["train"]}
    assert data.info["sizes"] == {"train": 9681, "validation": 1210, "test": 1210}
    assert not train & {s for s, _ in data.pairs["test"]}
    assert data.target_vocabulary.tokens[4:] and sorted(data.target_vocabulary.tokens[4:]) == list("0123456789")


def test_bad_files_are_clear_errors(tmp_path):
    with pytest.raises(DataSourceError, match="not found"):
        translation.load_pairs(f"file:{tmp_path / 'nope.txt'}")
    (tmp_path / "no_tab.txt").write_text("Go. Va !\n", encoding="utf-8")
    with pytest.raises(DataSourceError, match="no_tab.txt:1: expected 'source<TAB>target'"):
        translation.load_pairs(f"file:{tmp_path / 'no_tab.txt'}")
    with pytest.raises(DataSourceError, match="accepts: embedded, file:<name>, tfds:<name>"):
        translation.load_pairs("sklearn:digits")


def test_tfds_translation_pairs_are_read_as_supervised():
    with tfds.testing.mock_data(num_examples=20):
        pairs = translation.load_pairs("tfds:ted_hrlr_translate/pt_to_en")
        data = translation.load("tfds:ted_hrlr_translate/pt_to_en:validation", fractions=(0.2, 0.2))
    assert len(pairs) == 20 and all(isinstance(s, str) and isinstance(t, str) for s, t in pairs)
    assert sum(data.info["sizes"].values()) == 20 and data.info["source"] == "tfds:ted_hrlr_translate/pt_to_en:validation"


def test_tfds_sets_without_string_pairs_are_refused():
    with tfds.testing.mock_data(num_examples=3):
        with pytest.raises(DataSourceError, match="not a translation set"):
            translation.load_pairs("tfds:mnist")
