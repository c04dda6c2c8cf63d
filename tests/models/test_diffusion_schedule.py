"""DiffusionSchedule: β schedules, ᾱ_t, posterior coefficients and q(x_t | x_0) against the paper's math."""

import doctest
import math

import numpy as np
import pytest
import tensorflow as tf

from tfmodels.models import diffusion_schedule as module
from tfmodels.models.diffusion_schedule import DiffusionSchedule


def test_docstring_examples():
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0


def _python_alpha_bars(betas):
    """ᾱ_t as a running product in Python floats (float64), written from ᾱ_t = Π (1 − β_s)."""
    out, product = [], 1.0
    for beta in betas:
        product *= 1.0 - beta
        out.append(product)
    return out


def test_linear_alpha_bar_T_matches_an_independent_product_and_the_notes():
    betas = [1e-4 + i * (0.02 - 1e-4) / 999 for i in range(1000)]  # paper: linear 1e-4 → 0.02, T = 1000
    expected = math.prod(1.0 - b for b in betas)
    schedule = DiffusionSchedule()
    assert schedule.alphas_cumprod[-1] == pytest.approx(expected, rel=1e-6)
    assert f"{schedule.alphas_cumprod[-1]:.3g}" == "4.04e-05"  # notes F1 "Numbers"
    assert np.all(np.diff(schedule.alphas_cumprod) < 0) and schedule.alphas_cumprod[-1] < 1e-3


def test_scaled_linear_schedule_at_T100_matches_the_notes():
    schedule = DiffusionSchedule(100)
    assert schedule.betas[0] == pytest.approx(1e-3) and schedule.betas[-1] == pytest.approx(0.2)
    assert f"{schedule.alphas_cumprod[-1]:.2g}" == "2e-05"  # notes F1: "gives ᾱ_T = 2.0e-5"


def test_cosine_alpha_bar_follows_nichol_dhariwal_eq17():
    T, s = 1000, 0.008
    f = [math.cos((t / T + s) / (1 + s) * math.pi / 2) ** 2 for t in range(T + 1)]
    schedule = DiffusionSchedule(T, "cosine")
    unclipped = np.nonzero(schedule.betas < 0.999)[0]  # β is clipped at 0.999 only at the very end
    assert len(unclipped) >= T - 2
    expected = np.array([f[t + 1] / f[0] for t in unclipped])
    np.testing.assert_allclose(schedule.alphas_cumprod[unclipped], expected, rtol=1e-5, atol=1e-9)
    assert schedule.betas.max() == pytest.approx(0.999)


@pytest.mark.parametrize("kind", ["linear", "cosine"])
def test_posterior_coefficients_satisfy_the_papers_identities(kind):
    schedule = DiffusionSchedule(200, kind)
    betas = [float(b) for b in schedule.betas]
    bars = _python_alpha_bars(betas)
    prev = [1.0] + bars[:-1]
    tilde = [b * (1 - p) / (1 - a) for b, p, a in zip(betas, prev, bars)]  # eq. 7
    np.testing.assert_allclose(schedule.posterior_variance, tilde, rtol=1e-5)
    # The same variance as 1 / (α_t / β_t + 1 / (1 − ᾱ_{t−1})) (product of the two Gaussians), t ≥ 1.
    other = [1.0 / ((1 - b) / b + 1.0 / (1 - p)) for b, p in zip(betas[1:], prev[1:])]
    np.testing.assert_allclose(schedule.posterior_variance[1:], other, rtol=1e-5)
    np.testing.assert_allclose(
        schedule.posterior_mean_coef1, [b * math.sqrt(p) / (1 - a) for b, p, a in zip(betas, prev, bars)], rtol=1e-5
    )
    assert schedule.posterior_log_variance_clipped[0] == pytest.approx(math.log(tilde[1]), rel=1e-6)
    np.testing.assert_allclose(schedule.posterior_log_variance_clipped[1:], np.log(tilde[1:]), rtol=1e-5, atol=1e-6)


def test_posterior_mean_of_predicted_x0_is_algorithm_2s_update():
    """μ̃_t(x̂_0(x_t, ε), x_t) = (x_t − β_t / √(1−ᾱ_t) · ε) / √α_t (Ho et al. eq. 11)."""
    schedule = DiffusionSchedule(100)
    rng = np.random.default_rng(0)
    t = np.array([0, 1, 50, 99], np.int32)
    x_t, eps = rng.normal(size=(2, 4, 3, 3, 1)).astype(np.float32)
    x0 = schedule.predict_x0_from_noise(x_t, t, eps)
    got = schedule.posterior_mean(x0, x_t, t).numpy()
    b = np.linspace(1e-3, 0.2, 100)[t][:, None, None, None]
    bar = np.cumprod(1 - np.linspace(1e-3, 0.2, 100))[t][:, None, None, None]
    np.testing.assert_allclose(got, (x_t - b / np.sqrt(1 - bar) * eps) / np.sqrt(1 - b), rtol=2e-4, atol=2e-4)


def test_float32_constants_are_the_float64_values_rounded():
    schedule = DiffusionSchedule()
    bars = np.array(_python_alpha_bars([1e-4 + i * (0.02 - 1e-4) / 999 for i in range(1000)]))
    assert schedule.alphas_cumprod.dtype == np.float32
    np.testing.assert_array_equal(schedule.alphas_cumprod, bars.astype(np.float32))
    np.testing.assert_allclose(schedule.sqrt_recipm1_alphas_cumprod, np.sqrt(1 / bars - 1), rtol=1e-6)
    float32_product = np.cumprod(1 - np.linspace(1e-4, 0.02, 1000, dtype=np.float32))  # accumulates rounding
    assert abs(schedule.alphas_cumprod[-1] / bars[-1] - 1) <= abs(float32_product[-1] / bars[-1] - 1)


def test_q_sample_moments_match_the_closed_form_and_the_step_by_step_chain():
    """Mean √ᾱ_t x_0 and variance 1 − ᾱ_t by sampling; also equal to iterating q(x_t | x_{t−1})."""
    T, n = 50, 20000
    schedule = DiffusionSchedule(T)
    rng = np.random.default_rng(1)
    x0 = np.full((n, 1), 0.7, np.float32)
    chain = x0.astype(np.float64)
    betas = np.linspace(2e-3, 0.4, T)  # the linear schedule scaled by 1000 / 50
    for t in range(T):
        chain = np.sqrt(1 - betas[t]) * chain + np.sqrt(betas[t]) * rng.normal(size=chain.shape)
        if t in (0, 9, 49):
            ts = np.full(n, t, np.int32)
            draws = schedule.q_sample(x0, ts, rng.normal(size=x0.shape).astype(np.float32)).numpy()
            bar = np.prod(1 - betas[: t + 1])
            for sample in (draws, chain):
                assert abs(sample.mean() - math.sqrt(bar) * 0.7) < 5 * math.sqrt((1 - bar) / n)
                assert abs(sample.var() / (1 - bar) - 1) < 5 * math.sqrt(2 / n)


def test_bad_schedules_raise():
    with pytest.raises(ValueError, match="kind"):
        DiffusionSchedule(100, "quadratic")
    with pytest.raises(ValueError, match="β_t >= 1"):
        DiffusionSchedule(20)  # scaled linear: β_T = 0.02 · 1000 / 20 = 1
    assert DiffusionSchedule(**DiffusionSchedule(64, "cosine").get_config()).kind == "cosine"


def test_gather_for_batch_broadcasts_over_images():
    values = module.gather_for_batch(np.array([1.0, 2.0, 3.0]), tf.constant([2, 0]), tf.zeros([2, 3, 3, 1]))
    assert values.shape == (2, 1, 1, 1) and values.numpy().ravel().tolist() == [3.0, 1.0]
