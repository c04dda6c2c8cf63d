"""gpt_lm (notes-001 §1): tiny training beside the baselines, generate/score from raw strings past the context, paper preset."""

import json
import math

import numpy as np
import pytest
import tensorflow as tf

import tfmodels
from pipelines.text.vocabulary import BOS_ID
from tfmodels.config import ConfigError, resolve
from tfmodels.recipes import gpt_lm
from tfmodels.recipes import language_models as lm


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("gpt_lm")
    return tfmodels.train("gpt_lm", preset="tiny", runs_root=root / "runs", export_root=root / "saved_models")


@pytest.fixture(scope="module")
def signatures(run):
    return tf.saved_model.load(str(run.export_path)).signatures


@pytest.fixture(scope="module")
def cfg():
    return resolve(gpt_lm.GptLmConfig, "tiny")


def served_ids(cfg, text: str) -> list[int]:
    return [BOS_ID, *lm.run_vocabulary(cfg).text_layer(cfg.level)(tf.constant([text])).numpy()[0].tolist()]


def test_tiny_training_beats_the_uniform_baseline_and_reports_the_notes_temperatures(run):
    history = np.genfromtxt(run.run_dir / "history.csv", delimiter=",", names=True)
    assert history["loss"][-1] < history["loss"][0]
    report = run.metrics["report"]
    assert report["test_perplexity"] == pytest.approx(run.metrics["test"]["perplexity"], rel=1e-4)
    assert report["test_perplexity"] < report["baselines"]["uniform_perplexity"] == 31
    assert report["parameters_by_part"]["total"] == run.metrics["parameters"]
    assert all(len(sample) == 50 for sample in report["samples"].values())  # 17 prefix tokens + 50 > context 16
    by_t = report["next_token_after_sample_prefix"]
    assert by_t["T=0"]["top_probability"] == 1.0 and by_t["T=0"]["entropy"] == 0.0
    entropies = [by_t[f"T={t}"]["entropy"] for t in ("0", "0.5", "1", "2")]
    assert np.all(np.diff(entropies) > 0)


def test_greedy_generation_from_a_raw_string_equals_a_cropped_python_loop(run, signatures, cfg):
    answer = signatures["serving_default"](prefix=tf.constant(["The value of", ""]), temperature=tf.constant(0.0),
                                           num_tokens=tf.constant(30), seed=tf.constant(0, tf.int64))
    assert answer["prefix_tokens"].numpy().tolist() == [12, 0]
    for row, text in enumerate(["the value of", ""]):
        sequence = served_ids(cfg, text)
        for _ in range(30):  # 13 + 30 tokens > the context of 16: each step reads the newest 16
            logits = run.model(np.array([sequence[-cfg.num_steps:]]), training=False).numpy()[0, -1]
            sequence.append(int(np.argmax(logits)))
        assert answer["continuation_ids"].numpy()[row].tolist() == sequence[-30:]
    tokens = lm.run_vocabulary(cfg).tokens
    ids = answer["continuation_ids"].numpy()[0]
    assert answer["continuation"].numpy()[0].decode() == "".join(tokens[i] for i in ids)


def test_sampling_is_reproducible_per_seed(signatures):
    def sample(seed):
        return signatures["serving_default"](prefix=tf.constant(["object"]), temperature=tf.constant(1.0),
                                             num_tokens=tf.constant(25), seed=tf.constant(seed, tf.int64))["continuation"].numpy()

    np.testing.assert_array_equal(sample(1), sample(1))
    assert not np.array_equal(sample(1), sample(2))


def test_score_is_the_models_perplexity_and_rejects_texts_longer_than_the_context(run, signatures, cfg):
    scored = signatures["score"](text=tf.constant(["The value of x", ""]))
    ids = served_ids(cfg, "the value of x")
    logits = run.model.predict(np.array([ids[:-1]]), verbose=0)[0]
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    log_likelihood = float(sum(log_probs[t, token] for t, token in enumerate(ids[1:])))
    np.testing.assert_allclose(scored["log_likelihood"].numpy()[0], log_likelihood, rtol=1e-4)
    np.testing.assert_allclose(scored["perplexity"].numpy(), [math.exp(-log_likelihood / (len(ids) - 1)), 1.0], rtol=1e-4)
    with pytest.raises(tf.errors.InvalidArgumentError, match="score reads at most 15 tokens"):
        signatures["score"](text=tf.constant(["a text of more than fifteen characters"]))


def test_export_verifies_with_stock_tensorflow(run):
    assert tfmodels.verify_export(run.export_path)["signatures"] == ["score", "serving_default"]


def test_the_exports_greedy_example_generates_past_the_context(run, cfg):
    """verify-export replays it: the served generation must crop its context as the evaluation loop does."""
    extra = run.export_path / "assets.extra"
    expected = json.loads((extra / "expected_outputs.json").read_text())["signatures"]
    request = json.loads((extra / "rest_requests" / "serving_default.json").read_text())["inputs"]
    assert request["temperature"] == 0.0
    assert max(expected["serving_default"]["prefix_tokens"]["values"]) + 1 + request["num_tokens"] > cfg.num_steps
    assert expected["serving_default"]["prefix_tokens"] == expected["score"]["num_tokens"]


def test_paper_preset_is_gpt3_175b_counted_never_built():
    cfg = resolve(gpt_lm.GptLmConfig, "paper")
    assert (cfg.num_layers, cfg.num_heads, cfg.hidden_units, cfg.num_steps) == (96, 96, 12288, 2048)
    parts = gpt_lm.paper_parameter_breakdown()
    assert parts["total"] == 174_604_259_328 and parts["mlp"] == 115_970_015_232
    with pytest.raises(ConfigError, match="parameters needs about .* GiB"):
        gpt_lm.model(cfg)


def test_config_checks_the_head_split_and_the_embedding_width():
    with pytest.raises(ConfigError, match="multiple of num_heads"):
        resolve(gpt_lm.GptLmConfig, "tiny", {"num_heads": 3})
    with pytest.raises(ConfigError, match="embedding_dim"):
        resolve(gpt_lm.GptLmConfig, "tiny", {"embedding_dim": 16})
