"""DDPM and DDIM samplers against closed-form oracles: a point mass and a Gaussian data distribution.

For data N(μ, s²) per pixel, the optimal ε-predictor is known exactly:
``ε*(x_t, t) = √(1−ᾱ_t) (x_t − √ᾱ_t μ) / (ᾱ_t s² + 1 − ᾱ_t)`` (E[ε | x_t] of two jointly Gaussian
variables); for a point mass at x_0 (s = 0) it is ``(x_t − √ᾱ_t x_0) / √(1−ᾱ_t)``. With these
oracles every sampler is a linear-Gaussian recursion whose output mean and variance are computed
here in float64 from the papers' update formulas (Ho et al. Algorithm 2, Song et al. eq. 12).
"""

import doctest
import math

import numpy as np
import pytest
import tensorflow as tf

from tfmodels.models import diffusion_sampling as module
from tfmodels.models.diffusion_sampling import ddim_sample, ddim_timesteps, ddpm_sample
from tfmodels.models.diffusion_schedule import DiffusionSchedule


def test_docstring_examples():
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0


def _gaussian_oracle(schedule, mu, s2):
    bars = tf.constant(schedule.alphas_cumprod.astype(np.float64))

    def eps_fn(x, t):
        a = tf.cast(tf.gather(bars, t), tf.float32)[:, None, None, None]
        return tf.sqrt(1 - a) * (x - tf.sqrt(a) * mu) / (a * s2 + 1 - a)

    return eps_fn


def _alpha_bars(T):
    betas = np.linspace(1e-4 * 1000 / T, 0.02 * 1000 / T, T)
    return betas, np.cumprod(1 - betas)


def _ddpm_moments(T, mu, s2, posterior: bool):
    """Mean and variance of Algorithm 2's output with the exact oracle, x_T ~ N(0, 1)."""
    betas, bars = _alpha_bars(T)
    mean, var = 0.0, 1.0
    for t in range(T - 1, -1, -1):
        v = bars[t] * s2 + 1 - bars[t]
        k_eps = math.sqrt(1 - bars[t]) / v  # ε* = k_eps (x − √ᾱ μ)
        scale = (1 - betas[t] / math.sqrt(1 - bars[t]) * k_eps) / math.sqrt(1 - betas[t])
        shift = betas[t] / math.sqrt(1 - bars[t]) * k_eps * math.sqrt(bars[t]) * mu / math.sqrt(1 - betas[t])
        prev = bars[t - 1] if t else 1.0
        sigma2 = (betas[t] * (1 - prev) / (1 - bars[t]) if posterior else betas[t]) if t else 0.0
        mean, var = scale * mean + shift, scale**2 * var + sigma2
    return mean, var


def _ddim_moments(T, steps, mu, s2, eta):
    """Mean and variance of DDIM (eq. 12) over τ_i = ⌊iT/S⌋ with the exact oracle."""
    _, bars = _alpha_bars(T)
    taus = [i * T // steps for i in range(steps)]
    mean, var = 0.0, 1.0
    for i in range(steps - 1, -1, -1):
        a, a_prev = bars[taus[i]], (bars[taus[i - 1]] if i else 1.0)
        v = a * s2 + 1 - a
        k_eps = math.sqrt(1 - a) / v
        k_x0 = math.sqrt(a) * s2 / v  # x̂_0 = μ + k_x0 (x − √a μ)
        sigma2 = eta**2 * (1 - a_prev) / (1 - a) * (1 - a / a_prev)
        direction = math.sqrt(1 - a_prev - sigma2)
        scale = math.sqrt(a_prev) * k_x0 + direction * k_eps
        shift = math.sqrt(a_prev) * (mu - k_x0 * math.sqrt(a) * mu) - direction * k_eps * math.sqrt(a) * mu
        mean, var = scale * mean + shift, scale**2 * var + sigma2
    return mean, var


def test_reference_recursions_agree_where_the_papers_say_they_do():
    """DDIM with η = 1 and S = T is DDPM with σ_t² = β̃_t (Song et al. §4.1): two formulas, one answer."""
    np.testing.assert_allclose(_ddim_moments(50, 50, 0.3, 0.04, 1.0), _ddpm_moments(50, 0.3, 0.04, True), rtol=1e-9)


def test_ddim_timesteps_match_the_papers_uniform_skip():
    assert ddim_timesteps(1000, 50).numpy().tolist() == list(range(0, 1000, 20))
    assert ddim_timesteps(100, 100).numpy().tolist() == list(range(100))
    assert ddim_timesteps(100, 1).numpy().tolist() == [0]


@pytest.mark.parametrize("sampler", ["ddim_all", "ddim_10", "ddpm_beta", "ddpm_posterior"])
def test_point_mass_oracle_recovers_x0(sampler):
    T = 60
    schedule = DiffusionSchedule(T)
    x0 = np.random.default_rng(0).uniform(-0.9, 0.9, (3, 6, 6, 1)).astype(np.float32)
    eps_fn = _gaussian_oracle(schedule, x0, 0.0)
    shape = [3, 6, 6, 1]
    run = {
        "ddim_all": lambda: ddim_sample(eps_fn, schedule, shape, 5, T, clip_denoised=False),
        "ddim_10": lambda: ddim_sample(eps_fn, schedule, shape, 5, 10, clip_denoised=False),
        "ddpm_beta": lambda: ddpm_sample(eps_fn, schedule, shape, 5, clip_denoised=False),
        "ddpm_posterior": lambda: ddpm_sample(eps_fn, schedule, shape, 5, variance="posterior", clip_denoised=False),
    }[sampler]
    np.testing.assert_allclose(tf.function(run)()["images"].numpy(), x0, atol=1e-4)


GAUSSIAN_CASES = {  # name: (sampler kwargs, reference moments)
    "ddpm_beta": (dict(variance="beta"), lambda T: _ddpm_moments(T, 0.3, 0.04, False)),
    "ddpm_posterior": (dict(variance="posterior"), lambda T: _ddpm_moments(T, 0.3, 0.04, True)),
    "ddim_eta0": (dict(steps=50, eta=0.0), lambda T: _ddim_moments(T, 50, 0.3, 0.04, 0.0)),
    "ddim_eta0_10": (dict(steps=10, eta=0.0), lambda T: _ddim_moments(T, 10, 0.3, 0.04, 0.0)),
    "ddim_eta1": (dict(steps=25, eta=1.0), lambda T: _ddim_moments(T, 25, 0.3, 0.04, 1.0)),
}


def _gaussian_samples(T, kwargs, seed=11):
    schedule = DiffusionSchedule(T)
    eps_fn = _gaussian_oracle(schedule, 0.3, 0.04)
    shape = [64, 16, 16, 1]
    if "steps" in kwargs:
        run = lambda: ddim_sample(eps_fn, schedule, shape, seed, clip_denoised=False, **kwargs)  # noqa: E731
    else:
        run = lambda: ddpm_sample(eps_fn, schedule, shape, seed, clip_denoised=False, **kwargs)  # noqa: E731
    return tf.function(run)()["images"].numpy().ravel().astype(np.float64)


@pytest.mark.parametrize("case", sorted(GAUSSIAN_CASES))
def test_gaussian_oracle_sample_moments_match_the_exact_recursion(case):
    kwargs, reference = GAUSSIAN_CASES[case]
    samples = _gaussian_samples(50, kwargs)
    mean, var = reference(50)
    n = samples.size
    assert abs(samples.mean() - mean) < 5 * math.sqrt(var / n)
    assert abs(samples.var() / var - 1) < 5 * math.sqrt(2 / n)


@pytest.mark.parametrize("case", ["ddpm_beta", "ddim_1000"])
def test_gaussian_oracle_samples_have_the_data_moments_at_T1000(case):
    """With the paper's T = 1000 the discretisation error is small: samples ≈ N(0.3, 0.2²)."""
    kwargs = dict(variance="beta") if case == "ddpm_beta" else dict(steps=1000, eta=0.0)
    samples = _gaussian_samples(1000, kwargs)
    n = samples.size
    assert abs(samples.mean() - 0.3) < 5 * math.sqrt(0.04 / n)
    assert abs(samples.var() / 0.04 - 1) < 5 * math.sqrt(2 / n) + 0.02  # + the 1.5 % DDIM bias at T = 1000


def test_same_seed_same_images_other_seed_other_images():
    schedule = DiffusionSchedule(30)
    eps_fn = _gaussian_oracle(schedule, 0.0, 0.5)
    draw = tf.function(lambda seed, eta: ddim_sample(eps_fn, schedule, [2, 4, 4, 1], seed, 10, eta=eta)["images"])
    for eta in (0.0, 1.0):
        a, b, c = (draw(tf.constant(seed), eta).numpy() for seed in (3, 3, 4))
        np.testing.assert_array_equal(a, b)
        assert np.abs(a - c).max() > 1e-2
    first, again = (ddpm_sample(eps_fn, schedule, [2, 4, 4, 1], 9)["images"].numpy() for _ in range(2))
    np.testing.assert_array_equal(first, again)


def test_graph_with_symbolic_sizes_matches_eager_call():
    """The export form: num_images, seed and steps as scalar tensors of one traced function."""
    schedule = DiffusionSchedule(40)
    eps_fn = _gaussian_oracle(schedule, 0.1, 0.3)
    spec = tf.TensorSpec([], tf.int32)

    @tf.function(input_signature=[spec, spec, spec])
    def sample(num_images, seed, steps):
        return ddim_sample(eps_fn, schedule, tf.stack([num_images, 4, 4, 1]), seed, steps, eta=0.5)["images"]

    eager = ddim_sample(eps_fn, schedule, [3, 4, 4, 1], 21, 8, eta=0.5)["images"].numpy()
    np.testing.assert_allclose(sample(3, 21, 8).numpy(), eager, atol=1e-6)
    assert sample(5, 21, 40).shape == (5, 4, 4, 1)
    for steps in (0, 41):
        with pytest.raises(tf.errors.InvalidArgumentError):
            sample(1, 0, steps)


def test_clip_denoised_keeps_x0_in_range():
    schedule = DiffusionSchedule(30)
    far = np.full((1, 2, 2, 1), 3.0, np.float32)  # a point mass outside [−1, 1]
    eps_fn = _gaussian_oracle(schedule, far, 0.0)
    clipped = ddim_sample(eps_fn, schedule, [1, 2, 2, 1], 0, 10)["images"].numpy()
    raw = ddim_sample(eps_fn, schedule, [1, 2, 2, 1], 0, 10, clip_denoised=False)["images"].numpy()
    np.testing.assert_allclose(clipped, 1.0, atol=1e-5)
    np.testing.assert_allclose(raw, 3.0, atol=1e-3)


def test_snapshots_trace_the_chain_to_the_final_image():
    T = 40
    schedule = DiffusionSchedule(T)
    x0 = np.random.default_rng(2).uniform(-0.5, 0.5, (2, 4, 4, 1)).astype(np.float32)
    eps_fn = _gaussian_oracle(schedule, x0, 0.0)
    out = tf.function(lambda: ddpm_sample(eps_fn, schedule, [2, 4, 4, 1], 1, num_snapshots=4, clip_denoised=False))()
    assert out["x_t"].shape == (4, 2, 4, 4, 1) and out["x0"].shape == (4, 2, 4, 4, 1)
    np.testing.assert_array_equal(out["x_t"][-1].numpy(), out["images"].numpy())
    np.testing.assert_allclose(out["x0"].numpy(), np.broadcast_to(x0, (4, 2, 4, 4, 1)), atol=1e-4)  # x̂_0 = x_0 always
    # x_t after step 10 of 40 (t = 29, ᾱ_t ≈ 0.0015) is still mostly noise; after step 40 it is x_0.
    spread = [float(np.abs(out["x_t"][j].numpy() - x0).mean()) for j in range(4)]
    assert spread[0] > 0.3 and spread[3] == pytest.approx(0.0, abs=1e-4)
