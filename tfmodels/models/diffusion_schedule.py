"""The DDPM noise schedule and its closed forms (Ho, Jain & Abbeel 2020).

Spec: notes-003-004.md F1 (seed 004 L1: DDPM trains a noise predictor ε_θ(x_t, t)); the formulas
are the paper's (paper default):

* forward step ``q(x_t | x_{t−1}) = N(√(1−β_t) x_{t−1}, β_t I)``, ``α_t = 1 − β_t``,
  ``ᾱ_t = Π_{s≤t} α_s``; closed form ``q(x_t | x_0) = N(√ᾱ_t x_0, (1 − ᾱ_t) I)`` (eq. 4);
* posterior ``q(x_{t−1} | x_t, x_0) = N(μ̃_t, β̃_t I)`` with
  ``μ̃_t = β_t √ᾱ_{t−1} / (1−ᾱ_t) · x_0 + (1−ᾱ_{t−1}) √α_t / (1−ᾱ_t) · x_t`` and
  ``β̃_t = β_t (1−ᾱ_{t−1}) / (1−ᾱ_t)`` (eq. 6-7);
* ``x_0 = (x_t − √(1−ᾱ_t) ε) / √ᾱ_t`` inverts the closed form.

Indices are 0-based as in the paper's code: ``t = 0 … T−1`` stands for the paper's ``1 … T``, and
``ᾱ_{−1} = 1``. The posterior variance is 0 at ``t = 0``, so its logarithm is "clipped" as in the
paper's code (``diffusion_tf/diffusion_utils_2.py``): ``log β̃_0`` is replaced by ``log β̃_1``.

Schedules:

* ``"linear"``: β from 1e-4 to 0.02 over T = 1000 (paper default). For other T both ends are
  scaled by 1000 / T (Nichol & Dhariwal 2021's code; notes F1 "Tiny configs must scale the
  schedule": unscaled at T = 100, ᾱ_T = 0.36 and x_T is far from N(0, I)).
* ``"cosine"``: Nichol & Dhariwal 2021 eq. 17, ``ᾱ(t) = f(t)/f(0)``,
  ``f(t) = cos²((t/T + s)/(1 + s) · π/2)``, ``s = 0.008``, ``β_t = min(1 − ᾱ(t+1)/ᾱ(t), 0.999)``.

Every coefficient is computed in float64 (NumPy) and stored as a float32 array, so the products
over 1000 steps carry no float32 rounding.
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

SCHEDULES = ("linear", "cosine")
PAPER_TIMESTEPS = 1000  # paper default T
PAPER_BETA_START, PAPER_BETA_END = 1e-4, 0.02  # paper default, linear over T = 1000
COSINE_OFFSET = 0.008  # s of Nichol & Dhariwal eq. 17
MAX_BETA = 0.999  # Nichol & Dhariwal's clip, so that β_T < 1 near t = T


def linear_betas(num_timesteps: int) -> np.ndarray:
    """β_t linear from 1e-4 to 0.02 (paper default), both ends scaled by 1000 / T (float64).

    Args:
        num_timesteps: T.

    Returns:
        ``[T]`` float64.

    Example:
        >>> linear_betas(1000)[[0, -1]].tolist()
        [0.0001, 0.02]
        >>> linear_betas(100)[[0, -1]].round(6).tolist()
        [0.001, 0.2]
    """
    scale = PAPER_TIMESTEPS / num_timesteps
    return np.linspace(scale * PAPER_BETA_START, scale * PAPER_BETA_END, num_timesteps, dtype=np.float64)


def cosine_betas(num_timesteps: int) -> np.ndarray:
    """β_t of the cosine schedule (Nichol & Dhariwal 2021 eq. 17, β clipped at 0.999; float64).

    Args:
        num_timesteps: T.

    Returns:
        ``[T]`` float64.

    Example:
        >>> betas = cosine_betas(1000)
        >>> bool(np.all(np.diff(betas) > 0)), float(betas[-1])
        (True, 0.999)
    """
    steps = np.arange(num_timesteps + 1, dtype=np.float64) / num_timesteps
    alpha_bar = np.cos((steps + COSINE_OFFSET) / (1 + COSINE_OFFSET) * math.pi / 2) ** 2
    return np.minimum(1.0 - alpha_bar[1:] / alpha_bar[:-1], MAX_BETA)


class DiffusionSchedule:
    """β_t and every coefficient DDPM derives from it; ``q_sample`` draws from ``q(x_t | x_0)``.

    Attributes (float32 NumPy arrays ``[T]``, computed in float64; module docstring):
    ``betas``, ``alphas``, ``alphas_cumprod`` (ᾱ_t), ``alphas_cumprod_prev`` (ᾱ_{t−1}),
    ``sqrt_alphas_cumprod``, ``sqrt_one_minus_alphas_cumprod``, ``sqrt_recip_alphas_cumprod``
    (1/√ᾱ_t), ``sqrt_recipm1_alphas_cumprod`` (√(1/ᾱ_t − 1)), ``posterior_variance`` (β̃_t),
    ``posterior_log_variance_clipped``, ``posterior_mean_coef1`` and ``posterior_mean_coef2``.

    Args:
        num_timesteps: T (1000, paper default).
        kind: ``"linear"`` (paper default) or ``"cosine"``.

    Example:
        >>> schedule = DiffusionSchedule()
        >>> f"{schedule.alphas_cumprod[-1]:.3g}"   # ᾱ_T, notes F1: 4.04e-5
        '4.04e-05'
        >>> x_t = schedule.q_sample(tf.zeros([2, 4, 4, 1]), tf.constant([0, 999]), tf.ones([2, 4, 4, 1]))
        >>> x_t[:, 0, 0, 0].numpy().astype(float).round(4).tolist()   # √(1 − ᾱ_t) · 1
        [0.01, 1.0]
    """

    def __init__(self, num_timesteps: int = PAPER_TIMESTEPS, kind: str = "linear"):
        if kind not in SCHEDULES:
            raise ValueError(f"kind must be one of {SCHEDULES}, got {kind!r}")
        if num_timesteps < 2:
            raise ValueError(f"num_timesteps must be >= 2, got {num_timesteps}")
        self.num_timesteps = int(num_timesteps)
        self.kind = kind
        betas = linear_betas(num_timesteps) if kind == "linear" else cosine_betas(num_timesteps)
        if betas.max() >= 1.0:  # the scaled linear schedule reaches β = 1 at T ≤ 20
            raise ValueError(f"the {kind} schedule with T={num_timesteps} has β_t >= 1; use more steps")
        for name, values in _derived_coefficients(betas).items():
            setattr(self, name, values.astype(np.float32))

    def get_config(self) -> dict:
        """The constructor's arguments: ``DiffusionSchedule(**schedule.get_config())`` rebuilds it."""
        return {"num_timesteps": self.num_timesteps, "kind": self.kind}

    def q_sample(self, x0, t, noise):
        """``x_t = √ᾱ_t x_0 + √(1−ᾱ_t) ε``, a draw from ``q(x_t | x_0)`` (eq. 4).

        Args:
            x0: clean images ``[B, ...]`` (float, in [−1, 1]).
            t: ``[B]`` integer steps in ``0 … T−1``.
            noise: ε ~ N(0, I), ``x0``'s shape.

        Returns:
            ``x_t`` with ``x0``'s shape and dtype.
        """
        return (
            gather_for_batch(self.sqrt_alphas_cumprod, t, x0) * x0
            + gather_for_batch(self.sqrt_one_minus_alphas_cumprod, t, x0) * noise
        )

    def predict_x0_from_noise(self, x_t, t, noise):
        """``x_0 = x_t / √ᾱ_t − √(1/ᾱ_t − 1) ε``: the clean image that ``x_t`` and ε imply.

        Args:
            x_t: noisy images ``[B, ...]``.
            t: ``[B]`` integer steps.
            noise: ε (predicted), ``x_t``'s shape.

        Returns:
            The implied ``x_0``, ``x_t``'s shape.
        """
        return (
            gather_for_batch(self.sqrt_recip_alphas_cumprod, t, x_t) * x_t
            - gather_for_batch(self.sqrt_recipm1_alphas_cumprod, t, x_t) * noise
        )

    def posterior_mean(self, x0, x_t, t):
        """``μ̃_t(x_t, x_0)``, the mean of ``q(x_{t−1} | x_t, x_0)`` (eq. 7).

        Args:
            x0: (predicted) clean images ``[B, ...]``.
            x_t: noisy images, same shape.
            t: ``[B]`` integer steps.

        Returns:
            ``[B, ...]``.
        """
        return (
            gather_for_batch(self.posterior_mean_coef1, t, x_t) * x0
            + gather_for_batch(self.posterior_mean_coef2, t, x_t) * x_t
        )


def _derived_coefficients(betas: np.ndarray) -> dict[str, np.ndarray]:
    """Every DDPM coefficient from float64 ``betas`` (names as in the paper's code), float64."""
    alphas = 1.0 - betas
    alphas_cumprod = np.cumprod(alphas)
    alphas_cumprod_prev = np.append(1.0, alphas_cumprod[:-1])
    posterior_variance = betas * (1.0 - alphas_cumprod_prev) / (1.0 - alphas_cumprod)
    return {
        "betas": betas,
        "alphas": alphas,
        "alphas_cumprod": alphas_cumprod,
        "alphas_cumprod_prev": alphas_cumprod_prev,
        "sqrt_alphas_cumprod": np.sqrt(alphas_cumprod),
        "sqrt_one_minus_alphas_cumprod": np.sqrt(1.0 - alphas_cumprod),
        "sqrt_recip_alphas_cumprod": np.sqrt(1.0 / alphas_cumprod),
        "sqrt_recipm1_alphas_cumprod": np.sqrt(1.0 / alphas_cumprod - 1.0),
        "posterior_variance": posterior_variance,
        # β̃_0 = 0: the paper's code takes log β̃_1 there ("clipped").
        "posterior_log_variance_clipped": np.log(np.append(posterior_variance[1], posterior_variance[1:])),
        "posterior_mean_coef1": betas * np.sqrt(alphas_cumprod_prev) / (1.0 - alphas_cumprod),
        "posterior_mean_coef2": (1.0 - alphas_cumprod_prev) * np.sqrt(alphas) / (1.0 - alphas_cumprod),
    }


def gather_for_batch(values, t, like):
    """``values[t]`` reshaped to broadcast over ``like``'s non-batch axes, in ``like``'s dtype.

    Args:
        values: a ``[T]`` array of per-step coefficients.
        t: ``[B]`` integer steps.
        like: a ``[B, ...]`` tensor of known rank.

    Returns:
        ``[B, 1, …, 1]`` (as many ones as ``like`` has non-batch axes).

    Example:
        >>> gather_for_batch(np.array([1.0, 2.0, 3.0]), tf.constant([2, 0]), tf.zeros([2, 5, 5])).shape
        TensorShape([2, 1, 1])
    """
    like = tf.convert_to_tensor(like)
    picked = tf.cast(tf.gather(tf.constant(values, tf.float32), t), like.dtype)
    return tf.reshape(picked, [-1] + [1] * (like.shape.rank - 1))
