"""pipelines.text.bert_pretraining: NSP pairs, packing, truncation and masking statistics."""

import numpy as np
import pytest
import tensorflow as tf

from pipelines.splits import Splits
from pipelines.text import bert_pretraining as bp
from pipelines.text.wordpiece import WordPieceTokenizer
from pipelines.text.wordpiece_vocabulary import RESERVED_TOKENS

PAD, UNK, CLS, SEP, MASK = range(5)
VOCABULARY_SIZE = 1000
MASKER = bp.Masker(VOCABULARY_SIZE, MASK, (PAD, CLS, SEP, MASK), max_predictions=20)


def truncate_seq_pair(a: list, b: list, max_tokens: int) -> tuple[int, int]:
    """BERT's loop (create_pretraining_data.py), trimming from the end."""
    a, b = list(a), list(b)
    while len(a) + len(b) > max_tokens:
        (a if len(a) > len(b) else b).pop()
    return len(a), len(b)


def test_packing_layout_and_segment_ids_exactly():
    packed = bp.pack_pairs(tf.ragged.constant([[11, 12, 13], [21]]), tf.ragged.constant([[14, 15], [22, 23]]), 10, CLS, SEP, PAD)
    assert packed["token_ids"].numpy().tolist() == [
        [CLS, 11, 12, 13, SEP, 14, 15, SEP, PAD, PAD],
        [CLS, 21, SEP, 22, 23, SEP, PAD, PAD, PAD, PAD],
    ]
    assert packed["segment_ids"].numpy().tolist() == [[0, 0, 0, 0, 0, 1, 1, 1, 0, 0], [0, 0, 0, 1, 1, 1, 0, 0, 0, 0]]
    assert packed["padding_mask"].numpy().tolist() == [[True] * 8 + [False] * 2, [True] * 6 + [False] * 4]
    assert packed["token_ids"].dtype == packed["segment_ids"].dtype == tf.int32


def test_truncation_trims_the_longer_sentence_from_its_end():
    packed = bp.pack_pairs(tf.ragged.constant([list(range(10, 20))]), tf.ragged.constant([[30, 31, 32]]), 9, CLS, SEP, PAD)
    assert packed["token_ids"].numpy().tolist() == [[CLS, 10, 11, 12, SEP, 30, 31, 32, SEP]]
    rng = np.random.default_rng(0)
    first, second = rng.integers(0, 40, 500), rng.integers(0, 40, 500)
    for max_tokens in (1, 2, 5, 13, 61):
        got = np.stack([t.numpy() for t in bp.truncated_lengths(tf.constant(first), tf.constant(second), max_tokens)], 1)
        expected = [truncate_seq_pair(range(a), range(b), max_tokens) for a, b in zip(first, second)]
        np.testing.assert_array_equal(got, expected)


def test_sentence_pairs_are_half_true_next_sentences_and_never_same_document_negatives():
    doc_of_sentence = np.repeat(np.arange(400), np.random.default_rng(1).integers(1, 100, 400))
    first, second, label = bp.sentence_pairs(doc_of_sentence, np.random.default_rng(7))
    assert len(first) == len(doc_of_sentence) - 400 > 15_000  # every sentence with a successor
    assert abs(label.mean() - 0.5) < 0.02  # 20k Bernoulli(0.5) draws: sd 0.0035
    np.testing.assert_array_equal(second[label == 1], first[label == 1] + 1)
    assert (doc_of_sentence[second[label == 0]] != doc_of_sentence[first[label == 0]]).all()
    assert len(np.unique(doc_of_sentence[second[label == 0]])) > 350  # spread over the documents
    again = bp.sentence_pairs(doc_of_sentence, np.random.default_rng(7))
    assert all((x == y).all() for x, y in zip((first, second, label), again))
    with pytest.raises(ValueError, match="two documents"):
        bp.sentence_pairs(np.zeros(5, int), np.random.default_rng(0))


def random_sequences(n: int, length: int, seed: int = 0) -> np.ndarray:
    """Packed-looking sequences: [CLS] tokens [SEP] tokens [SEP] [PAD]..., ordinary ids 5..999."""
    rng = np.random.default_rng(seed)
    ids = np.full((n, length), PAD, np.int32)
    for row, used in zip(ids, rng.integers(5, length + 1, n)):
        row[:used] = rng.integers(5, VOCABULARY_SIZE, used)
        row[0], row[used // 2], row[used - 1] = CLS, SEP, SEP
    return ids


def test_masking_statistics_over_many_sequences():
    ids = random_sequences(4000, 64)
    masked, positions, labels = (t for t in MASKER(tf.constant(ids), tf.constant([3, 4])))
    masked, positions = masked.numpy(), positions.numpy()
    weights, mlm_labels = labels["mlm_weights"].numpy(), labels["mlm_labels"].numpy()
    selectable = ~np.isin(ids, [PAD, CLS, SEP, MASK])
    n = selectable.sum(1)
    expected = np.minimum(20, np.maximum(np.minimum(n, 1), np.round(0.15 * n)))
    np.testing.assert_array_equal(weights.sum(1), expected)  # round(15%), at least 1, at most 20
    assert abs(weights.sum() / n.sum() - 0.15) < 0.01

    used = weights > 0
    rows = np.nonzero(used)[0]
    chosen = positions[used]
    assert selectable[rows, chosen].all()  # never [CLS], [SEP] or padding
    np.testing.assert_array_equal(mlm_labels[used], ids[rows, chosen])  # labels are the originals
    assert (used[:, 1:] <= used[:, :-1]).all()  # the used slots come first ...
    assert (np.diff(positions, axis=1)[used[:, 1:]] > 0).all()  # ... ascending and distinct
    assert (positions[~used] == 0).all() and (mlm_labels[~used] == 0).all()
    unselected = np.ones_like(ids, bool)
    unselected[rows, chosen] = False
    np.testing.assert_array_equal(masked[unselected], ids[unselected])  # nothing else changes

    new = masked[rows, chosen]
    assert used.sum() > 15_000  # shares below: sd at most 0.003, tolerances over 5 sd
    assert abs((new == MASK).mean() - 0.8) < 0.02
    random_token = (new != MASK) & (new != mlm_labels[used])
    assert abs(random_token.mean() - 0.1 * (1 - 1 / 995)) < 0.015  # a random draw may hit the original
    assert abs((new == mlm_labels[used]).mean() - (0.1 + 0.1 / 995)) < 0.015
    assert not np.isin(new[random_token], [PAD, CLS, SEP]).any()


def test_short_and_empty_sequences():
    ids = np.array([[CLS, 7, SEP, 8, SEP, PAD], [CLS, SEP, SEP, PAD, PAD, PAD]], np.int32)
    masker = bp.Masker(VOCABULARY_SIZE, MASK, (PAD, CLS, SEP, MASK), max_predictions=3)
    _, positions, labels = masker(tf.constant(ids), tf.constant([0, 1]))
    assert labels["mlm_weights"].numpy().tolist() == [[1, 0, 0], [0, 0, 0]]  # round(0.3) = 0, but at least 1
    assert positions.numpy()[0, 0] in (1, 3)


def test_masks_depend_on_the_seed_only():
    ids = tf.constant(random_sequences(50, 32))
    first = MASKER(ids, tf.constant([1, 2]))[0].numpy()
    assert (MASKER(ids, tf.constant([1, 2]))[0].numpy() == first).all()
    assert (MASKER(ids, tf.constant([1, 3]))[0].numpy() != first).any()


def test_remask_restores_the_originals_and_draws_new_masks():
    ids = random_sequences(64, 32)
    masked, positions, labels = MASKER(tf.constant(ids), tf.constant([5, 5]))
    features = {"token_ids": masked, "mask_positions": positions}
    transform = MASKER.train_transform(seed=1)
    new_features, new_labels = transform(features, {**labels, "nsp_label": tf.zeros([64], tf.int32)})
    assert (new_features["mask_positions"].numpy() != positions.numpy()).any()
    used = new_labels["mlm_weights"].numpy() > 0
    rows = np.nonzero(used)[0]
    np.testing.assert_array_equal(new_labels["mlm_labels"].numpy()[used], ids[rows, new_features["mask_positions"].numpy()[used]])
    again, _ = transform(features, labels)
    np.testing.assert_array_equal(again["token_ids"].numpy(), new_features["token_ids"].numpy())  # (seed, batch) decide
    reversed_batch = transform({k: v[::-1] for k, v in features.items()}, {k: v[::-1] for k, v in labels.items()})[0]
    assert (reversed_batch["token_ids"].numpy()[::-1] != new_features["token_ids"].numpy()).any()  # another batch: new masks
    other_seed, _ = MASKER.train_transform(seed=2)(features, labels)
    assert (other_seed["token_ids"].numpy() != new_features["token_ids"].numpy()).any()


@pytest.fixture(scope="module")
def tokenizer():
    words = [f"w{i}" for i in range(60)] + ["doc", "sentence", "."]
    return WordPieceTokenizer(list(RESERVED_TOKENS) + words)


def documents(n: int, offset: int = 0) -> tf.data.Dataset:
    """Document d: sentences "doc wD w<k> sentence." (k = 0, 1, ...)."""
    docs = [" ".join(f"Doc w{d + offset} w{k} sentence." for k in range(2 + d % 4)) for d in range(n)]
    return tf.data.Dataset.from_tensor_slices(docs)


def test_pretraining_datasets_from_hand_made_documents(tokenizer):
    splits = Splits(documents(12), documents(4, 20), documents(3, 40), {"source": "hand-made", "sizes": {}})
    data = bp.bert_pretraining_datasets(splits, tokenizer, seq_length=16, max_predictions=4, seed=3)
    features, labels = data.train.element_spec
    assert {k: (v.shape.as_list(), v.dtype) for k, v in features.items()} == {
        "token_ids": ([16], tf.int32),
        "segment_ids": ([16], tf.int32),
        "padding_mask": ([16], tf.bool),
        "mask_positions": ([4], tf.int32),
    }
    assert {k: (v.shape.as_list(), v.dtype) for k, v in labels.items()} == {
        "mlm_labels": ([4], tf.int32),
        "mlm_weights": ([4], tf.float32),
        "nsp_label": ([], tf.int32),
    }
    # Document d has 2 + d % 4 sentences: 1 + d % 4 pairs.
    assert data.info["sizes"] == {"train": sum(1 + d % 4 for d in range(12)), "validation": 1 + 2 + 3 + 4, "test": 1 + 2 + 3}
    assert data.info["source"] == "hand-made" and data.info["sentences"]["test"] == 9

    sep, cls = tokenizer.token_to_id("[SEP]"), tokenizer.token_to_id("[CLS]")
    for features, labels in data.validation:
        ids = features["token_ids"].numpy().copy()
        used = labels["mlm_weights"].numpy() > 0
        ids[features["mask_positions"].numpy()[used]] = labels["mlm_labels"].numpy()[used]
        a_end, b_end = np.flatnonzero(ids == sep)
        assert ids[0] == cls and (features["segment_ids"].numpy() == (np.arange(16) > a_end) & (np.arange(16) <= b_end)).all()
        first_doc = ids[2]  # "doc wD ..." : the document's own word
        same_doc = ids[a_end + 2] == first_doc
        assert same_doc == bool(labels["nsp_label"])

    def epoch(ds):
        return [(f["token_ids"].numpy(), l["nsp_label"].numpy()) for f, l in ds]

    val_1, val_2, train_1, train_2 = epoch(data.validation), epoch(data.validation), epoch(data.train), epoch(data.train)
    assert all((a[0] == b[0]).all() for a, b in zip(val_1, val_2))  # evaluation masks are fixed
    assert any((a[0] != b[0]).any() for a, b in zip(train_1, train_2))  # training masks are redrawn
    assert [a[1] for a in train_1] == [b[1] for b in train_2]  # ... on the same pairs
    again = bp.bert_pretraining_datasets(splits, tokenizer, seq_length=16, max_predictions=4, seed=3)
    assert all((a[0] == b[0]).all() for a, b in zip(epoch(again.train), train_1))  # seeded
