"""BERT's WordPiece tokenizer with core TensorFlow ops only (no tensorflow-text), for serving graphs.

WordPiece (Wu et al. 2016; BERT, Devlin et al. 2019 — paper default): each word of the basic
tokenizer (:mod:`pipelines.text.bert_normalize`) is split greedily, longest match first, into
vocabulary pieces; pieces after the first carry the ``##`` prefix; a word that cannot be split
completely, or is longer than ``max_word_length``, becomes ``[UNK]`` as a whole. Spec: notes-001.md
§25 and notes-002-part2.md §54 (BERT input; WordPiece 30k is a paper default there).

Vectorised, without a loop over words or pieces:

1. every word is looked up whole (most words of a trained vocabulary are one piece);
2. for the others, every candidate piece ``word[s:e]`` (``e - s`` up to the longest vocabulary
   entry) is cut with ``tf.strings.substr`` and looked up at once, giving for every start ``s``
   the end of its longest match;
3. the greedy path ``0 → e(0) → e(e(0)) → …`` is found by pointer doubling: ``ceil(log2(L + 1))``
   rounds of "reached ∪ jump(reached)", ``jump ← jump ∘ jump`` over all start positions of all
   words; a word whose path reaches a start without a match is ``[UNK]``.

Reference: tensorflow-text's ``BertTokenizer(vocab, lower_case=True)`` and
``FastWordpieceTokenizer(vocab, no_pretokenization=True)`` (both with their default 100-byte word
limit) give the same ids; see ``tests/pipelines/text/test_wordpiece.py``.
"""

from __future__ import annotations

import collections
import math
import os
import re

import keras
import tensorflow as tf

from pipelines.text.bert_normalize import basic_tokenize


def read_vocabulary(vocabulary: list[str] | tuple[str, ...] | str | os.PathLike) -> list[str]:
    """A vocabulary as a list of tokens: the list itself, or a one-token-per-line UTF-8 file."""
    if isinstance(vocabulary, (str, os.PathLike)):
        with open(vocabulary, encoding="utf-8") as f:
            return [line.rstrip("\n") for line in f]
    return [str(token) for token in vocabulary]


def _table(keys: list[str], values: list[int]) -> tf.lookup.StaticHashTable:
    init = tf.lookup.KeyValueTensorInitializer(
        tf.constant(keys, tf.string), tf.constant(values, tf.int32), tf.string, tf.int32
    )
    return tf.lookup.StaticHashTable(init, default_value=-1)


@keras.saving.register_keras_serializable(package="tfmodels")
class WordPieceTokenizer(keras.layers.Layer):
    """Uncased BERT tokenizer: text → WordPiece ids, with core TensorFlow ops only.

    Traceable with ``tf.TensorSpec([None], tf.string)``; usable in ``tf.data`` maps and in
    SavedModel serving signatures (its lookup tables are tracked by the layer).

    Args:
        vocabulary: the tokens, id = position: a list, or a one-token-per-line file. Tokens must
            be unique and include ``unknown_token``.
        suffix_indicator: the prefix of a piece that continues a word.
        unknown_token: the token of a word that cannot be split.
        max_word_length: a longer word is ``unknown_token`` as a whole (100 in BERT).
        word_length_unit: ``"BYTE"`` (UTF-8 bytes, as tensorflow-text counts) or ``"UTF8_CHAR"``
            (characters, as Google's original ``WordpieceTokenizer`` counts); the same for ASCII.
        errors: invalid UTF-8 in the input: ``"replace"`` (U+FFFD), ``"ignore"`` or ``"strict"``.

    Example:
        >>> tokenizer = WordPieceTokenizer(["[PAD]", "[UNK]", "un", "##aff", "##able", ","])
        >>> tokenizer.tokenize(["Unaffable, xyz"]).to_list()
        [[2, 3, 4, 5, 1]]
        >>> tokenizer.detokenize([[2, 3, 4]]).numpy().tolist()
        [b'unaffable']
    """

    def __init__(
        self,
        vocabulary,
        suffix_indicator: str = "##",
        unknown_token: str = "[UNK]",
        max_word_length: int = 100,
        word_length_unit: str = "BYTE",
        errors: str = "replace",
        **kwargs,
    ):
        kwargs.setdefault("trainable", False)
        super().__init__(**kwargs)
        # Inputs are string tensors: Keras must not convert them to its float tensors.
        self._convert_input_args = False
        self._allow_non_tensor_positional_args = True
        tokens = read_vocabulary(vocabulary)
        duplicates = sorted(t for t, n in collections.Counter(tokens).items() if n > 1)
        if duplicates:
            raise ValueError(f"the vocabulary repeats tokens: {duplicates[:10]}")
        if unknown_token not in tokens:
            raise ValueError(f"the unknown token {unknown_token!r} is not in the vocabulary")
        if word_length_unit not in ("BYTE", "UTF8_CHAR"):
            raise ValueError(f"word_length_unit must be 'BYTE' or 'UTF8_CHAR', not {word_length_unit!r}")
        self.vocabulary = tokens
        self.suffix_indicator = suffix_indicator
        self.unknown_token = unknown_token
        self.max_word_length = int(max_word_length)
        self.word_length_unit = word_length_unit
        self.errors = errors
        self.unknown_id = tokens.index(unknown_token)
        suffixes = {t[len(suffix_indicator) :]: i for i, t in enumerate(tokens) if t.startswith(suffix_indicator)}
        # A piece is never empty, so "" can stand in for "no suffix" (a table cannot be empty).
        suffixes[""] = -1
        # A word's first piece is looked up as it is (so a word "##x" may match the token "##x").
        self._pieces = _table(tokens, list(range(len(tokens))))
        self._suffixes = _table(list(suffixes), list(suffixes.values()))
        self._longest_piece = max(len(t) for t in tokens)
        self._longest_suffix = max(len(s) for s in suffixes)

    def vocabulary_size(self) -> int:
        """The number of tokens (ids are ``0 .. vocabulary_size() - 1``)."""
        return len(self.vocabulary)

    def token_to_id(self, token: str) -> int:
        """The id of ``token`` (a ``ValueError`` if it is not in the vocabulary)."""
        return self.vocabulary.index(token)

    def call(self, strings):
        return self.tokenize(strings)

    def tokenize(self, strings) -> tf.RaggedTensor:
        """Text → ids: BERT's basic tokenizer (lower-case, accents, punctuation), then WordPiece.

        Args:
            strings: a 1-D string tensor (or list of str/bytes), UTF-8.

        Returns:
            ``tf.RaggedTensor`` int32 ``[num_strings, (num_pieces)]``.
        """
        words = basic_tokenize(strings, self.errors)
        ids, pieces_per_word = self._word_pieces(words.flat_values)
        pieces_per_string = tf.reduce_sum(words.with_flat_values(tf.cast(pieces_per_word, tf.int64)), axis=1)
        return tf.RaggedTensor.from_row_lengths(ids, pieces_per_string)

    def tokenize_words(self, words) -> tf.RaggedTensor:
        """Already split words → ids, one row per word (no normalisation).

        Args:
            words: a 1-D string tensor of words.

        Returns:
            ``tf.RaggedTensor`` int32 ``[num_words, (num_pieces)]``.
        """
        ids, pieces_per_word = self._word_pieces(tf.convert_to_tensor(words, tf.string))
        return tf.RaggedTensor.from_row_lengths(ids, tf.cast(pieces_per_word, tf.int64))

    def detokenize(self, ids) -> tf.Tensor:
        """Ids → text: pieces joined by spaces, ``##`` continuations glued to their word.

        Args:
            ids: ``[batch, (pieces)]`` ids (ragged or dense).

        Returns:
            A ``[batch]`` string tensor (lower-cased, punctuation spaced out: not the input text).
        """
        tokens = tf.gather(tf.constant(self.vocabulary), tf.ragged.constant(ids) if isinstance(ids, list) else ids)
        text = tf.strings.reduce_join(tokens, axis=-1, separator=" ")
        return tf.strings.regex_replace(text, " " + re.escape(self.suffix_indicator), "")

    def _word_pieces(self, words: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """``(ids [num_pieces], pieces_per_word [num_words])`` of a flat batch of words."""
        whole = self._pieces.lookup(words)
        too_long = tf.strings.length(words, unit=self.word_length_unit) > self.max_word_length
        to_split = (whole < 0) & ~too_long
        split_ids, split_counts, split_ok = self._split(tf.boolean_mask(words, to_split))
        split_index = tf.cast(tf.where(to_split)[:, 0], tf.int32)
        # Every word yields one id (itself or [UNK]) unless it was split into pieces: its output
        # slots read from [one id per word] + [the pieces of the split words].
        counts = tf.tensor_scatter_nd_update(
            tf.ones_like(whole), split_index[:, None], tf.where(split_ok, split_counts, 1)
        )
        first_piece = tf.size(whole) + tf.cumsum(tf.where(split_ok, split_counts, 0), exclusive=True)
        source = tf.tensor_scatter_nd_update(
            tf.range(tf.size(whole)), split_index[:, None], tf.where(split_ok, first_piece, split_index)
        )
        slot_source = tf.repeat(source, counts) + tf.ragged.range(counts).flat_values
        single_ids = tf.where(whole >= 0, whole, self.unknown_id)
        return tf.gather(tf.concat([single_ids, split_ids], 0), slot_source), counts

    def _split(self, words: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """Greedy longest-match-first split of words that are not one piece.

        Returns ``(ids, counts, ok)``: the pieces of the words that split completely (in order),
        the number of pieces per word and whether the word split completely.
        """
        chars, offsets = tf.strings.unicode_decode_with_offsets(words, "UTF-8", errors="replace")
        num_words = tf.shape(words, out_type=tf.int32)[0]
        char_word = tf.cast(chars.value_rowids(), tf.int32)
        num_chars = tf.cast(chars.row_lengths(), tf.int32)
        num_starts = tf.size(char_word)
        start = tf.range(num_starts) - tf.gather(tf.cast(chars.row_starts(), tf.int32), char_word)
        chars_left = tf.gather(num_chars, char_word) - start
        # Boundaries of a word: one before each character, then its end. Start s of word w has
        # boundary index (flat character index + w).
        def per_boundary(at_starts, at_ends):
            ends = tf.RaggedTensor.from_tensor(at_ends[:, None])
            return tf.concat([chars.with_flat_values(at_starts), ends], axis=1).flat_values

        num_boundaries = num_starts + num_words
        first_boundary = tf.range(num_starts) + char_word
        boundary_bytes = per_boundary(tf.cast(offsets.flat_values, tf.int32), tf.strings.length(words))

        # Candidates: (start, length) for lengths 1 .. min(chars left, longest vocabulary piece).
        longest = tf.where(start == 0, self._longest_piece, self._longest_suffix)
        num_candidates = tf.minimum(chars_left, longest)
        candidate_start = tf.repeat(tf.range(num_starts), num_candidates)
        candidate_length = tf.ragged.range(num_candidates).flat_values + 1
        begin = tf.gather(first_boundary, candidate_start)
        byte_begin = tf.gather(boundary_bytes, begin)
        byte_end = tf.gather(boundary_bytes, begin + candidate_length)
        candidates = tf.strings.substr(
            tf.gather(words, tf.gather(char_word, candidate_start)), byte_begin, byte_end - byte_begin
        )
        # Both lookups on all candidates cost less than partitioning the strings.
        candidate_ids = tf.where(
            tf.gather(start, candidate_start) > 0, self._suffixes.lookup(candidates), self._pieces.lookup(candidates)
        )
        # Longest match at each start: candidates of a start are contiguous, by increasing length.
        matched_length = tf.where(candidate_ids >= 0, candidate_length, 0)
        # (A start without candidates — no suffix is that short — gets the empty maximum: 0.)
        best_length = tf.maximum(tf.math.unsorted_segment_max(matched_length, candidate_start, num_starts), 0)
        best = tf.where(best_length > 0, tf.cumsum(num_candidates, exclusive=True) + best_length - 1, -1)
        best_id = tf.gather(tf.concat([candidate_ids, [-1]], 0), tf.where(best >= 0, best, tf.size(candidate_ids)))

        # Greedy path by pointer doubling over boundaries: a start jumps by its longest match
        # (stays put when nothing matches); the end of a word stays put.
        no_move = tf.zeros([num_words], tf.int32)
        jump = tf.range(num_boundaries) + per_boundary(best_length, no_move)
        reached = per_boundary(tf.cast(start == 0, tf.int32), no_move)
        for _ in range(math.ceil(math.log2(self.max_word_length + 1))):
            reached = tf.maximum(reached, tf.math.unsorted_segment_max(reached, jump, num_boundaries))
            jump = tf.gather(jump, jump)
        on_path = tf.gather(reached, first_boundary) > 0
        stuck = on_path & (best_length == 0)
        ok = tf.math.unsorted_segment_max(tf.cast(stuck, tf.int32), char_word, num_words) <= 0
        piece = on_path & tf.gather(ok, char_word)
        counts = tf.math.unsorted_segment_sum(tf.cast(piece, tf.int32), char_word, num_words)
        return tf.boolean_mask(best_id, piece), counts, ok

    def get_config(self):
        return {
            **super().get_config(),
            "vocabulary": self.vocabulary,
            "suffix_indicator": self.suffix_indicator,
            "unknown_token": self.unknown_token,
            "max_word_length": self.max_word_length,
            "word_length_unit": self.word_length_unit,
            "errors": self.errors,
        }
