"""seq2seq, seq2seq_attention and transformer_mt recipes (notes-002-part2 §40–§53): training, report, translate serving."""

import base64
import json

import numpy as np
import pytest
import tensorflow as tf

import tfmodels
from pipelines.text import translation
from pipelines.text.vocabulary import EOS_ID, PAD_ID, Vocabulary
from tfmodels.config import ConfigError, resolve
from tfmodels.recipes import seq2seq as recipe
from tfmodels.training.run_folder import RunFolder
from tfmodels.training.trainer import run_config


def train_tiny(name, root, data=None):
    return tfmodels.train(name, preset="tiny", data=data, runs_root=root / "runs", export_root=root / "saved_models")


@pytest.fixture(scope="module")
def pairs_file(tmp_path_factory):
    """The embedded number pairs as a tab-separated file: the same task from a source a test can take away."""
    path = tmp_path_factory.mktemp("pairs") / "numbers.txt"
    path.write_text("".join(f"{source}\t{target}\n" for source, target in translation.number_pairs()), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def attention_run(tmp_path_factory, pairs_file):
    return train_tiny("seq2seq_attention", tmp_path_factory.mktemp("seq2seq_attention"), data=f"file:{pairs_file}")


@pytest.fixture(scope="module")
def cfg(attention_run):
    """The run's config, reading its vocabularies from the run folder."""
    return run_config(RunFolder.open(attention_run.run_dir))


@pytest.fixture(scope="module")
def signatures(attention_run):
    return tf.saved_model.load(str(attention_run.export_path)).signatures


def check_run(run):
    history = np.genfromtxt(run.run_dir / "history.csv", delimiter=",", names=True)
    assert history["loss"][-1] < history["loss"][0]
    report = run.metrics["report"]
    assert report["test_pairs"] == run.metrics["data"]["sizes"]["test"] == 60
    for name in ("greedy", "beam_4", *(f"baselines_{b}" for b in ("copy_source", "most_frequent_target", "nearest_source"))):
        scores = report[name] if name in report else report["baselines"][name.removeprefix("baselines_")]
        assert 0 <= scores["bleu"] <= 1 and 0 <= scores["corpus_bleu"] <= 1 and 0 <= scores["exact_match"] <= 1
    assert report["baselines"]["copy_source"]["bleu"] == 0.0  # words never equal digits
    assert len(report["samples"]) == 8 and {"source", "reference", "greedy", "beam_4"} <= set(report["samples"][0])
    assets = run.run_dir / "assets"
    assert Vocabulary.load(assets / "target_vocabulary.txt").size == 14
    assert Vocabulary.load(assets / "source_vocabulary.txt").size == run.metrics["data"]["source_vocab_size"]


SIGNATURES = ["greedy", "sample", "serving_default"]


def test_attention_model_trains_reports_and_its_export_verifies_with_stock_tensorflow(attention_run):
    check_run(attention_run)
    assert tfmodels.verify_export(attention_run.export_path)["signatures"] == SIGNATURES


@pytest.mark.slow
@pytest.mark.parametrize("name", ["seq2seq", "transformer_mt"])
def test_the_other_models_train_and_export(tmp_path, name):
    run = train_tiny(name, tmp_path)
    check_run(run)
    assert tfmodels.verify_export(run.export_path)["signatures"] == SIGNATURES


def test_translate_answers_raw_strings_including_empty_unknown_and_overlong(signatures):
    long = " ".join(["seven"] * 14)
    sources = tf.constant(["Three hundred and FORTY-two!", "", "   ?  ", "seven zyzzyva", long])
    for name in ("serving_default", "greedy"):
        out = {k: v.numpy() for k, v in signatures[name](source=sources).items()}
        assert out["source_tokens"].tolist() == [5, 0, 1, 2, 14]  # "?" is a token: d2l keeps punctuation
        assert out["translation"][1] == b"" and out["translation_length"][1] == 0 and out["score"][1] == 0.0
        assert (out["translation_ids"][1] == PAD_ID).all()
        assert out["translation_ids"].shape == (5, 10)
        assert np.isfinite(out["score"]).all() and (out["log_probability"] <= 0).all()


def test_sampling_is_reproducible_per_seed_and_greedy_at_temperature_zero(signatures):
    sources = tf.constant(["three thousand and five", "forty-two", ""])

    def draw(temperature, seed):
        out = signatures["sample"](source=sources, temperature=tf.constant(temperature), seed=tf.constant(seed, tf.int64))
        return {k: v.numpy() for k, v in out.items()}

    greedy = signatures["greedy"](source=sources)
    cold = draw(0.0, 3)
    np.testing.assert_array_equal(cold["translation_ids"], greedy["translation_ids"].numpy())
    np.testing.assert_allclose(cold["log_probability"], greedy["log_probability"].numpy(), rtol=1e-5)
    np.testing.assert_array_equal(draw(3.0, 5)["translation_ids"], draw(3.0, 5)["translation_ids"])
    hot = [draw(3.0, seed)["translation_ids"] for seed in range(4)]
    assert any(not np.array_equal(hot[0], other) for other in hot[1:])
    assert draw(1.0, 0)["translation"][2] == b""
    with pytest.raises(tf.errors.InvalidArgumentError, match="temperature must be a finite number >= 0"):
        draw(-1.0, 0)


def test_translation_text_is_the_ids_before_eos(attention_run, signatures):
    out = signatures["serving_default"](source=tf.constant(["forty-two", "nine thousand and one", "zero"]))
    tokens = Vocabulary.load(attention_run.run_dir / "assets" / "target_vocabulary.txt").tokens
    for text, ids, length in zip(out["translation"].numpy(), out["translation_ids"].numpy(), out["translation_length"].numpy()):
        words = [tokens[i] for i in ids[:length] if i != EOS_ID]
        assert text.decode() == " ".join(words)
        assert (ids[length:] == PAD_ID).all()


def test_serving_equals_decoding_with_the_keras_model(attention_run, cfg, signatures):
    translator = recipe.Translator(cfg, attention_run.model)
    sources = tf.constant(["three thousand and five", "forty-two", "one hundred"])
    for name, k in (("greedy", 1), ("serving_default", cfg.beam_width)):
        served = signatures[name](source=sources)
        direct = translator(sources, k)
        np.testing.assert_array_equal(served["translation_ids"].numpy(), direct["translation_ids"].numpy())
        np.testing.assert_allclose(served["score"].numpy(), direct["score"].numpy(), rtol=1e-5)


def test_over_long_sources_are_truncated_to_num_steps_like_training_examples(attention_run, cfg):
    translator = recipe.Translator(cfg, attention_run.model)
    words = "nine hundred and ninety-nine thousand nine hundred and ninety-nine seven seven seven"
    first_ten = " ".join(words.split()[:10])
    a, b = translator(tf.constant([words]), 1), translator(tf.constant([first_ten]), 1)
    np.testing.assert_array_equal(a["translation_ids"].numpy(), b["translation_ids"].numpy())
    assert a["source_tokens"].numpy().tolist() == [12] and b["source_tokens"].numpy().tolist() == [10]


def test_transformer_presets_are_d2ls_and_transformer_base():
    default = resolve(recipe.TransformerMtConfig, "default")
    assert (default.d_model, default.num_heads, default.ffn_dim, default.num_layers, default.dropout) == (32, 4, 64, 2, 0.1)
    paper = resolve(recipe.TransformerMtConfig, "paper")
    assert (paper.d_model, paper.num_heads, paper.ffn_dim, paper.num_layers, paper.dropout) == (512, 8, 2048, 6, 0.1)
    with pytest.raises(ConfigError, match="multiple of num_heads"):
        resolve(recipe.TransformerMtConfig, "tiny", {"d_model": 10, "num_heads": 4})


def test_presets_datasets_and_paper_settings():
    paper = resolve(recipe.Seq2SeqGruConfig, "paper")
    assert (paper.embedding_dim, paper.hidden_units, paper.num_layers, paper.dropout) == (32, 32, 2, 0.1)
    assert (paper.batch_size, paper.num_steps, paper.learning_rate, paper.clip_global_norm, paper.epochs) == (64, 10, 0.005, 1.0, 300)
    assert resolve(recipe.Seq2SeqAttentionConfig, "paper").epochs == 250
    cfg = resolve(recipe.Seq2SeqGruConfig, "tiny")
    splits = recipe.datasets(cfg)
    features, label = next(iter(splits.train.batch(4)))
    assert set(features) == {"source_ids", "decoder_input_ids"} and label.shape == (4, 10)
    np.testing.assert_array_equal(features["decoder_input_ids"][:, 1:].numpy(), label[:, :-1].numpy())
    assert splits.info["sizes"] == {"train": 480, "validation": 60, "test": 60}


def test_token_accuracy_counts_real_tokens_only():
    labels = tf.constant([[5, 6, EOS_ID, 0], [7, EOS_ID, 0, 0]])
    logits = tf.one_hot([[5, 9, EOS_ID, 1], [7, 8, 2, 2]], 10)
    np.testing.assert_allclose(recipe.token_accuracy(labels, logits).numpy(), [2 / 3, 1 / 2])


def test_nearest_source_baseline_returns_the_target_of_the_most_similar_training_source():
    train_sources = [["one", "hundred"], ["two", "thousand"], ["forty-two"]]
    targets = [["1", "0", "0"], ["2", "0", "0", "0"], ["4", "2"]]
    test = [["two", "hundred"], ["forty-two"], ["unseen"]]
    assert recipe.nearest_source_targets(train_sources, targets, test) == [targets[0], targets[2], targets[0]]


def test_a_model_trained_on_other_data_is_refused_at_export(attention_run):
    cfg = resolve(recipe.Seq2SeqAttentionConfig, "tiny", {"num_examples": 30})
    assert translation.load("embedded", num_examples=30).source_vocabulary.size < 107
    with pytest.raises(ConfigError, match="export with the training run's settings"):
        recipe.serving(cfg, attention_run.model)


def test_serving_examples_are_test_sources_rebuilt_from_their_ids(attention_run, cfg):
    extra = attention_run.export_path / "assets.extra"
    requests = {name: json.loads((extra / "rest_requests" / f"{name}.json").read_text())["inputs"] for name in SIGNATURES}
    sources = [base64.b64decode(text["b64"]).decode() for text in requests["serving_default"]["source"]]
    known = set(Vocabulary.load(attention_run.run_dir / "assets" / "source_vocabulary.txt").tokens)
    test_pairs = recipe.split_pairs(cfg)["test"]  # first, middle, last
    spread = [translation.normalize(tf.constant(test_pairs[i][0])).numpy().decode() for i in (0, len(test_pairs) // 2, -1)]
    assert sources == [" ".join(w if w in known else "<unk>" for w in s.split()) for s in spread]
    assert requests["greedy"]["source"] == requests["sample"]["source"] == requests["serving_default"]["source"]
    assert (requests["sample"]["temperature"], requests["sample"]["seed"]) == (pytest.approx(0.8), 7)
    expected = json.loads((extra / "expected_outputs.json").read_text())["signatures"]
    assert all(set(expected[name]) == set(recipe.OUTPUTS) for name in SIGNATURES)
    assert expected["greedy"]["source_tokens"]["values"] == [len(s.split()) for s in sources]


def test_a_copied_run_exports_and_evaluates_the_same_without_its_pairs_file_or_original_folder(
    attention_run, pairs_file, export_copied_run, assert_same_answers
):
    export = export_copied_run(attention_run, pairs_file)
    assert tfmodels.verify_export(export)["signatures"] == SIGNATURES
    sources = tf.constant(["three thousand and five", "Forty-two!", "", "seven zyzzyva", " ".join(["nine"] * 12)])
    inputs = {name: {"source": sources} for name in SIGNATURES}
    inputs["sample"].update(temperature=tf.constant(1.5), seed=tf.constant(3, tf.int64))
    for name in SIGNATURES:
        assert_same_answers(export, attention_run.export_path, name, **inputs[name])


def test_sources_rebuilt_from_their_tokens_tokenise_the_same_as_serving_examples_need():
    texts = tf.constant(["Quoi ?!", "J'ai... PERDU!!", "Élan,vite?", "Va\u202f!", "!Go", "three thousand and five"])
    tokens = translation.tokenize(texts)
    rebuilt = tf.strings.reduce_join(tokens, axis=1, separator=" ")
    assert translation.tokenize(rebuilt).to_list() == tokens.to_list()
    assert tokens.to_list()[:2] == [[b"quoi", b"?", b"!"], [b"j'ai", b".", b".", b".", b"perdu", b"!", b"!"]]  # as d2l's preprocess_nmt
