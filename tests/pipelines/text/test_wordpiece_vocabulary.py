"""pipelines.text.wordpiece_vocabulary: learning from documents, reserved tokens, file round trip."""

import pytest
import tensorflow as tf

from pipelines.text import corpus
from pipelines.text.bert_normalize import basic_tokenize
from pipelines.text.wordpiece import WordPieceTokenizer
from pipelines.text.wordpiece_vocabulary import (
    RESERVED_TOKENS,
    learn_vocabulary,
    load_vocabulary,
    save_vocabulary,
)


@pytest.fixture(scope="module")
def documents() -> tf.data.Dataset:
    return corpus.documents().take(8)


@pytest.fixture(scope="module")
def vocabulary(documents) -> list[str]:
    return learn_vocabulary(documents, 300, min_frequency=3)


def test_reserved_tokens_come_first_in_bert_order(vocabulary):
    assert RESERVED_TOKENS == ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
    assert vocabulary[:5] == list(RESERVED_TOKENS)
    assert len(vocabulary) <= 300 and len(set(vocabulary)) == len(vocabulary)


def test_learned_tokens_are_pieces_of_the_corpus_words(documents, vocabulary):
    words = {w.decode() for batch in documents.batch(8) for w in basic_tokenize(batch).flat_values.numpy()}
    text = " ".join(words)
    learned = vocabulary[5:]
    assert all(token.removeprefix("##") in text for token in learned)
    assert sum(token in words for token in learned) > 100  # whole frequent words ...
    assert any(token.startswith("##") and len(token) > 3 for token in learned)  # ... and suffixes
    assert {"the", "statement", "expression"} <= set(learned)


def test_every_word_of_the_corpus_can_be_split(documents, vocabulary):
    tokenizer = WordPieceTokenizer(vocabulary)
    ids = tokenizer.tokenize(list(documents.as_numpy_iterator())).flat_values.numpy()
    assert (ids != tokenizer.unknown_id).all() and (ids >= len(RESERVED_TOKENS)).all()


def test_learning_is_deterministic_and_respects_the_size(documents, vocabulary):
    assert learn_vocabulary(documents, 300, min_frequency=3) == vocabulary
    small = learn_vocabulary(documents, 120, min_frequency=3)
    assert len(small) <= 120 and small[:5] == list(RESERVED_TOKENS)


def test_other_reserved_tokens_keep_their_order():
    docs = tf.data.Dataset.from_tensor_slices(["the cat sat on the mat"] * 20)
    assert learn_vocabulary(docs, 30, reserved_tokens=("<pad>", "<unk>"))[:3] == ["<pad>", "<unk>", "a"]


def test_file_round_trip(vocabulary, tmp_path):
    path = save_vocabulary(vocabulary + ["ünïcode", "##中"], tmp_path / "vocab.txt")
    assert path.read_text(encoding="utf-8").splitlines()[:2] == ["[PAD]", "[UNK]"]
    assert load_vocabulary(path) == vocabulary + ["ünïcode", "##中"]
    assert WordPieceTokenizer(path).vocabulary_size() == len(vocabulary) + 2
    with pytest.raises(ValueError, match="line break"):
        save_vocabulary(["[UNK]", "a\nb"], tmp_path / "bad.txt")
