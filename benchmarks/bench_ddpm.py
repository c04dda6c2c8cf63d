"""DDPM: sampling images/s from the export (DDPM-T, DDIM-50, DDIM-10), and the train step against
keras.io's DDPM U-Net layout rebuilt at equal size.

**Sampling.** The ``ddpm`` recipe's model at ``--preset`` (``default``: 28² grey digits, T = 1000;
``--quick``: ``tiny``, 16², T = 100) with random weights (a trained network costs the same), exported
by the project's own :func:`tfmodels.export.export_model` to a temporary directory, loaded with
``tf.saved_model.load``, and its signatures timed at ``--num-images`` images per request: ``ddpm``
(ancestral, all T steps), ``serving_default`` with ``steps`` = 50 and 10 (DDIM, η = 0). Each request
is one call into the SavedModel: the whole chain runs in its ``tf.while_loop``, PNG encoding
included. The only other way to sample in one process is the naive one, keras.io's: a Python loop
that calls the network once per step (keras.io calls ``ema_network.predict`` for each of its 1,000
steps) and updates the images outside the graph. That reference is timed for DDIM-50 only (cheap
enough to alternate with ours): the same EMA network, ``predict_on_batch`` per step (lighter than
keras.io's ``predict``, so the reference is favoured), the DDIM update in NumPy, from the same x_T
as the export's seed draws; the script prints how far its images are from the export's (0 grey levels
in the runs so far: the same work). DDPM-T and DDIM-10 have no reference and are printed, not
tabulated.

**Train step.** keras.io's "Denoising Diffusion Probabilistic Models" (A_K_Nain,
https://keras.io/examples/generative/ddpm/) rebuilt from its description, functional Keras, at our
preset's widths (``base_channels`` × ``channel_multipliers``), residual blocks per level, attention
sides and GroupNorm groups: residual blocks GroupNorm → swish → 3x3 conv, plus Dense(swish(temb))
per channel, GroupNorm → swish → 3x3 conv, with a 1x1-conv shortcut when the width changes;
single-head attention blocks (GroupNorm, Dense q/k/v, softmax over the pixels, Dense projection);
stride-2 3x3 conv down, nearest ×2 + 3x3 conv up; time: sinusoids of width 4·ch → Dense(4·ch,
swish) → Dense(4·ch); the same down / middle (block, attention, block) / up (``num_res_blocks + 1``
blocks on concatenated skips) order as ours. Its ``DiffusionModel.train_step``: t uniform (int64),
ε normal, q(x_t | x_0), MSE on ε, Adam, then the EMA (0.999) assigned weight by weight. Ours is
:class:`tfmodels.models.ddpm.DiffusionModel` (the same algorithm, EMA included). Both train with the
same Adam (2e-4, keras.io's), batch, loss and Keras dtype policy, through ``fit`` without XLA
(keras.io compiles with ``jit_compile=False``; so does our trainer by default), in alternating
rounds after a warm-up.

Structural differences, none of which changes the work by more than a rounding error:

- time MLP: keras.io's sinusoids are 4·ch wide (its first Dense is 4ch → 4ch), ours ch wide (the
  paper's code: ch → 4ch): keras.io has 12,288 more parameters and multiply-adds per image at ch = 32;
- keras.io's attention adds its output to the *normalised* input (``norm(x) + proj``), ours to the
  input (the paper's ``x + proj``); keras.io's GroupNorm ε is Keras' 1e-3, ours 1e-6 (the paper's);
- keras.io down-samples after every level whose width differs from the last level's, which at
  multipliers (1, 2, 2) would skip the 14 → 7 step and break its own up path; the rebuild
  down-samples after every level but the last (what keras.io's rule means for its own multipliers,
  (1, 2, 4, 8), all distinct);
- under ``mixed_bfloat16`` the rebuild scales its attention logits by a Python float (keras.io
  multiplies by a float32 tensor, which fails with bfloat16 logits) and casts ε̂ to float32 for the
  loss; ours runs its softmax in float32;
- initialisers are Keras' defaults (keras.io's near-zero inits cost the same).

FLOPs per image: ``2 · MACs`` for a forward pass, ``6 · MACs`` for a train step (train ≈ 3 ×
forward), ``2 · S · MACs`` for S sampling steps. The MACs are counted on the keras.io rebuild, the
work of the layout: :func:`common.conv_dense_macs` over its functional graph (every Conv2D and Dense,
the attention's q/k/v/projection included), plus the two attention matmuls in closed form,
``2 · N² · C`` per attention block on N = side² pixels. Ours has 12,288 fewer (the time MLP, < 0.01%).
GroupNorm, swish, softmax and biases are left out, as usual.

Run: ``make bench`` or ``python benchmarks/bench_ddpm.py [--precision bfloat16] [--preset default]
[--num-images 8] [--batch 64] [--steps 2] [--rounds 2] [--ddpm-rounds 1]``. The defaults are sized
for a 2-core CPU, where one 8-image DDPM-1000 request takes about a minute and a half (8 images per
request give about 10% fewer images/s than 16 there); on a GPU use ``--num-images 64 --rounds 3``.
``--quick`` uses the ``tiny`` preset (T = 100) with 2 images and a batch of 4; most of its time is
tracing and the export, which no smaller size removes.
"""

import functools
import math
import tempfile
import time

import common  # noqa: I001  (first: TensorFlow then starts without its C++ INFO lines)

import keras
import numpy as np
import tensorflow as tf
from keras import layers, ops

from tfmodels import registry
from tfmodels.config import resolve
from tfmodels.export import export_model
from tfmodels.models.diffusion_sampling import ddim_timesteps
from tfmodels.recipes.ddpm import to_uint8

DDIM_STEPS = (50, 10)  # issue 16: DDIM-50 (against the Python loop) and DDIM-10
LEARNING_RATE = 2e-4  # keras.io's Adam
SEED = 0


# --- keras.io's U-Net and train step, rebuilt at our preset's size --------------------------------


def _sinusoids(t, width: int):
    """keras.io's time embedding: ``[sin(t·f), cos(t·f)]`` with ``width / 2`` frequencies ``10000^(−i/(width/2 − 1))``."""
    half = width // 2
    frequencies = np.exp(-math.log(10000.0) / (half - 1) * np.arange(half)).astype(np.float32)
    angles = ops.cast(t, "float32")[:, None] * frequencies[None, :]
    return ops.concatenate([ops.sin(angles), ops.cos(angles)], axis=-1)


def _residual_block(x, temb, width: int, groups: int):
    shortcut = x if x.shape[-1] == width else layers.Conv2D(width, 1)(x)
    step = layers.Dense(width)(ops.silu(temb))[:, None, None, :]
    h = layers.Conv2D(width, 3, padding="same")(ops.silu(layers.GroupNormalization(groups)(x)))
    h = layers.Add()([h, step])
    h = layers.Conv2D(width, 3, padding="same")(ops.silu(layers.GroupNormalization(groups)(h)))
    return layers.Add()([h, shortcut])


def _attention_block(x, groups: int):
    """keras.io's single-head attention over the ``side²`` pixels: the output is added to ``norm(x)``."""
    side, width = x.shape[1], x.shape[-1]
    h = layers.GroupNormalization(groups)(x)
    q, k, v = (layers.Dense(width)(h) for _ in range(3))
    logits = ops.reshape(ops.einsum("bhwc,byxc->bhwyx", q, k) * width**-0.5, (-1, side, side, side * side))
    weights = ops.reshape(ops.softmax(logits, axis=-1), (-1, side, side, side, side))
    return h + layers.Dense(width)(ops.einsum("bhwyx,byxc->bhwc", weights, v))


def keras_io_unet(image_size: int, channels: int, widths, has_attention, num_res_blocks: int, groups: int) -> keras.Model:
    """keras.io's DDPM U-Net (module docstring): ``[x_t [B, H, W, C], t [B] int64]`` → ε̂."""
    image = keras.Input((image_size, image_size, channels))
    t = keras.Input((), dtype="int64")
    temb = layers.Dense(4 * widths[0])(layers.Dense(4 * widths[0], activation="swish")(_sinusoids(t, 4 * widths[0])))
    x = layers.Conv2D(widths[0], 3, padding="same")(image)
    skips = [x]
    for level, width in enumerate(widths):
        for _ in range(num_res_blocks):
            x = _residual_block(x, temb, width, groups)
            x = _attention_block(x, groups) if has_attention[level] else x
            skips.append(x)
        if level != len(widths) - 1:
            x = layers.Conv2D(width, 3, strides=2, padding="same")(x)
            skips.append(x)
    x = _residual_block(_attention_block(_residual_block(x, temb, widths[-1], groups), groups), temb, widths[-1], groups)
    for level in reversed(range(len(widths))):
        for _ in range(num_res_blocks + 1):
            x = _residual_block(layers.Concatenate()([x, skips.pop()]), temb, widths[level], groups)
            x = _attention_block(x, groups) if has_attention[level] else x
        if level:
            x = layers.Conv2D(widths[level], 3, padding="same")(layers.UpSampling2D(2, interpolation="nearest")(x))
    x = ops.silu(layers.GroupNormalization(groups)(x))
    return keras.Model([image, t], layers.Conv2D(channels, 3, padding="same")(x), name="keras_io_unet")


class KerasIoDiffusionModel(keras.Model):
    """keras.io's ``DiffusionModel`` training: Algorithm 1 on ``network``, then the EMA, weight by weight."""

    def __init__(self, network: keras.Model, ema_network: keras.Model, schedule, ema: float = 0.999):
        super().__init__()
        self.network, self.ema_network, self.schedule, self.ema = network, ema_network, schedule, ema
        self.built = True

    def train_step(self, images):
        t = tf.random.uniform((tf.shape(images)[0],), 0, self.schedule.num_timesteps, dtype=tf.int64)
        with tf.GradientTape() as tape:
            noise = tf.random.normal(tf.shape(images))
            predicted = tf.cast(self.network([self.schedule.q_sample(images, t, noise), t], training=True), tf.float32)
            loss = tf.reduce_mean(tf.square(noise - predicted))
        gradients = tape.gradient(loss, self.network.trainable_weights)
        self.optimizer.apply_gradients(zip(gradients, self.network.trainable_weights))
        for weight, ema_weight in zip(self.network.weights, self.ema_network.weights):
            ema_weight.assign(self.ema * ema_weight + (1 - self.ema) * weight)
        return {"loss": loss}


def keras_io_layout(cfg):
    """The keras.io U-Net at ``cfg``'s size, and its forward multiply-adds per image (module docstring)."""
    widths = [cfg.base_channels * m for m in cfg.channel_multipliers]
    sides = [cfg.image_size // 2**level for level in range(len(widths))]
    has_attention = [side in cfg.attention_resolutions for side in sides]
    build = functools.partial(
        keras_io_unet, cfg.image_size, cfg.channels, widths, has_attention, cfg.num_res_blocks, cfg.norm_groups
    )
    network = build()
    per_level = 2 * cfg.num_res_blocks + 1  # down and up blocks of an attention level
    blocks = [(sides[level], widths[level], per_level) for level in range(len(widths)) if has_attention[level]]
    blocks.append((sides[-1], widths[-1], 1))  # the middle block's
    attention_matmuls = sum(count * 2 * side**4 * width for side, width, count in blocks)
    return network, build, common.conv_dense_macs(network) + attention_matmuls


# --- sampling -------------------------------------------------------------------------------------


def python_loop_ddim(network: keras.Model, schedule, num_images: int, shape, seed: int, steps: int) -> np.ndarray:
    """keras.io's way to sample: one network call per step from Python, the DDIM (η = 0) update in NumPy.

    Starts from the x_T the export draws for ``seed`` (``stateless_normal`` with seed ``[seed, 0]``).
    """
    x = tf.random.stateless_normal([num_images, *shape], seed=tf.constant([seed, 0], tf.int64)).numpy()
    timesteps = ddim_timesteps(schedule.num_timesteps, steps).numpy()
    alphas_cumprod = schedule.alphas_cumprod
    for position in reversed(range(steps)):
        a = alphas_cumprod[timesteps[position]]
        a_prev = alphas_cumprod[timesteps[position - 1]] if position else 1.0
        eps = network.predict_on_batch({"x_t": x, "t": np.full(num_images, timesteps[position], np.int32)})
        x0 = np.clip((x - np.sqrt(1 - a) * eps) / np.sqrt(a), -1.0, 1.0)
        eps = (x - np.sqrt(a) * x0) / np.sqrt(1 - a)
        x = np.sqrt(a_prev) * x0 + np.sqrt(1 - a_prev) * eps
    return to_uint8(x).numpy()


def export_signatures(recipe, cfg, model, export_root: str):
    """Exports ``model`` with the recipe's signatures and loads them back; prints the export time."""
    start = time.perf_counter()
    version = export_model(recipe, cfg, model, export_root, test=None)  # ddpm's serving examples are sampled, not read
    print(f"    exported in {time.perf_counter() - start:.0f} s (in-process examples for both samplers included)", flush=True)
    return tf.saved_model.load(str(version)).signatures


def served_runs(signatures, num_images: int, num_timesteps: int) -> dict:
    """``{name: one request}`` for DDPM over T steps and DDIM at each of :data:`DDIM_STEPS`."""
    n, seed = tf.constant(num_images), tf.constant(SEED, tf.int64)
    runs = {f"DDPM-{num_timesteps}": lambda: signatures["ddpm"](num_images=n, seed=seed)["images"].numpy()}
    for steps in DDIM_STEPS:
        runs[f"DDIM-{steps}"] = lambda s=tf.constant(steps): signatures["serving_default"](
            num_images=n, seed=seed, steps=s)["images"].numpy()
    return runs


def print_rates(runs: dict, num_images: int, macs: int, steps_of: dict, rounds: int, dtype: str) -> None:
    """Best-of-``rounds`` images/s of reference-less samplers, with GFLOP/s and the share of the matmul peak."""
    peak = common.matmul_peak_gflops(dtype)
    rates = common.alternating_rates(runs, num_images, rounds)
    peak = max(peak, common.matmul_peak_gflops(dtype))
    for name, rate in rates.items():
        achieved = rate * 2 * steps_of[name] * macs / 1e9
        print(f"  {name} from the export (no reference; best of {rounds})\n"
              f"    ours  {rate:10.2f} images/s  ({1 / rate:.3g} s per image)  {achieved:8.1f} GFLOP/s  "
              f"{achieved / peak:6.1%} of the {dtype} peak ({peak:.1f} GFLOP/s)", flush=True)


def bench_sampling(recipe, cfg, model, macs: int, args) -> None:
    n, shape = args.num_images, (cfg.image_size, cfg.image_size, cfg.channels)
    common.header(
        f"DDPM sampling from the export ({cfg.image_size}x{cfg.image_size}x{cfg.channels}, T = {cfg.num_timesteps}): "
        f"{n} images per request, {macs / 1e6:.4g} MMAC per network call", args,
        plan=f"best of {args.rounds} alternating rounds (DDPM-{cfg.num_timesteps}: {args.ddpm_rounds}) "
             "after one warm-up request each",
    )
    with tempfile.TemporaryDirectory() as export_root:
        signatures = export_signatures(recipe, cfg, model, export_root)
        runs = served_runs(signatures, n, cfg.num_timesteps)
        ddpm_name = f"DDPM-{cfg.num_timesteps}"
        signatures["ddpm"](num_images=tf.constant(1), seed=tf.constant(SEED, tf.int64))  # warm-up at one image: T steps
        served_ddim = {name: run() for name, run in runs.items() if name != ddpm_name}  # warm-up
        loop = functools.partial(python_loop_ddim, model.ema_network, model.schedule, n, shape, SEED, 50)
        difference = np.abs(loop().astype(int) - served_ddim["DDIM-50"].astype(int)).max()
        print(f"    the Python loop's DDIM-50 images vs the export's, same seed: max |difference| {difference} grey levels")
        common.compare(
            f"DDPM sampling, DDIM-50 from the export ({cfg.image_size}x{cfg.image_size})",
            {"ours": runs["DDIM-50"], "keras.io-style Python loop (predict_on_batch)": loop},
            items_per_run=n, unit="images", flops_per_item=2 * 50 * macs, args=args,
        )
        steps_of = {ddpm_name: cfg.num_timesteps, **{f"DDIM-{s}": s for s in DDIM_STEPS}}
        print_rates({"DDIM-10": runs["DDIM-10"]}, n, macs, steps_of, args.rounds, args.precision)
        print_rates({ddpm_name: runs[ddpm_name]}, n, macs, steps_of, args.ddpm_rounds, args.precision)


# --- train step -----------------------------------------------------------------------------------


def bench_train_step(cfg, ours, reference_network, build_reference, macs: int, args) -> None:
    reference_ema = build_reference()
    reference_ema.set_weights(reference_network.get_weights())
    reference = KerasIoDiffusionModel(reference_network, reference_ema, ours.schedule, ema=cfg.ema_decay)
    images = tf.random.uniform((args.batch, cfg.image_size, cfg.image_size, cfg.channels), -1.0, 1.0)
    data = tf.data.Dataset.from_tensors(images).repeat()
    common.header(f"DDPM train step (ε-MSE at uniform t, EMA {cfg.ema_decay}): batch {args.batch}, "
                  f"{cfg.image_size}x{cfg.image_size}x{cfg.channels}, {macs / 1e6:.4g} MMAC forward; Adam, no XLA", args)
    runs = common.fit_runs({"ours": ours, "keras.io DDPM U-Net": reference}, data, None,
                           lambda: keras.optimizers.Adam(LEARNING_RATE), args)
    common.compare(f"DDPM train step ({cfg.image_size}x{cfg.image_size}, {cfg.base_channels} channels)", runs,
                   items_per_run=args.steps * args.batch, unit="images", flops_per_item=6 * macs, args=args)


def main() -> None:
    parser = common.argument_parser(__doc__, steps=2)
    parser.add_argument("--preset", default="default", help="the ddpm recipe's preset (tiny | default | paper)")
    parser.add_argument("--num-images", type=int, default=8, help="images per sampling request")
    parser.add_argument("--batch", type=int, default=64, help="training batch")
    parser.add_argument("--ddpm-rounds", type=int, default=1, help="rounds of the T-step DDPM request")
    parser.set_defaults(warmup=1, rounds=2)  # fit traces at its first step; one warm-up step suffices
    args = common.parse_args(parser, quick={"preset": "tiny", "num_images": 2, "batch": 4, "ddpm_rounds": 1})
    recipe = registry.get("ddpm")
    cfg = resolve(recipe.config, args.preset, {"max_images": max(args.num_images, 2), "seed": SEED})
    keras.utils.set_random_seed(SEED)
    ours = recipe.model(cfg)
    reference_network, build_reference, macs = keras_io_layout(cfg)
    print(f"ddpm preset {args.preset!r}: ours {ours.network.count_params():,} parameters, "
          f"keras.io layout {reference_network.count_params():,} (the difference is its wider time MLP)", flush=True)
    bench_sampling(recipe, cfg, ours, macs, args)
    bench_train_step(cfg, ours, reference_network, build_reference, macs, args)


if __name__ == "__main__":
    main()
