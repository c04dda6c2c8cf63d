"""In-graph samplers for a trained ε-predictor: ancestral DDPM and DDIM, as bounded ``tf.while_loop``s.

Spec: notes-003-004.md F1 (the sampler runs "T steps in a ``tf.function`` with ``tf.range`` /
``while_loop``"), issue 16 (DDPM and DDIM in the serving graph, seeded, bounded steps). Formulas:

* **DDPM** (Ho et al. 2020, Algorithm 2; paper default): for ``t = T−1 … 0`` (0-based),
  ``x̂_0 = (x_t − √(1−ᾱ_t) ε_θ(x_t, t)) / √ᾱ_t`` and ``x_{t−1} = μ̃_t(x̂_0, x_t) + σ_t z``, with
  ``z ~ N(0, I)`` except at the last step. Without clipping, μ̃_t(x̂_0, x_t) equals Algorithm 2's
  ``(x_t − β_t/√(1−ᾱ_t) ε_θ) / √α_t``; the paper's code clips ``x̂_0`` to [−1, 1] first
  (``clip_denoised=True``), which keeps samples in range. ``σ_t² = β_t`` (``variance="beta"``,
  paper default) or ``β̃_t`` (``variance="posterior"``, the clipped log-variance of the schedule).
* **DDIM** (Song, Meng & Ermon 2021, eq. 12 and 16): over an evenly spaced sub-sequence
  ``τ_i = ⌊i·T/S⌋``, ``i = 0 … S−1`` (S ≤ T steps; ``0, 20, …, 980`` for T = 1000, S = 50, as in
  the paper's code), with ``a = ᾱ_{τ_i}``, ``a' = ᾱ_{τ_{i−1}}`` (1 before τ_0):
  ``σ = η √((1−a')/(1−a)) √(1 − a/a')`` and
  ``x' = √a' x̂_0 + √(1 − a' − σ²) ε_θ + σ z``. η = 0 is deterministic given x_T; η = 1 with
  S = T is DDPM with ``σ_t² = β̃_t``. When ``x̂_0`` is clipped, ε is recomputed from the clipped
  ``x̂_0`` (Nichol & Dhariwal's code), so the two stay consistent.

**Randomness** is stateless, so a sample is a function of its integer ``seed`` alone (no hidden
state in the exported graph): ``x_T`` is ``stateless_normal(seed=[seed, 0])`` and the noise of
loop iteration ``k`` (0 for the first, noisiest step) is ``stateless_normal(seed=[seed, k + 1])``.

The ε-network is any callable ``eps_fn(x_t [N, H, W, C] float32, t [N] int32) → ε̂``; for a
:class:`~tfmodels.models.ddpm.DiffusionModel` that is ``model.predict_noise`` (EMA weights). Only
core TensorFlow ops are used, so the loops export to a SavedModel that stock TF-Serving runs.
"""

from __future__ import annotations

import tensorflow as tf

from tfmodels.models.diffusion_schedule import DiffusionSchedule, gather_for_batch

VARIANCES = ("beta", "posterior")


def ddpm_sample(
    eps_fn,
    schedule: DiffusionSchedule,
    shape,
    seed,
    *,
    variance: str = "beta",
    clip_denoised: bool = True,
    num_snapshots: int = 0,
) -> dict:
    """Ancestral DDPM sampling over all T steps (Algorithm 2; module docstring).

    Args:
        eps_fn: the noise predictor ``(x_t, t) → ε̂``.
        schedule: the :class:`DiffusionSchedule` the predictor was trained with.
        shape: ``[N, H, W, C]`` of the batch to draw (ints or an int tensor).
        seed: an integer scalar (Python int or tensor); the same seed gives the same images.
        variance: ``"beta"`` (σ_t² = β_t, paper default) or ``"posterior"`` (σ_t² = β̃_t).
        clip_denoised: clip ``x̂_0`` to [−1, 1] at every step (the paper's code).
        num_snapshots: K ≥ 0 evenly spaced snapshots of the chain to return as well (≤ T).

    Returns:
        ``{"images": x_0 [N, H, W, C] float32}``, and with K > 0 also ``"x_t"`` and ``"x0"``
        ``[K, N, H, W, C]``: the chain and its predicted ``x̂_0`` after K evenly spaced steps, the
        last being the final step.

    Example:
        >>> schedule = DiffusionSchedule(50)
        >>> out = ddpm_sample(lambda x, t: tf.zeros_like(x), schedule, [2, 4, 4, 1], seed=7)
        >>> tuple(out["images"].shape)
        (2, 4, 4, 1)
    """
    if variance not in VARIANCES:
        raise ValueError(f"variance must be one of {VARIANCES}, got {variance!r}")
    if variance == "beta":
        stddevs = tf.sqrt(tf.constant(schedule.betas))
    else:
        stddevs = tf.exp(0.5 * tf.constant(schedule.posterior_log_variance_clipped))

    def step(x, position, noise):
        t = tf.fill(tf.shape(x)[:1], position)
        x0 = _predicted_x0(eps_fn, schedule, x, t, clip_denoised)[0]
        mean = schedule.posterior_mean(x0, x, t)
        return mean + tf.cast(position > 0, tf.float32) * stddevs[position] * noise, x0

    num_steps = schedule.num_timesteps
    return _run_chain(step, num_steps, schedule, shape, seed, num_snapshots)


def ddim_timesteps(num_timesteps: int, steps):
    """The evenly spaced DDIM sub-sequence ``τ_i = ⌊i·T/S⌋``, ``i = 0 … S−1``.

    Args:
        num_timesteps: T.
        steps: S, an int or int scalar tensor in ``1 … T``.

    Returns:
        int32 ``[S]``, increasing, from 0.

    Example:
        >>> ddim_timesteps(1000, 50).numpy()[:3].tolist(), int(ddim_timesteps(1000, 50)[-1])
        ([0, 20, 40], 980)
    """
    steps = tf.cast(steps, tf.int32)
    return tf.range(steps) * num_timesteps // steps


def ddim_sample(
    eps_fn,
    schedule: DiffusionSchedule,
    shape,
    seed,
    steps,
    *,
    eta: float = 0.0,
    clip_denoised: bool = True,
    num_snapshots: int = 0,
) -> dict:
    """DDIM sampling in ``steps`` ≤ T steps (Song et al. 2021 eq. 12; module docstring).

    Args:
        eps_fn: the noise predictor ``(x_t, t) → ε̂``.
        schedule: the :class:`DiffusionSchedule` the predictor was trained with.
        shape: ``[N, H, W, C]`` of the batch to draw.
        seed: an integer scalar; the same seed gives the same images.
        steps: S, an int or int scalar tensor in ``1 … T`` (checked in the graph).
        eta: η ≥ 0; 0 = deterministic DDIM, 1 = DDPM-like noise.
        clip_denoised: clip ``x̂_0`` to [−1, 1] at every step.
        num_snapshots: K evenly spaced snapshots to return as well (K ≤ S).

    Returns:
        As :func:`ddpm_sample`.

    Example:
        >>> schedule = DiffusionSchedule(100)
        >>> out = ddim_sample(lambda x, t: tf.zeros_like(x), schedule, [1, 2, 2, 1], seed=3, steps=10, num_snapshots=2)
        >>> tuple(out["images"].shape), tuple(out["x0"].shape)
        ((1, 2, 2, 1), (2, 1, 2, 2, 1))
    """
    num_timesteps = schedule.num_timesteps
    steps = tf.cast(steps, tf.int32)
    checks = [
        tf.debugging.assert_greater_equal(steps, 1, message="DDIM needs at least 1 step"),
        tf.debugging.assert_less_equal(steps, num_timesteps, message=f"DDIM takes at most T={num_timesteps} steps"),
    ]
    with tf.control_dependencies(checks):
        timesteps = ddim_timesteps(num_timesteps, steps)
    alphas_cumprod = tf.constant(schedule.alphas_cumprod)

    def step(x, position, noise):
        t = tf.fill(tf.shape(x)[:1], timesteps[position])
        x0, eps = _predicted_x0(eps_fn, schedule, x, t, clip_denoised)
        a = alphas_cumprod[timesteps[position]]
        a_prev = tf.where(position > 0, alphas_cumprod[timesteps[tf.maximum(position - 1, 0)]], 1.0)
        sigma = eta * tf.sqrt((1.0 - a_prev) / (1.0 - a) * (1.0 - a / a_prev))
        direction = tf.sqrt(tf.maximum(1.0 - a_prev - sigma**2, 0.0))
        return tf.sqrt(a_prev) * x0 + direction * eps + sigma * noise, x0

    return _run_chain(step, steps, schedule, shape, seed, num_snapshots)


def _predicted_x0(eps_fn, schedule: DiffusionSchedule, x, t, clip: bool):
    """``(x̂_0, ε̂)`` at ``(x, t)``; with ``clip``, x̂_0 is clipped and ε̂ recomputed from it."""
    eps = tf.cast(eps_fn(x, t), tf.float32)
    x0 = schedule.predict_x0_from_noise(x, t, eps)
    if clip:
        x0 = tf.clip_by_value(x0, -1.0, 1.0)
        eps = (x - gather_for_batch(schedule.sqrt_alphas_cumprod, t, x) * x0) / gather_for_batch(
            schedule.sqrt_one_minus_alphas_cumprod, t, x
        )
    return x0, eps


def _run_chain(step, num_steps, schedule: DiffusionSchedule, shape, seed, num_snapshots: int) -> dict:
    """Runs ``x ← step(x, position, noise)`` for positions ``num_steps−1 … 0`` in one while loop.

    ``x`` starts as ``stateless_normal(shape, [seed, 0])``; loop iteration ``k`` draws its noise
    with seed ``[seed, k + 1]``. With ``num_snapshots`` K > 0, the state and ``x̂_0`` after
    iteration ``k`` are kept in slot ``⌊(k+1)K/S⌋ − 1`` when that slot is new (K evenly spaced
    snapshots, the last after the final step).
    """
    seed = tf.cast(seed, tf.int64)
    shape = tf.cast(shape, tf.int32)
    num_steps = tf.cast(num_steps, tf.int32)
    x = tf.random.stateless_normal(shape, seed=tf.stack([seed, tf.constant(0, tf.int64)]))
    snapshots = tf.zeros(tf.concat([[2, num_snapshots], shape], axis=0))  # [x_t, x0] × K

    def body(k, x, snapshots):
        noise = tf.random.stateless_normal(shape, seed=tf.stack([seed, tf.cast(k, tf.int64) + 1]))
        new_x, x0 = step(x, num_steps - 1 - k, noise)
        new_x = tf.ensure_shape(new_x, x.shape)
        if num_snapshots:
            slot = (k + 1) * num_snapshots // num_steps - 1
            is_new = slot > k * num_snapshots // num_steps - 1
            slot = tf.maximum(slot, 0)  # -1 before the first slot is due; the tf.where drops that update
            updated = tf.tensor_scatter_nd_update(snapshots, [[0, slot], [1, slot]], tf.stack([new_x, x0]))
            snapshots = tf.where(is_new, updated, snapshots)
        return k + 1, new_x, snapshots

    if num_snapshots:
        tf.debugging.assert_less_equal(num_snapshots, num_steps, message="more snapshots than sampling steps")
    _, x, snapshots = tf.while_loop(
        lambda k, *_: k < num_steps, body, (tf.constant(0), x, snapshots),
        maximum_iterations=schedule.num_timesteps,
    )
    result = {"images": x}
    if num_snapshots:
        result.update(x_t=snapshots[0], x0=snapshots[1])
    return result
