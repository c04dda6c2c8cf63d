"""bert_mlm (notes-002-part2 §54, notes-001 §25): vocabulary, training, baselines, fill_mask/encode serving, run assets."""

import base64
import dataclasses
import json

import numpy as np
import pytest
import tensorflow as tf

import tfmodels
from pipelines.splits import split_indices
from pipelines.text.wordpiece_vocabulary import RESERVED_TOKENS, load_vocabulary
from tfmodels.config import ConfigError, resolve
from tfmodels.models import bert
from tfmodels.recipes import bert_mlm as recipe

NUM_DOCUMENTS = 30
SENTENCES = (
    "The function returns a new list of values.",
    "Each argument of the call is evaluated first.",
    "A class defines the attributes of its instances.",
    "The loop ends when the iterator is exhausted.",
    "An exception is raised if the name is not found.",
    "The module is imported only once per process.",
)


def marker(doc: int) -> str:
    """A word only document ``doc`` holds (ten times: enough for the vocabulary learner)."""
    return "zq" + "".join("abcdefghij"[int(d)] for d in f"{doc:02d}")


@pytest.fixture(scope="module")
def corpus_file(tmp_path_factory):
    """A small corpus: 30 documents of the same six sentences in a per-document order, plus a marker word."""
    rng = np.random.default_rng(0)
    docs = []
    for doc in range(NUM_DOCUMENTS):
        sentences = [SENTENCES[i] for i in rng.permutation(len(SENTENCES))]
        docs.append(" ".join(sentences) + " " + " ".join([marker(doc)] * 10) + ".")
    path = tmp_path_factory.mktemp("corpus") / "docs.txt"
    path.write_text("\n\n".join(docs))
    return path


@pytest.fixture(scope="module")
def cfg(corpus_file):
    return resolve(recipe.BertMlmConfig, "tiny", {"data": f"file:{corpus_file}", "vocabulary_size": 200, "min_frequency": 5})


@pytest.fixture(scope="module")
def run(cfg, tmp_path_factory):
    root = tmp_path_factory.mktemp("bert_mlm")
    overrides = {k: getattr(cfg, k) for k in ("data", "vocabulary_size", "min_frequency")}
    return tfmodels.train("bert_mlm", preset="tiny", overrides=overrides, runs_root=root / "runs", export_root=root / "saved_models")


@pytest.fixture(scope="module")
def signatures(run):
    return tf.saved_model.load(str(run.export_path)).signatures


def test_trains_and_reports_held_out_numbers_beside_the_baselines(run, cfg):
    report = run.metrics["report"]
    assert report["test_mlm_accuracy"] == pytest.approx(run.metrics["test"]["mlm_logits_accuracy"], rel=1e-5)
    assert report["test_mlm_perplexity"] == pytest.approx(run.metrics["test"]["mlm_logits_perplexity"], rel=1e-5)
    assert np.isfinite(run.metrics["test"]["loss"])
    baselines = report["baselines"]
    assert 0 <= baselines["most_frequent_token_accuracy"] <= 1 and baselines["unigram_perplexity"] > 1
    assert baselines["nsp_chance_accuracy"] == 0.5 and 0 <= baselines["nsp_majority_accuracy"] <= 1
    assert report["test_masked_tokens"] > 0
    assert load_vocabulary(report["vocabulary"]) == recipe.vocabulary(cfg)
    assert report["vocab_size"] == run.model.encoder.get_layer("token_embedding").input_dim
    assert len(report["fill_mask_example"]["tokens"]) == cfg.top_k


def test_export_verifies_with_stock_tensorflow(run):
    result = tfmodels.verify_export(run.export_path)
    assert result["signatures"] == ["encode", "serving_default"] and result["requests_replayed"] == 2


def test_the_vocabulary_and_tokenizer_settings_are_run_assets(run, cfg):
    assets = run.run_dir / "assets"
    assert load_vocabulary(assets / recipe.VOCABULARY_FILE) == recipe.vocabulary(cfg)
    settings = json.loads((assets / recipe.TOKENIZER_FILE).read_text())
    assert settings == {**recipe.WORDPIECE_SETTINGS, "seq_length": cfg.seq_length}
    assert run.metrics["report"]["vocabulary"] == str(assets / recipe.VOCABULARY_FILE)


def test_serving_examples_are_test_sentences_with_masks_at_their_masked_tokens(run, cfg):
    extra = run.export_path / "assets.extra"
    requests = {name: json.loads((extra / "rest_requests" / f"{name}.json").read_text())["inputs"]["text"] for name in ("serving_default", "encode")}
    masked, original = ([base64.b64decode(t["b64"]).decode() for t in requests[name]] for name in ("serving_default", "encode"))
    test_documents = split_indices(NUM_DOCUMENTS, (0.1, 0.1), cfg.data_seed)[2]
    words = {w for s in SENTENCES for w in s.lower().replace(".", " .").split()} | {marker(d) for d in test_documents}
    assert len(original) >= 2 and all(set(text.split()) <= words for text in original)
    for with_masks, text in zip(masked, original):
        pairs = list(zip(with_masks.split(), text.split(), strict=True))
        assert any(m == "[MASK]" for m, _ in pairs) and all(m in ("[MASK]", w) for m, w in pairs)
    expected = json.loads((extra / "expected_outputs.json").read_text())["signatures"]
    assert expected["serving_default"]["num_masks"]["values"] == [text.split().count("[MASK]") for text in masked]


@pytest.mark.slow  # a second bert_mlm run; bert_classifier's copied-run test covers a BERT run folder in the fast suite
def test_a_copied_run_exports_and_evaluates_the_same_without_its_corpus_or_original_folder(
    run, corpus_file, export_copied_run, assert_same_answers
):
    export = export_copied_run(run, corpus_file)
    texts = tf.constant(["The [MASK] of the function is returned.", "a [mask] loop ends [MASK] the iterator.", ""])
    for name in ("serving_default", "encode"):
        assert_same_answers(export, run.export_path, name, text=texts)


def test_fill_mask_top1_is_the_keras_models_argmax_at_every_mask(run, cfg, signatures):
    texts = ["The [MASK] of the function is returned.", "a [mask] loop ends [MASK] the iterator."]
    answer = signatures["serving_default"](text=tf.constant(texts))
    tokenizer = recipe.tokenizer(cfg)
    inputs = recipe.encoder_inputs(tokenizer, tf.constant(texts), cfg.seq_length)
    token_ids = inputs["token_ids"].numpy()
    mask_id = RESERVED_TOKENS.index("[MASK]")
    assert answer["num_masks"].numpy().tolist() == [1, 2] == (token_ids == mask_id).sum(1).tolist()
    positions = np.array([np.flatnonzero(row == mask_id).tolist() + [0] * (2 - (row == mask_id).sum()) for row in token_ids])
    logits = run.model.predict({**{k: inputs[k] for k in ("token_ids", "segment_ids", "padding_mask")}, "mask_positions": positions}, verbose=0)["mlm_logits"]
    top = answer["token_ids"].numpy()
    assert top[0, 0, 0] == logits[0, 0].argmax() and top[1, :, 0].tolist() == logits[1].argmax(-1).tolist()
    probabilities = tf.nn.softmax(logits[1, 0]).numpy()
    np.testing.assert_allclose(answer["probabilities"].numpy()[1, 0], np.sort(probabilities)[::-1][: cfg.top_k], rtol=1e-4, atol=1e-6)
    vocabulary = recipe.vocabulary(cfg)
    assert [t.decode() for t in answer["tokens"].numpy()[1, 1]] == [vocabulary[i] for i in top[1, 1]]
    assert answer["token_ids"].numpy()[0, 1].tolist() == [-1] * cfg.top_k  # the first text has one mask


def test_fill_mask_answers_texts_without_masks_empty_and_over_long(signatures, cfg):
    long_text = "the value " * 100
    texts = ["no mask here", "", long_text + "[MASK]", "[MASK] " + long_text]
    answer = signatures["serving_default"](text=tf.constant(texts))
    assert answer["num_masks"].numpy().tolist() == [0, 0, 0, 1]  # the third text's mask was cut off
    assert answer["truncated"].numpy().tolist() == [False, False, True, True]
    assert answer["tokens"].shape == (4, 1, cfg.top_k)
    assert set(answer["tokens"].numpy()[:3].reshape(-1).tolist()) == {b""}
    assert (answer["probabilities"].numpy()[:3] == 0).all() and (answer["token_ids"].numpy()[:3] == -1).all()
    assert answer["probabilities"].numpy()[3, 0].sum() <= 1.0 + 1e-5 and answer["token_ids"].numpy()[3, 0, 0] >= 0
    only_empty = signatures["serving_default"](text=tf.constant(["", "none"]))
    assert only_empty["num_masks"].numpy().tolist() == [0, 0] and only_empty["tokens"].shape == (2, 1, cfg.top_k)


def test_encode_returns_pooled_and_sequence_embeddings_with_the_mask(run, cfg, signatures):
    out = signatures["encode"](text=tf.constant(["The function returns.", "", "word " * 200]))
    hidden = cfg.hidden_dim
    assert out["pooled_output"].shape == (3, hidden)
    assert out["sequence_output"].shape == (3, cfg.seq_length, hidden) == (*out["padding_mask"].shape, hidden)
    pieces = recipe.tokenizer(cfg).tokenize(["The function returns."]).row_lengths().numpy()[0]
    assert out["padding_mask"].numpy().sum(1).tolist() == [pieces + 2, 2, cfg.seq_length]  # with [CLS] and [SEP]
    assert out["truncated"].numpy().tolist() == [False, False, True]
    inputs = recipe.encoder_inputs(recipe.tokenizer(cfg), tf.constant(["The function returns."]), cfg.seq_length)
    inputs.pop("truncated")
    expected = run.model.encoder.predict(inputs, verbose=0)["pooled_output"]
    np.testing.assert_allclose(out["pooled_output"].numpy()[:1], expected, atol=1e-5)


def test_the_vocabulary_comes_from_the_training_documents_only(cfg):
    vocabulary = set(recipe.vocabulary(cfg))
    train, validation, test = split_indices(NUM_DOCUMENTS, (0.1, 0.1), cfg.data_seed)
    assert {marker(d) for d in train} <= vocabulary
    assert not {marker(d) for d in [*validation, *test]} & vocabulary
    assert recipe.vocabulary(cfg)[: len(RESERVED_TOKENS)] == list(RESERVED_TOKENS)


def test_training_pairings_and_batches_are_redrawn_and_labels_are_the_original_tokens(cfg):
    splits = recipe.datasets(dataclasses.replace(cfg, dupe_factor=2))
    nsp = np.concatenate([y["nsp_logits"] for _, y, _ in splits.train.batch(1024).as_numpy_iterator()])
    assert splits.info["dupe_factor"] == 2 and len(nsp) == splits.info["sizes"]["train"]
    first, second = np.split(nsp, 2)
    assert not np.array_equal(first, second)  # two pairings: other next-sentence draws
    x, y, weights = next(iter(splits.train.batch(16)))
    new_x, new_y, new_weights = recipe.train_transform(cfg)(x, y, weights)

    def originals(x, y, weights):
        tokens, positions, used = x["token_ids"].numpy().copy(), x["mask_positions"].numpy(), weights["mlm_logits"].numpy() > 0
        for row, slot in zip(*np.nonzero(used)):
            tokens[row, positions[row, slot]] = y["mlm_logits"].numpy()[row, slot]
        return tokens

    np.testing.assert_array_equal(originals(new_x, new_y, new_weights), originals(x, y, weights))
    assert not np.array_equal(new_x["mask_positions"].numpy(), x["mask_positions"].numpy())
    np.testing.assert_array_equal(new_y["nsp_logits"], y["nsp_logits"])
    assert set(new_weights) == {"mlm_logits", "nsp_logits"}


def test_unigram_baselines_on_hand_made_counts():
    counts = np.array([0, 6, 2, 0])  # token 1 is the most frequent
    result = recipe.unigram_baselines(counts, np.array([1, 2, 3, 1]))
    assert result["most_frequent_token_id"] == 1 and result["most_frequent_token_accuracy"] == 0.5
    p = np.array([1, 7, 3, 1]) / 12  # add-one
    assert result["unigram_perplexity"] == pytest.approx(np.exp(-np.mean(np.log(p[[1, 2, 3, 1]]))))


def test_presets_and_config_checks():
    paper = resolve(recipe.BertMlmConfig, "paper")
    assert (paper.num_layers, paper.hidden_dim, paper.num_heads, paper.intermediate_dim) == (12, 768, 12, 3072)
    assert (paper.max_sequence_length, paper.seq_length, paper.max_predictions, paper.batch_size) == (512, 512, 80, 256)
    assert (paper.vocabulary_size, paper.learning_rate, paper.weight_decay) == (bert.PAPER_VOCABULARY_SIZE, 1e-4, 0.01)
    default = resolve(recipe.BertMlmConfig, "default")
    assert {k: getattr(default, k) for k in bert.PRESETS["default"]} == bert.PRESETS["default"]
    with pytest.raises(ConfigError, match="seq_length"):
        resolve(recipe.BertMlmConfig, "tiny", {"seq_length": 65})
