"""rnn_lm, gru_lm, lstm_lm, deep_lstm_lm (notes-002-part2 §32–§38): data, training, baselines, generate/score serving."""

import json
import math
import shutil
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfmodels
from pipelines.splits import split_indices
from pipelines.text.vocabulary import BOS_ID, UNK_ID, Vocabulary
from tfmodels.config import resolve
from tfmodels.models.ngram_lm import NgramLanguageModel
from tfmodels.recipes import language_models as recipe
from tfmodels.training.trainer import evaluate_run

MODELS = ["rnn_lm", "gru_lm", "lstm_lm", "deep_lstm_lm"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """``trained(name)``: the MODEL trained at the tiny preset and exported, once per module."""
    root = tmp_path_factory.mktemp("language_models")
    runs = {}

    def train(name):
        if name not in runs:
            runs[name] = tfmodels.train(name, preset="tiny", runs_root=root / "runs", export_root=root / "saved_models")
        return runs[name]

    return train


@pytest.fixture(scope="module")
def lstm(trained):
    return trained("lstm_lm")


@pytest.fixture(scope="module")
def signatures(lstm):
    return tf.saved_model.load(str(lstm.export_path)).signatures


@pytest.fixture(scope="module")
def tiny_cfg():
    return resolve(recipe.LstmLmConfig, "tiny")


def served_prefix_ids(cfg, text: str) -> list[int]:
    """What the serving graph feeds the model for ``text``: ``<bos>`` and the normalised tokens."""
    vocabulary = recipe.run_vocabulary(cfg)
    return [BOS_ID, *vocabulary.text_layer(cfg.level)(tf.constant([text])).numpy()[0].tolist()]


@pytest.mark.parametrize(  # the GRU and the deep LSTM are the same recipe with another cell: slow
    "name", [pytest.param(name, marks=pytest.mark.slow) if name in ("gru_lm", "deep_lstm_lm") else name for name in MODELS]
)
def test_trains_at_tiny_beats_the_uniform_baseline_and_generates_from_raw_text(trained, name):
    run = trained(name)
    history = np.genfromtxt(run.run_dir / "history.csv", delimiter=",", names=True)
    assert history["loss"][-1] < history["loss"][0]
    report, vocab_size = run.metrics["report"], run.metrics["data"]["vocab_size"]
    baselines = report["baselines"]
    assert baselines["uniform_perplexity"] == vocab_size == 31  # 26 letters, space, 4 reserved
    assert report["test_perplexity"] == pytest.approx(run.metrics["test"]["perplexity"], rel=1e-4)
    assert report["test_perplexity"] < vocab_size
    assert sorted(baselines["ngram_by_order"]) == ["1", "2", "3", "4", "5"]
    by_validation = min(baselines["ngram_by_order"].values(), key=lambda r: r["validation_perplexity"])
    assert baselines["best_ngram"]["test_perplexity"] == by_validation["test_perplexity"]
    assert baselines["unigram_perplexity"] == baselines["ngram_by_order"]["1"]["test_perplexity"]
    assert 0.5 < report["zipf_exponent"] < 3 and Path(report["zipf_plot"]).read_bytes()[:4] == b"\x89PNG"

    generate = tf.saved_model.load(str(run.export_path)).signatures["serving_default"]
    answer = generate(prefix=tf.constant(["The value of", ""]), temperature=tf.constant(0.0),
                      num_tokens=tf.constant(12), seed=tf.constant(0, tf.int64))
    ids = answer["continuation_ids"].numpy()
    assert ids.shape == (2, 12) and answer["prefix_tokens"].numpy().tolist() == [12, 0]
    assert report["vocabulary"] == str(run.run_dir / "assets" / "vocabulary.txt")
    assert not (run.run_dir / "vocabulary.txt").exists()  # the run asset is the one copy
    tokens = Vocabulary.load(report["vocabulary"]).tokens
    assert [t.decode() for t in answer["continuation"].numpy()] == ["".join(tokens[i] for i in row) for row in ids]


def test_export_verifies_with_stock_tensorflow(lstm):
    assert tfmodels.verify_export(lstm.export_path)["signatures"] == ["score", "serving_default"]


def test_greedy_generation_equals_a_python_loop_over_the_keras_model(lstm, signatures, tiny_cfg):
    answer = signatures["serving_default"](prefix=tf.constant(["The VALUE of!"]), temperature=tf.constant(0.0),
                                           num_tokens=tf.constant(15), seed=tf.constant(0, tf.int64))
    sequence = served_prefix_ids(tiny_cfg, "the value of")
    for _ in range(15):
        sequence.append(int(np.argmax(lstm.model.predict(np.array([sequence]), verbose=0)[0, -1])))
    assert answer["continuation_ids"].numpy()[0].tolist() == sequence[-15:]


def test_sampling_is_reproducible_per_seed(signatures):
    def sample(seed):
        return signatures["serving_default"](prefix=tf.constant(["the value", "object"]), temperature=tf.constant(1.0),
                                             num_tokens=tf.constant(30), seed=tf.constant(seed, tf.int64))["continuation"].numpy()

    np.testing.assert_array_equal(sample(3), sample(3))
    assert not np.array_equal(sample(3), sample(4))


def test_generation_rejects_too_many_tokens_with_the_limit_in_the_message(signatures, tiny_cfg):
    with pytest.raises(tf.errors.InvalidArgumentError, match=f"at most {tiny_cfg.max_new_tokens}"):
        signatures["serving_default"](prefix=tf.constant(["the"]), temperature=tf.constant(0.0),
                                      num_tokens=tf.constant(tiny_cfg.max_new_tokens + 1), seed=tf.constant(0, tf.int64))


def test_score_signature_is_the_models_perplexity_of_the_text(lstm, signatures, tiny_cfg):
    scored = signatures["score"](text=tf.constant(["The value of the object.", "", "?!"]))
    ids = served_prefix_ids(tiny_cfg, "the value of the object")
    logits = lstm.model.predict(np.array([ids[:-1]]), verbose=0)[0]
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    log_likelihood = float(sum(log_probs[t, token] for t, token in enumerate(ids[1:])))
    assert scored["num_tokens"].numpy().tolist() == [len(ids) - 1, 0, 0]
    np.testing.assert_allclose(scored["log_likelihood"].numpy()[0], log_likelihood, rtol=1e-4)
    np.testing.assert_allclose(scored["perplexity"].numpy(), [math.exp(-log_likelihood / (len(ids) - 1)), 1.0, 1.0], rtol=1e-4)


def test_a_uniform_model_scores_the_vocabulary_size_through_the_recipes_metric(tiny_cfg):
    """§33: zero logits (a uniform distribution) give perplexity = |V| exactly."""
    model = recipe.LSTM_LM.model(tiny_cfg)
    for weight in model.get_layer("logits").weights:
        weight.assign(tf.zeros_like(weight))
    model.compile(**recipe.compile_args(tiny_cfg))
    results = model.evaluate(recipe.datasets(tiny_cfg).test.batch(64), verbose=0, return_dict=True)
    assert results["perplexity"] == pytest.approx(31.0, rel=1e-5)
    assert results["loss"] == pytest.approx(math.log(31.0), rel=1e-5)
    score = recipe.serving(tiny_cfg, model).endpoints["score"].fn(text=tf.constant(["a text of letters"]))
    assert float(score["perplexity"][0]) == pytest.approx(31.0, rel=1e-5)


def test_a_copied_run_serves_and_evaluates_alike_with_its_text_file_gone(tmp_path):
    """The vocabulary and the test split come from the run folder: the copy needs neither the file nor the original."""
    rng = np.random.default_rng(0)
    words = ["value", "object", "method", "class", "return", "module", "string", "number", "list", "type"]
    text_file = tmp_path / "docs.txt"
    text_file.write_text("\n\n".join(" ".join(rng.choice(words, 60)) + "." for _ in range(20)))
    run = tfmodels.train("rnn_lm", preset="tiny", data=f"file:{text_file}", runs_root=tmp_path / "runs",
                         export_root=tmp_path / "saved_models")
    assert run.metrics["data"]["vocab_size"] < 31  # the file's letters, not pydoc_data's
    copy = tmp_path / "elsewhere" / "run"
    shutil.copytree(run.run_dir, copy)
    text_file.unlink()
    shutil.rmtree(run.run_dir)

    exported = tfmodels.export(copy, tmp_path / "copied_models")
    assert tfmodels.verify_export(exported)["signatures"] == ["score", "serving_default"]
    expected = [json.loads((path / "assets.extra" / "expected_outputs.json").read_text()) for path in (run.export_path, exported)]
    assert expected[0] == expected[1]
    texts = tf.constant(["The value of", "", "a class zyzzyva"])
    requests = {
        "score": {"text": texts},
        "serving_default": {"prefix": texts, "temperature": tf.constant(0.8), "num_tokens": tf.constant(20),
                            "seed": tf.constant(5, tf.int64)},
    }
    original, copied = (tf.saved_model.load(str(path)).signatures for path in (run.export_path, exported))
    for name, request in requests.items():
        answers = original[name](**request), copied[name](**request)
        for output in answers[0]:
            np.testing.assert_array_equal(answers[0][output].numpy(), answers[1][output].numpy())
    assert evaluate_run(copy)["test"] == pytest.approx(run.metrics["test"], rel=1e-6)


def test_client_texts_are_runs_of_corpus_tokens_without_blank_ends():
    vocabulary = Vocabulary(["<pad>", "<unk>", "<bos>", "<eos>", " ", "a", "b"])
    windows = [
        [5, 4, 6, 2, 4, 5, 4, 6, 6, 4],  # "a b" <bos> " a bb ": the longest run, its blanks stripped
        [4, 4, 4, 1, 4, 4, 4, 4, 4, 4],  # blanks only: no text
        [6, 6, 6, 6, 6, 6, 6, 6, 4, 5],  # cut to max_tokens
        [5, 5, 5, 5, 5, 5, 5, 5, 5, 5],  # past count
    ]
    test = tf.data.Dataset.from_tensor_slices((windows, windows))
    texts = recipe.client_texts(test, vocabulary, "char", 2, 7)
    assert texts == [[5, 4, 6, 6], [6] * 7]
    assert recipe.client_texts(test, vocabulary, "word", 5, 7) == [[4, 5, 4, 6, 6, 4], [4, 4, 4, 4, 4, 4], [6] * 7, [5] * 7]


def test_word_level_serving_reads_unknown_words_as_unk():
    cfg = resolve(recipe.LstmLmConfig, "tiny", {"level": "word", "embedding_dim": 8})
    vocabulary = recipe.run_vocabulary(cfg)
    assert "zyzzyva" not in vocabulary.tokens
    model = recipe.LSTM_LM.model(cfg)
    answer = recipe.serving(cfg, model).endpoints["serving_default"].fn(
        prefix=tf.constant(["the zyzzyva", ""]), temperature=tf.constant(0.0), num_tokens=tf.constant(4),
        seed=tf.constant(0, tf.int64),
    )
    assert answer["prefix_tokens"].numpy().tolist() == [2, 0]
    words = [text.decode().split(" ") for text in answer["continuation"].numpy()]
    assert [len(w) for w in words] == [4, 4] and all(w in vocabulary.tokens for row in words for w in row)
    ids, _ = recipe.TextCodec(vocabulary, "word").documents(tf.constant(["the zyzzyva"]))
    assert ids.numpy()[0].tolist() == [BOS_ID, vocabulary.tokens.index("the"), UNK_ID, 0]


def test_examples_are_subsequences_with_labels_shifted_by_one(tiny_cfg):
    splits = recipe.datasets(tiny_cfg)
    n = tiny_cfg.num_steps
    stream = recipe.token_corpus(tiny_cfg).streams["test"]
    x, y = next(iter(splits.test.batch(1000)))
    assert x.shape[1] == n and len(x) == (len(stream) - 1) // n
    np.testing.assert_array_equal(x.numpy().reshape(-1), stream[: len(x) * n])
    np.testing.assert_array_equal(y.numpy().reshape(-1), stream[1 : len(x) * n + 1])
    chunks, labels = next(iter(splits.train.batch(4)))
    assert chunks.shape == (4, 2 * n - 1)
    np.testing.assert_array_equal(chunks.numpy()[:, 1:], labels.numpy()[:, :-1])


def test_training_windows_move_with_the_batch_and_repeat_for_the_same_batch(tiny_cfg):
    """§25's random offset: a window of num_steps at an offset in [0, num_steps) of each chunk."""
    n = tiny_cfg.num_steps
    crop = recipe.train_transform(tiny_cfg)
    train = list(recipe.datasets(tiny_cfg).train.batch(8).take(2).as_numpy_iterator())
    (chunks, labels), (other_chunks, other_labels) = train
    x, y = (v.numpy() for v in crop(chunks, labels))
    assert x.shape == y.shape == (8, n)
    np.testing.assert_array_equal(x[:, 1:], y[:, :-1])
    offsets = [next(o for o in range(n) if (chunks[r, o : o + n] == x[r]).all()) for r in range(8)]
    assert len(set(offsets)) > 1
    np.testing.assert_array_equal(crop(chunks, labels)[0], x)  # same batch → same windows
    reordered = crop(chunks[::-1], labels[::-1])[0].numpy()[::-1]  # other batch content → other offsets
    assert not np.array_equal(reordered, x)
    assert not np.array_equal(crop(other_chunks, other_labels)[0].numpy(), other_chunks[:, :n])


def test_the_vocabulary_comes_from_the_training_documents_only(tmp_path):
    words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet"]
    (tmp_path / "docs.txt").write_text("\n\n".join(f"shared text {w} {w}" for w in words))
    cfg = resolve(recipe.LstmLmConfig, "tiny", {"data": f"file:{tmp_path / 'docs.txt'}", "level": "word", "min_freq": 1})
    train, validation, test = split_indices(len(words), (0.1, 0.1), cfg.seed)
    data = recipe.token_corpus(cfg)
    vocabulary = set(data.vocabulary.tokens)
    assert {words[i] for i in train} | {"shared", "text"} <= vocabulary
    assert not {words[i] for i in [*validation, *test]} & vocabulary
    assert (data.streams["test"] == UNK_ID).sum() == 2 and (data.streams["test"] == BOS_ID).sum() == 1


def test_ngram_window_perplexity_scores_labels_from_each_windows_first_token():
    counts = [{(0,): 2, (1,): 2, (2,): 1}, {(0, 1): 2, (1, 0): 1, (1, 2): 1}]  # "a b a b c"
    x, y = np.array([[0, 1]]), np.array([[1, 2]])
    unigram = NgramLanguageModel(3, 1, 0.0).fit(counts)
    assert recipe.ngram_window_perplexity(unigram, x, y) == pytest.approx((0.4 * 0.2) ** -0.5)  # p(b), p(c)
    bigram = NgramLanguageModel(3, 2, 0.0).fit(counts)
    assert recipe.ngram_window_perplexity(bigram, x, y) == pytest.approx((1.0 * 0.5) ** -0.5)  # p(b|a), p(c|b)


def test_paper_presets_are_d2ls_settings():
    for config, hidden, rate, layers in [
        (recipe.RnnLmConfig, 512, 1.0, 1), (recipe.GruLmConfig, 256, 1.0, 1),
        (recipe.LstmLmConfig, 256, 1.0, 1), (recipe.DeepLstmLmConfig, 256, 2.0, 2),
    ]:
        cfg = resolve(config, "paper")
        assert (cfg.optimizer, cfg.learning_rate, cfg.clip_global_norm, cfg.epochs) == ("sgd", rate, 1.0, 500)
        assert (cfg.batch_size, cfg.num_steps, cfg.hidden_units, cfg.num_layers, cfg.max_tokens) == (32, 35, hidden, layers, 10_000)
        assert (cfg.level, cfg.embedding_dim) == ("char", 0)
